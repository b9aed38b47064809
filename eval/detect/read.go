package detect

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// MaxFileBytes is the largest ground-truth or detection file the readers
// accept (checked on the file's size before it is read).
const MaxFileBytes = 2 << 30

// Box is an axis-aligned box [x, y, width, height] in pixels, as COCO
// writes it.
type Box [4]float64

// Image is one entry of a COCO ground truth's "images".
type Image struct {
	ID int64 `json:"id"`
}

// Category is one entry of a COCO ground truth's "categories".
type Category struct {
	ID   int64  `json:"id"`
	Name string `json:"name,omitempty"`
}

// Annotation is one ground-truth box. ID must be unique and non-zero
// (pycocotools marks an unmatched detection with id 0). Area is the
// annotation's "area" field, which decides its area range (COCO gives the
// segment's area, not the box's); a file without it gets width*height.
// IsCrowd marks a crowd region: ignored by COCO, and "difficult" for VOC07
// like Difficult (a VOC-style "difficult" field).
type Annotation struct {
	ID         int64   `json:"id"`
	ImageID    int64   `json:"image_id"`
	CategoryID int64   `json:"category_id"`
	BBox       Box     `json:"bbox"`
	Area       float64 `json:"area"`
	IsCrowd    bool    `json:"iscrowd"`
	Difficult  bool    `json:"difficult,omitempty"`
}

// COCOGroundTruth is the part of a COCO instances file the AP metrics use.
type COCOGroundTruth struct {
	Images      []Image      `json:"images"`
	Annotations []Annotation `json:"annotations"`
	Categories  []Category   `json:"categories"`
}

// Detection is one scored box, an element of a COCO results file.
type Detection struct {
	ImageID    int64   `json:"image_id"`
	CategoryID int64   `json:"category_id"`
	BBox       Box     `json:"bbox"`
	Score      float64 `json:"score"`
}

// flag reads a JSON boolean or number (0 is false) as a bool.
type flag bool

func (f *flag) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case bool:
		*f = flag(v)
	case float64:
		*f = v != 0
	case nil:
		*f = false
	default:
		return fmt.Errorf("want a boolean or a number, got %s", b)
	}
	return nil
}

// readJSON decodes path into v after checking its size.
func readJSON(path string, v any) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	if st.Size() > MaxFileBytes {
		return fmt.Errorf("detect: %s: %d bytes, more than the limit of %d", path, st.Size(), int64(MaxFileBytes))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("detect: %s: bad JSON: %w", path, err)
	}
	return nil
}

// ReadCOCOGroundTruth reads a COCO instances file (images, annotations with
// bbox [x,y,w,h], category_id, iscrowd, area; categories) and checks it
// (see COCOGroundTruth.Validate).
func ReadCOCOGroundTruth(path string) (*COCOGroundTruth, error) {
	var raw struct {
		Images      *[]Image `json:"images"`
		Annotations []struct {
			ID         *int64    `json:"id"`
			ImageID    int64     `json:"image_id"`
			CategoryID int64     `json:"category_id"`
			BBox       []float64 `json:"bbox"`
			Area       *float64  `json:"area"`
			IsCrowd    flag      `json:"iscrowd"`
			Difficult  flag      `json:"difficult"`
		} `json:"annotations"`
		Categories *[]Category `json:"categories"`
	}
	if err := readJSON(path, &raw); err != nil {
		return nil, err
	}
	if raw.Images == nil || raw.Categories == nil {
		return nil, fmt.Errorf("detect: %s: not a COCO ground truth: no \"images\" or no \"categories\"", path)
	}
	gt := &COCOGroundTruth{Images: *raw.Images, Categories: *raw.Categories, Annotations: make([]Annotation, len(raw.Annotations))}
	for i, a := range raw.Annotations {
		if a.ID == nil {
			return nil, fmt.Errorf("detect: %s: annotation %d has no id", path, i)
		}
		if len(a.BBox) != 4 {
			return nil, fmt.Errorf("detect: %s: annotation id %d: bbox has %d numbers, want 4 [x,y,w,h]", path, *a.ID, len(a.BBox))
		}
		ann := Annotation{ID: *a.ID, ImageID: a.ImageID, CategoryID: a.CategoryID, BBox: Box(a.BBox), IsCrowd: bool(a.IsCrowd), Difficult: bool(a.Difficult)}
		if a.Area != nil {
			ann.Area = *a.Area
		} else {
			ann.Area = ann.BBox[2] * ann.BBox[3]
		}
		gt.Annotations[i] = ann
	}
	if err := gt.Validate(); err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return gt, nil
}

// ReadDetections reads a COCO results file, a JSON list of {image_id,
// category_id, bbox, score}, and checks every detection against gt (see
// CheckDetections).
func ReadDetections(path string, gt *COCOGroundTruth) ([]Detection, error) {
	var raw []struct {
		ImageID    int64     `json:"image_id"`
		CategoryID int64     `json:"category_id"`
		BBox       []float64 `json:"bbox"`
		Score      float64   `json:"score"`
	}
	if err := readJSON(path, &raw); err != nil {
		return nil, err
	}
	dts := make([]Detection, len(raw))
	for i, d := range raw {
		if len(d.BBox) != 4 {
			return nil, fmt.Errorf("detect: %s: detection %d: bbox has %d numbers, want 4 [x,y,w,h]", path, i, len(d.BBox))
		}
		dts[i] = Detection{ImageID: d.ImageID, CategoryID: d.CategoryID, BBox: Box(d.BBox), Score: d.Score}
	}
	if err := CheckDetections(gt, dts); err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return dts, nil
}

func checkBox(b Box) error {
	for _, v := range b {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("bbox %v is not finite", b)
		}
	}
	if b[2] < 0 || b[3] < 0 {
		return fmt.Errorf("bbox %v has a negative width or height", b)
	}
	return nil
}

// Validate checks that image, category and annotation ids are unique,
// annotation ids non-zero, every annotation names a known image and
// category, and boxes and areas are finite with non-negative sizes.
func (gt *COCOGroundTruth) Validate() error {
	imgs, cats := map[int64]bool{}, map[int64]bool{}
	for _, im := range gt.Images {
		if imgs[im.ID] {
			return fmt.Errorf("detect: duplicate image id %d", im.ID)
		}
		imgs[im.ID] = true
	}
	for _, c := range gt.Categories {
		if cats[c.ID] {
			return fmt.Errorf("detect: duplicate category id %d", c.ID)
		}
		cats[c.ID] = true
	}
	ids := map[int64]bool{}
	for _, a := range gt.Annotations {
		switch {
		case a.ID == 0:
			return fmt.Errorf("detect: annotation id 0 (ids must be non-zero: pycocotools counts a match to id 0 as no match)")
		case ids[a.ID]:
			return fmt.Errorf("detect: duplicate annotation id %d", a.ID)
		case !imgs[a.ImageID]:
			return fmt.Errorf("detect: annotation id %d: unknown image_id %d", a.ID, a.ImageID)
		case !cats[a.CategoryID]:
			return fmt.Errorf("detect: annotation id %d: unknown category_id %d", a.ID, a.CategoryID)
		case math.IsNaN(a.Area) || math.IsInf(a.Area, 0) || a.Area < 0:
			return fmt.Errorf("detect: annotation id %d: area %v is not a finite non-negative number", a.ID, a.Area)
		}
		if err := checkBox(a.BBox); err != nil {
			return fmt.Errorf("detect: annotation id %d: %v", a.ID, err)
		}
		ids[a.ID] = true
	}
	return nil
}

// CheckDetections checks that every detection names an image and a
// category of gt, has a finite score and a finite box of non-negative size.
func CheckDetections(gt *COCOGroundTruth, dts []Detection) error {
	imgs, cats := map[int64]bool{}, map[int64]bool{}
	for _, im := range gt.Images {
		imgs[im.ID] = true
	}
	for _, c := range gt.Categories {
		cats[c.ID] = true
	}
	for i, d := range dts {
		switch {
		case !imgs[d.ImageID]:
			return fmt.Errorf("detect: detection %d: image_id %d is not in the ground truth", i, d.ImageID)
		case !cats[d.CategoryID]:
			return fmt.Errorf("detect: detection %d: category_id %d is not in the ground truth", i, d.CategoryID)
		case math.IsNaN(d.Score) || math.IsInf(d.Score, 0):
			return fmt.Errorf("detect: detection %d: score %v is not finite", i, d.Score)
		}
		if err := checkBox(d.BBox); err != nil {
			return fmt.Errorf("detect: detection %d: %v", i, err)
		}
	}
	return nil
}
