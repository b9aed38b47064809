package data

import (
	"fmt"
	"image"
	"math"
)

// Tiled cuts every image larger than size in either side into size x size
// tiles and returns the tiled set (the receiver is unchanged; images no
// larger than size stay whole). A side of n pixels gets ceil(n/size)
// tiles spread evenly from edge to edge, so neighbours overlap by the
// same few pixels rather than one tile hanging over the image (a side of
// 1,000 at size 400 gives tiles at 0, 300 and 600); an object in an
// overlap appears in both tiles, each scored as its own image. Each box is clipped
// to each tile it touches and translated into the tile's coordinates; a
// clipped box that keeps less than minVisible of its area is marked
// Difficult (ignored by the detection metrics, as a crowd region) instead
// of being dropped, since the object is partly in the picture and a
// detector that finds it should not be counted wrong. Split large
// photographs into training and test sets by image (region), not by
// tile, so that no object crosses the split.
func (a *Annotated) Tiled(size int, minVisible float64) (*Annotated, error) {
	if size < 8 {
		return nil, fmt.Errorf("data: tile size %d, want >= 8", size)
	}
	if minVisible < 0 || minVisible > 1 {
		return nil, fmt.Errorf("data: tile minimum visible fraction %g, want [0, 1]", minVisible)
	}
	t := *a
	t.Items = nil
	for _, it := range a.Items {
		if !it.Crop.Empty() {
			return nil, fmt.Errorf("data: %s is already tiled", a.files.Where(it.File))
		}
		if it.W <= size && it.H <= size {
			t.Items = append(t.Items, it)
			continue
		}
		for _, y0 := range tileStarts(it.H, size) {
			for _, x0 := range tileStarts(it.W, size) {
				r := image.Rect(x0, y0, min(x0+size, it.W), min(y0+size, it.H))
				tile := AnnotatedItem{File: it.File, W: r.Dx(), H: r.Dy(), Labelled: it.Labelled, MaskFile: it.MaskFile, Crop: r}
				for _, b := range it.Boxes {
					if c, ok := clipBox(b, r, minVisible); ok {
						tile.Boxes = append(tile.Boxes, c)
					}
				}
				t.Items = append(t.Items, tile)
			}
		}
	}
	return &t, nil
}

// tileStarts are the offsets of the tiles along a side of n pixels.
func tileStarts(n, size int) []int {
	if n <= size {
		return []int{0}
	}
	k := (n + size - 1) / size
	out := make([]int, k)
	for i := range out {
		out[i] = int(math.Round(float64(i*(n-size)) / float64(k-1)))
	}
	return out
}

// clipBox clips b to r and moves it into r's coordinates; ok is false
// when nothing of it is inside r. A box keeping less than minVisible of
// its area becomes Difficult.
func clipBox(b Box, r image.Rectangle, minVisible float64) (Box, bool) {
	x0, y0 := math.Max(b.X0, float64(r.Min.X)), math.Max(b.Y0, float64(r.Min.Y))
	x1, y1 := math.Min(b.X1, float64(r.Max.X)), math.Min(b.Y1, float64(r.Max.Y))
	if x1 <= x0 || y1 <= y0 {
		return Box{}, false
	}
	c := Box{Class: b.Class, X0: x0 - float64(r.Min.X), Y0: y0 - float64(r.Min.Y), X1: x1 - float64(r.Min.X), Y1: y1 - float64(r.Min.Y), Difficult: b.Difficult}
	if area := b.W() * b.H(); area > 0 && c.W()*c.H() < minVisible*area {
		c.Difficult = true
	}
	return c, true
}
