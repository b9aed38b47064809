package data

import (
	"fmt"
	"image"
	"path"
	"sort"
	"strconv"
	"strings"
)

// AnnotatedOptions controls OpenAnnotated.
type AnnotatedOptions struct {
	// SkipBad drops images whose annotation or mask file is malformed
	// (Annotated.Skipped says which and why) instead of failing.
	SkipBad bool
	// MaxPixels bounds decoded images and masks (0: DefaultMaxPixels).
	MaxPixels int64
	// MaxMember bounds each file read (0: DefaultMaxMember).
	MaxMember int64
}

// AnnotatedItem is one image of an Annotated set: its file, its size in
// pixels, its boxes (Labelled when a box annotation names the image, even
// with no objects) and its class-index mask file ("" when none).
//
// Crop, when not empty, makes the item a tile of its file (see
// Annotated.Tiled): W, H are then the tile's size and the boxes are in its
// coordinates.
type AnnotatedItem struct {
	File     string
	W, H     int
	Boxes    []Box
	Labelled bool
	MaskFile string
	Crop     image.Rectangle
}

// Annotated is a split of images with boxes and/or class-index masks, read
// from a directory or tar in one of these layouts (detected from the files):
//
//   - YOLO: images under an "images/<split>/" folder, labels as
//     ".../labels/<split>/<stem>.txt" (see ParseYOLO), class names from a
//     config .yaml's "names:" section (COCO128, Ultralytics);
//   - Pascal VOC: XML files (see ParseVOC) under a "<split>/" folder (or
//     anywhere with split ""), naming their image by <filename>; classes
//     are the object names of all the source's XML files, sorted;
//   - COCO: an instances JSON (see ParseCOCO) whose name or folder contains
//     the split; classes are its categories in id order;
//
// plus, in any layout, masks as ".../masks/<split>/<stem>.png" (see
// DecodeMask), mask class names from a .yaml's "classes:" section.
// Items are the split's images in path order. It implements Dataset
// (labels -1), decoding images at their stored size.
type Annotated struct {
	Src, Split  string
	BoxClasses  []string
	MaskClasses map[int]string
	Items       []AnnotatedItem
	// Skipped lists, under SkipBad, each dropped file with the reason.
	Skipped []string
	// Orphans lists label files whose image is not in the split (COCO128
	// has one); they are ignored.
	Orphans   []string
	files     *Files
	maxPixels int64
}

var annotatedExt = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".txt": true, ".xml": true, ".json": true, ".yaml": true, ".yml": true}

func stem(p string) string { b := path.Base(p); return strings.TrimSuffix(b, path.Ext(b)) }

// OpenAnnotated reads split (a folder name such as "train2017"; "" for
// all) of the annotated set at spec. Errors name the file and the line.
func OpenAnnotated(spec, split string, o AnnotatedOptions) (*Annotated, error) {
	files, err := ReadFiles(spec, func(rel string) bool { return annotatedExt[strings.ToLower(path.Ext(rel))] }, o.MaxMember)
	if err != nil {
		return nil, err
	}
	a := &Annotated{Src: spec, Split: split, files: files, maxPixels: o.MaxPixels}
	inSplit := func(rel string) bool { return split == "" || hasSegment(rel, split) }
	images := map[string]string{} // base name -> file
	var order []string
	type ann struct {
		boxes  []Box
		names  []string // VOC: class names to index
		w, h   int
		source string
	}
	anns := map[string]*ann{} // image base name -> boxes
	masks := map[string]string{}
	var vocNames []string
	vocSeen := map[string]bool{}
	bad := func(file string, err error) error {
		if !o.SkipBad {
			return err
		}
		a.Skipped = append(a.Skipped, fmt.Sprintf("%s (%v)", files.Where(file), err))
		return nil
	}
	var cocoCats []int64
	cocoIndex := map[int64]int{}
	for _, rel := range files.Names() {
		b, _ := files.Bytes(rel)
		where := files.Where(rel)
		ext := strings.ToLower(path.Ext(rel))
		switch {
		case ext == ".yaml" || ext == ".yml":
			names, err := ParseClassNames(where, b, "names")
			if err != nil {
				return nil, err
			}
			if names != nil {
				a.BoxClasses = make([]string, 0, len(names))
				for i := 0; i < len(names); i++ {
					n, ok := names[i]
					if !ok {
						return nil, fmt.Errorf("data: %s: names: has no class %d (want 0..%d)", where, i, len(names)-1)
					}
					a.BoxClasses = append(a.BoxClasses, n)
				}
			}
			if mc, err := ParseClassNames(where, b, "classes"); err != nil {
				return nil, err
			} else if mc != nil {
				a.MaskClasses = mc
			}
		case (ext == ".png" || ext == ".jpg" || ext == ".jpeg") && hasSegment(rel, "masks"):
			if ext == ".png" && inSplit(rel) {
				masks[stem(rel)] = rel
			}
		case ext == ".png" || ext == ".jpg" || ext == ".jpeg":
			if inSplit(rel) {
				if _, dup := images[path.Base(rel)]; !dup {
					order = append(order, path.Base(rel))
				}
				images[path.Base(rel)] = rel
			}
		case ext == ".xml":
			v, err := ParseVOC(where, b)
			if err != nil {
				if err := bad(rel, err); err != nil {
					return nil, err
				}
				continue
			}
			for _, n := range v.Names {
				if !vocSeen[n] {
					vocSeen[n] = true
					vocNames = append(vocNames, n)
				}
			}
			if inSplit(rel) {
				anns[path.Base(v.Filename)] = &ann{boxes: v.Boxes, names: v.Names, w: v.W, h: v.H, source: rel}
			}
		case ext == ".json" && (split == "" || strings.Contains(rel, split)):
			c, err := ParseCOCO(where, b)
			if err != nil {
				return nil, err // one file holds the whole split: no skipping it
			}
			if len(c.Images) == 0 && len(c.Categories) == 0 {
				continue // some other JSON
			}
			for _, cat := range c.Categories {
				if _, ok := cocoIndex[cat.ID]; !ok {
					cocoIndex[cat.ID] = -1
					cocoCats = append(cocoCats, cat.ID)
				}
			}
			sort.Slice(cocoCats, func(i, j int) bool { return cocoCats[i] < cocoCats[j] })
			a.BoxClasses = nil
			catName := map[int64]string{}
			for _, cat := range c.Categories {
				catName[cat.ID] = cat.Name
			}
			for i, id := range cocoCats {
				cocoIndex[id] = i
				n := catName[id]
				if n == "" {
					n = strconv.FormatInt(id, 10)
				}
				a.BoxClasses = append(a.BoxClasses, n)
			}
			byID := map[int64]*ann{}
			for _, im := range c.Images {
				x := &ann{w: im.Width, h: im.Height, source: rel}
				byID[im.ID] = x
				anns[path.Base(im.FileName)] = x
			}
			for _, an := range c.Annotations {
				x := byID[an.ImageID]
				bb := an.BBox
				x.boxes = append(x.boxes, Box{Class: cocoIndex[an.CategoryID], X0: bb[0], Y0: bb[1], X1: bb[0] + bb[2], Y1: bb[1] + bb[3], Difficult: an.IsCrowd != 0})
			}
		}
	}
	if len(vocNames) > 0 {
		sort.Strings(vocNames)
		a.BoxClasses = vocNames
		idx := classIndex(vocNames)
		for _, x := range anns {
			for i, n := range x.names {
				x.boxes[i].Class = idx[n]
			}
		}
	}
	// YOLO labels need the image size and the class count.
	for _, rel := range files.Names() {
		if strings.ToLower(path.Ext(rel)) != ".txt" || !hasSegment(rel, "labels") || !inSplit(rel) {
			continue
		}
		base := ""
		for _, e := range []string{".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG"} {
			if _, ok := images[stem(rel)+e]; ok {
				base = stem(rel) + e
				break
			}
		}
		if base == "" {
			a.Orphans = append(a.Orphans, files.Where(rel))
			continue
		}
		ib, _ := files.Bytes(images[base])
		w, h, _, err := DecodeConfig(ib, o.MaxPixels)
		if err != nil {
			err = fmt.Errorf("data: image %s: %w", files.Where(images[base]), err)
		} else {
			b, _ := files.Bytes(rel)
			var boxes []Box
			if boxes, err = ParseYOLO(files.Where(rel), b, w, h, len(a.BoxClasses)); err == nil {
				anns[base] = &ann{boxes: boxes, w: w, h: h, source: rel}
			}
		}
		if err != nil {
			if err := bad(rel, err); err != nil {
				return nil, err
			}
			delete(images, base)
		}
	}
	// A VOC file may name its image with another extension than the file
	// beside it (DeepForest's OSBS_029.xml names OSBS_029.tif, shipped
	// as OSBS_029.png too): match by stem when the named file is absent
	// and the stem is unambiguous.
	byStem := map[string][]string{}
	for base := range images {
		byStem[stem(base)] = append(byStem[stem(base)], base)
	}
	for name, x := range anns {
		if _, ok := images[name]; ok || strings.ToLower(path.Ext(x.source)) != ".xml" {
			continue
		}
		if c := byStem[stem(name)]; len(c) == 1 && anns[c[0]] == nil {
			anns[c[0]] = x
			delete(anns, name)
		}
	}
	sort.Strings(order)
	for _, base := range order {
		file, ok := images[base]
		if !ok {
			continue
		}
		it := AnnotatedItem{File: file, MaskFile: masks[stem(base)]}
		if x, ok := anns[base]; ok {
			it.Boxes, it.W, it.H, it.Labelled = x.boxes, x.w, x.h, true
		} else {
			ib, _ := files.Bytes(file)
			w, h, _, err := DecodeConfig(ib, o.MaxPixels)
			if err != nil {
				if err := bad(file, fmt.Errorf("data: image %s: %w", files.Where(file), err)); err != nil {
					return nil, err
				}
				continue
			}
			it.W, it.H = w, h
		}
		a.Items = append(a.Items, it)
	}
	if len(a.Items) == 0 {
		return nil, fmt.Errorf("data: %s has no images in split %q (want images under an %q folder)", spec, split, split)
	}
	return a, nil
}

// Len is the number of images.
func (a *Annotated) Len() int { return len(a.Items) }

// Image decodes image i at its stored size.
func (a *Annotated) Image(i int) (Image, error) { return a.Decode(i, DecodeOptions{}) }

// Decode decodes image i as o says (its MaxPixels defaults to the set's).
func (a *Annotated) Decode(i int, o DecodeOptions) (Image, error) {
	if i < 0 || i >= len(a.Items) {
		return Image{}, rangeErr(a, i)
	}
	if o.MaxPixels == 0 {
		o.MaxPixels = a.maxPixels
	}
	o.Crop = a.Items[i].Crop
	b, _ := a.files.Bytes(a.Items[i].File)
	m, err := DecodeWith(b, o)
	if err != nil {
		return Image{}, fmt.Errorf("data: image %s: %w", a.Source(i), err)
	}
	return m, nil
}

// Mask decodes the mask of image i, checking that its size is the image's.
func (a *Annotated) Mask(i int) (Mask, error) {
	it := a.Items[i]
	if it.MaskFile == "" {
		return Mask{}, fmt.Errorf("data: image %s has no mask", a.Source(i))
	}
	b, _ := a.files.Bytes(it.MaskFile)
	m, err := DecodeMask(a.files.Where(it.MaskFile), b, a.maxPixels)
	if err != nil {
		return Mask{}, err
	}
	w, h := it.W, it.H
	if !it.Crop.Empty() {
		w, h = it.Crop.Max.X, it.Crop.Max.Y // at least: the tile lies inside the image
	}
	if (it.Crop.Empty() && (m.W != w || m.H != h)) || m.W < w || m.H < h {
		return Mask{}, fmt.Errorf("data: mask %s is %d x %d, its image %s is %d x %d", a.files.Where(it.MaskFile), m.W, m.H, a.Source(i), w, h)
	}
	if !it.Crop.Empty() {
		r := it.Crop
		t := Mask{W: r.Dx(), H: r.Dy(), Pix: make([]uint8, r.Dx()*r.Dy())}
		for y := 0; y < t.H; y++ {
			copy(t.Pix[y*t.W:(y+1)*t.W], m.Pix[(r.Min.Y+y)*m.W+r.Min.X:])
		}
		m = t
	}
	return m, nil
}

// Label is -1: an Annotated set has no image-level labels.
func (a *Annotated) Label(int) int { return -1 }

// Source names image i's file (and, for a tile, its rectangle:
// "file[x0,y0-x1,y1]").
func (a *Annotated) Source(i int) string {
	it := a.Items[i]
	if it.Crop.Empty() {
		return a.files.Where(it.File)
	}
	r := it.Crop
	return fmt.Sprintf("%s[%d,%d-%d,%d]", a.files.Where(it.File), r.Min.X, r.Min.Y, r.Max.X, r.Max.Y)
}

// WithMasks returns the indices of the items that have a mask.
func (a *Annotated) WithMasks() []int {
	var out []int
	for i, it := range a.Items {
		if it.MaskFile != "" {
			out = append(out, i)
		}
	}
	return out
}

// WithBoxes returns the indices of the items that have a box annotation.
func (a *Annotated) WithBoxes() []int {
	var out []int
	for i, it := range a.Items {
		if it.Labelled {
			out = append(out, i)
		}
	}
	return out
}

// Classes is nil (Dataset's image-level classes); see BoxClasses.
func (a *Annotated) Classes() []string { return nil }
