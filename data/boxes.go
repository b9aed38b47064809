package data

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"strconv"
	"strings"
)

// Box is one labelled object of an image: its class index and its corners
// in pixels (X0, Y0 top left, X1, Y1 bottom right, continuous coordinates
// with the image spanning [0, W] x [0, H]). Difficult marks a VOC
// "difficult" object or a COCO crowd region.
type Box struct {
	Class          int
	X0, Y0, X1, Y1 float64
	Difficult      bool
}

// W and H are the box's width and height in pixels.
func (b Box) W() float64 { return b.X1 - b.X0 }

// H: see W.
func (b Box) H() float64 { return b.Y1 - b.Y0 }

// ParseYOLO reads a YOLO label file (one object a line: "class x_centre
// y_centre width height", the four relative to the image size, in [0, 1])
// for an image of w x h pixels. Blank lines are allowed. classes, when
// positive, bounds the class index. name is used in errors, which give the
// line: "data: labels/a.txt line 3: ...".
func ParseYOLO(name string, b []byte, w, h, classes int) ([]Box, error) {
	var out []Box
	for i, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		where := fmt.Sprintf("data: %s line %d", name, i+1)
		if len(fields) != 5 {
			return nil, fmt.Errorf("%s: %d fields, want 5 (class x_centre y_centre width height)", where, len(fields))
		}
		cls, err := strconv.Atoi(fields[0])
		if err != nil || cls < 0 || (classes > 0 && cls >= classes) {
			return nil, fmt.Errorf("%s: class %q, want an integer in [0, %d)", where, fields[0], classes)
		}
		var v [4]float64
		for k := range v {
			f, err := strconv.ParseFloat(fields[k+1], 64)
			if err != nil || math.IsNaN(f) || f < -1e-6 || f > 1+1e-6 {
				return nil, fmt.Errorf("%s: field %d is %q, want a number in [0, 1] (YOLO coordinates are relative to the image size)", where, k+2, fields[k+1])
			}
			v[k] = f
		}
		if v[2] <= 0 || v[3] <= 0 {
			return nil, fmt.Errorf("%s: box of width %g and height %g, want both > 0", where, v[2], v[3])
		}
		fw, fh := float64(w), float64(h)
		out = append(out, Box{Class: cls,
			X0: math.Max(0, (v[0]-v[2]/2)*fw), Y0: math.Max(0, (v[1]-v[3]/2)*fh),
			X1: math.Min(fw, (v[0]+v[2]/2)*fw), Y1: math.Min(fh, (v[1]+v[3]/2)*fh)})
	}
	return out, nil
}

// VOCAnnotation is one Pascal VOC XML annotation file: the image's file
// name and size and its objects (class names in Names, parallel to Boxes,
// whose Class is -1 until the caller indexes the names).
type VOCAnnotation struct {
	Filename string
	W, H     int
	Boxes    []Box
	Names    []string
}

// ParseVOC reads a Pascal VOC XML annotation (<annotation> with
// <filename>, <size><width><height>, and <object>s with <name>,
// <difficult> and <bndbox><xmin><ymin><xmax><ymax>, in VOC's 1-based
// pixel coordinates, converted here to X0 = xmin-1, X1 = xmax so that the
// box covers the pixels it names). Errors name the file and the line.
func ParseVOC(name string, b []byte) (*VOCAnnotation, error) {
	type bnd struct{ Xmin, Ymin, Xmax, Ymax string }
	dec := xml.NewDecoder(bytes.NewReader(b))
	ann := &VOCAnnotation{}
	var path []string
	var text strings.Builder
	var cur *bnd
	var curName, curDiff string
	var objLine int
	line := func() int { l, _ := dec.InputPos(); return l }
	for {
		tok, err := dec.Token()
		if err != nil {
			if err == io.EOF {
				break
			}
			return nil, fmt.Errorf("data: %s line %d: malformed XML: %v", name, line(), err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name.Local)
			text.Reset()
			if t.Name.Local == "object" && len(path) == 2 {
				cur, curName, curDiff, objLine = &bnd{}, "", "0", line()
			}
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			v := strings.TrimSpace(text.String())
			p := strings.Join(path, "/")
			num := func() (int, error) {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
					return 0, fmt.Errorf("data: %s line %d: <%s> is %q, want a number", name, line(), t.Name.Local, v)
				}
				return int(math.Round(f)), nil
			}
			switch p {
			case "annotation/filename":
				ann.Filename = v
			case "annotation/size/width", "annotation/size/height":
				n, err := num()
				if err != nil {
					return nil, err
				}
				if t.Name.Local == "width" {
					ann.W = n
				} else {
					ann.H = n
				}
			case "annotation/object/name":
				curName = v
			case "annotation/object/difficult":
				curDiff = v
			case "annotation/object/bndbox/xmin":
				cur.Xmin = v
			case "annotation/object/bndbox/ymin":
				cur.Ymin = v
			case "annotation/object/bndbox/xmax":
				cur.Xmax = v
			case "annotation/object/bndbox/ymax":
				cur.Ymax = v
			case "annotation/object":
				var c [4]float64
				for k, s := range []string{cur.Xmin, cur.Ymin, cur.Xmax, cur.Ymax} {
					f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
					if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
						return nil, fmt.Errorf("data: %s line %d: object's <%s> is %q, want a number", name, objLine, []string{"xmin", "ymin", "xmax", "ymax"}[k], s)
					}
					c[k] = f
				}
				if curName == "" {
					return nil, fmt.Errorf("data: %s line %d: object without a <name>", name, objLine)
				}
				if c[2] < c[0] || c[3] < c[1] {
					return nil, fmt.Errorf("data: %s line %d: object %q has xmax %g < xmin %g or ymax %g < ymin %g", name, objLine, curName, c[2], c[0], c[3], c[1])
				}
				ann.Boxes = append(ann.Boxes, Box{Class: -1, X0: c[0] - 1, Y0: c[1] - 1, X1: c[2], Y1: c[3], Difficult: curDiff == "1"})
				ann.Names = append(ann.Names, curName)
				cur = nil
			}
			path = path[:len(path)-1]
			text.Reset()
		}
	}
	if len(path) != 0 || (ann.Filename == "" && len(ann.Boxes) == 0 && ann.W == 0) {
		return nil, fmt.Errorf("data: %s line %d: not a VOC annotation (want <annotation> with <filename>, <size> and <object>s)", name, line())
	}
	if ann.W <= 0 || ann.H <= 0 {
		return nil, fmt.Errorf("data: %s: <size> is %d x %d, want positive width and height", name, ann.W, ann.H)
	}
	return ann, nil
}

// COCOFile is what a COCO instances JSON holds for boxes: images (id,
// file_name, width, height), annotations (image_id, category_id, bbox [x,
// y, w, h] in pixels, iscrowd) and categories (id, name).
type COCOFile struct {
	Images []struct {
		ID       int64  `json:"id"`
		FileName string `json:"file_name"`
		Width    int    `json:"width"`
		Height   int    `json:"height"`
	} `json:"images"`
	Annotations []struct {
		ID         int64      `json:"id"`
		ImageID    int64      `json:"image_id"`
		CategoryID int64      `json:"category_id"`
		BBox       []float64  `json:"bbox"`
		IsCrowd    jsonNumber `json:"iscrowd"`
	} `json:"annotations"`
	Categories []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"categories"`
}

// jsonNumber reads a JSON number or boolean as a number (0 for false).
type jsonNumber float64

func (n *jsonNumber) UnmarshalJSON(b []byte) error {
	switch s := string(b); s {
	case "true":
		*n = 1
	case "false", "null":
		*n = 0
	default:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("want a number or a boolean, got %s", s)
		}
		*n = jsonNumber(f)
	}
	return nil
}

// lineOf is the 1-based line of byte offset off in b.
func lineOf(b []byte, off int64) int {
	off = min(max(off, 0), int64(len(b)))
	return 1 + bytes.Count(b[:off], []byte("\n"))
}

// ParseCOCO reads a COCO instances JSON and checks it: unique image and
// category ids, every annotation on a known image and category with a
// bbox of four finite numbers, width and height >= 0. Syntax and type
// errors name the line.
func ParseCOCO(name string, b []byte) (*COCOFile, error) {
	var f COCOFile
	if err := json.Unmarshal(b, &f); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("data: %s line %d: malformed JSON: %v", name, lineOf(b, se.Offset), err)
		case errors.As(err, &te):
			return nil, fmt.Errorf("data: %s line %d: %s is a JSON %s, want %s", name, lineOf(b, te.Offset), te.Field, te.Value, te.Type)
		}
		return nil, fmt.Errorf("data: %s: %v", name, err)
	}
	imgs := map[int64]bool{}
	for i, im := range f.Images {
		if imgs[im.ID] {
			return nil, fmt.Errorf("data: %s: images[%d] repeats id %d", name, i, im.ID)
		}
		if im.FileName == "" || im.Width <= 0 || im.Height <= 0 {
			return nil, fmt.Errorf("data: %s: images[%d] (id %d): file_name %q, size %d x %d; want a name and a positive size", name, i, im.ID, im.FileName, im.Width, im.Height)
		}
		imgs[im.ID] = true
	}
	cats := map[int64]bool{}
	for i, c := range f.Categories {
		if cats[c.ID] {
			return nil, fmt.Errorf("data: %s: categories[%d] repeats id %d", name, i, c.ID)
		}
		cats[c.ID] = true
	}
	for i, a := range f.Annotations {
		switch {
		case !imgs[a.ImageID]:
			return nil, fmt.Errorf("data: %s: annotations[%d] (id %d) is on image_id %d, which is not in images", name, i, a.ID, a.ImageID)
		case !cats[a.CategoryID]:
			return nil, fmt.Errorf("data: %s: annotations[%d] (id %d) has category_id %d, which is not in categories", name, i, a.ID, a.CategoryID)
		case len(a.BBox) != 4:
			return nil, fmt.Errorf("data: %s: annotations[%d] (id %d) has a bbox of %d numbers, want 4 (x, y, width, height)", name, i, a.ID, len(a.BBox))
		}
		for _, v := range a.BBox {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("data: %s: annotations[%d] (id %d) has bbox %v, want finite numbers", name, i, a.ID, a.BBox)
			}
		}
		if a.BBox[2] < 0 || a.BBox[3] < 0 {
			return nil, fmt.Errorf("data: %s: annotations[%d] (id %d) has bbox %v with a negative width or height", name, i, a.ID, a.BBox)
		}
	}
	return &f, nil
}

// Mask is a class-index segmentation mask: Pix[y*W+x] is the class of
// pixel (x, y); 0 means unlabelled.
type Mask struct {
	W, H int
	Pix  []uint8
}

// DecodeMask reads an 8-bit class-index PNG (grayscale, or paletted with
// the palette index as the class), refusing colour PNGs and images whose
// header declares more than maxPixels pixels (0: DefaultMaxPixels).
func DecodeMask(name string, b []byte, maxPixels int64) (Mask, error) {
	w, h, format, err := DecodeConfig(b, maxPixels)
	if err != nil {
		return Mask{}, fmt.Errorf("data: mask %s: %w", name, err)
	}
	if format != "png" {
		return Mask{}, fmt.Errorf("data: mask %s is %s, want an 8-bit class-index PNG", name, format)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return Mask{}, fmt.Errorf("data: mask %s: %w", name, err)
	}
	m := Mask{W: w, H: h, Pix: make([]uint8, w*h)}
	r := img.Bounds()
	switch t := img.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			copy(m.Pix[y*w:(y+1)*w], t.Pix[t.PixOffset(r.Min.X, r.Min.Y+y):])
		}
	case *image.Paletted:
		for y := 0; y < h; y++ {
			copy(m.Pix[y*w:(y+1)*w], t.Pix[t.PixOffset(r.Min.X, r.Min.Y+y):])
		}
	default:
		return Mask{}, fmt.Errorf("data: mask %s is a %T PNG, want 8-bit grayscale or paletted (one class index a pixel)", name, img)
	}
	return m, nil
}

// ParseClassNames reads the class names of a YOLO-style config.yaml: the
// "key:" section (for example "names" or "classes") holding lines "N:
// name", or a flow list "key: [a, b]". It returns nil when the section is
// absent; errors name the line.
func ParseClassNames(name string, b []byte, key string) (map[int]string, error) {
	var out map[int]string
	in := false
	for i, line := range strings.Split(string(b), "\n") {
		trim := strings.TrimSpace(line)
		if trim == "" || strings.HasPrefix(trim, "#") {
			continue
		}
		indented := line[0] == ' ' || line[0] == '\t'
		if !indented {
			k, rest, _ := strings.Cut(trim, ":")
			in = k == key
			if in {
				out = map[int]string{}
				if rest = strings.TrimSpace(rest); strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]") {
					for j, n := range strings.Split(rest[1:len(rest)-1], ",") {
						out[j] = strings.Trim(strings.TrimSpace(n), `'"`)
					}
					in = false
				}
			}
			continue
		}
		if !in {
			continue
		}
		k, v, ok := strings.Cut(trim, ":")
		id, err := strconv.Atoi(strings.TrimSpace(k))
		if !ok || err != nil || id < 0 {
			return nil, fmt.Errorf("data: %s line %d: %q under %s:, want \"N: name\"", name, i+1, trim, key)
		}
		out[id] = strings.Trim(strings.TrimSpace(v), `'"`)
	}
	return out, nil
}
