package data

import (
	"fmt"
	"image"
	"math/rand"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTileStarts(t *testing.T) {
	for _, c := range []struct {
		n, size int
		want    []int
	}{{1000, 400, []int{0, 300, 600}}, {400, 400, []int{0}}, {401, 400, []int{0, 1}}, {800, 400, []int{0, 400}}, {30, 400, []int{0}}, {1249, 400, []int{0, 283, 566, 849}}} {
		if got := tileStarts(c.n, c.size); !slices.Equal(got, c.want) {
			t.Errorf("tileStarts(%d, %d) = %v, want %v", c.n, c.size, got, c.want)
		}
	}
}

// A 20 x 10 VOC image cut into 8 x 8 tiles: the tiles cover it (x at 0,
// 6, 12; y at 0, 2), each tile decodes to the same pixels as the crop of
// the whole image, boxes are clipped into tile coordinates and the ones
// mostly outside become Difficult; the mask is cut like the image.
func TestAnnotatedTiled(t *testing.T) {
	root := t.TempDir()
	rng := rand.New(rand.NewSource(5))
	writeFile(t, filepath.Join(root, "train/img1.png"), encodePNG(t, randRGBA(rng, 20, 10)))
	writeFile(t, filepath.Join(root, "train/img1.xml"), []byte(vocXML)) // tree (1,2)-(8,9), car (0,0)-(20,10) difficult (VOC counts from 1)
	writeFile(t, filepath.Join(root, "masks/train/img1.png"), maskPNG(t, 20, 10))
	a, err := OpenAnnotated(root, "train", AnnotatedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tl, err := a.Tiled(8, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() != 1 || a.Items[0].Crop != (image.Rectangle{}) {
		t.Fatal("Tiled changed its receiver")
	}
	var rects []image.Rectangle
	for _, it := range tl.Items {
		rects = append(rects, it.Crop)
	}
	want := []image.Rectangle{image.Rect(0, 0, 8, 8), image.Rect(6, 0, 14, 8), image.Rect(12, 0, 20, 8),
		image.Rect(0, 2, 8, 10), image.Rect(6, 2, 14, 10), image.Rect(12, 2, 20, 10)}
	if !slices.Equal(rects, want) {
		t.Fatalf("tiles %v, want %v", rects, want)
	}
	whole, err := a.Image(0)
	if err != nil {
		t.Fatal(err)
	}
	full, err := a.Mask(0)
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range tl.Items {
		img, err := tl.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		r := it.Crop
		if img.W != 8 || img.H != 8 || it.W != 8 || it.H != 8 {
			t.Fatalf("tile %d: %d x %d image, item %d x %d", i, img.W, img.H, it.W, it.H)
		}
		m, err := tl.Mask(i)
		if err != nil {
			t.Fatal(err)
		}
		for y := 0; y < 8; y++ {
			for x := 0; x < 8; x++ {
				for c := 0; c < 3; c++ {
					if img.At(c, y, x) != whole.At(c, r.Min.Y+y, r.Min.X+x) {
						t.Fatalf("tile %d pixel (%d,%d,%d) differs from the whole image's", i, c, y, x)
					}
				}
				if m.Pix[y*8+x] != full.Pix[(r.Min.Y+y)*20+r.Min.X+x] {
					t.Fatalf("tile %d mask (%d,%d) differs", i, y, x)
				}
			}
		}
		if !strings.HasSuffix(tl.Source(i), fmt.Sprintf("img1.png[%d,%d-%d,%d]", r.Min.X, r.Min.Y, r.Max.X, r.Max.Y)) {
			t.Errorf("tile %d source %q", i, tl.Source(i))
		}
	}
	// Tile 0 (0,0)-(8,8): the tree (1,2)-(8,9) keeps 42/49 of itself; the
	// car (0,0)-(20,10) keeps 64/200 and was difficult already.
	b := tl.Items[0].Boxes
	if len(b) != 2 || b[0] != (Box{Class: 1, X0: 1, Y0: 2, X1: 8, Y1: 8}) || !b[1].Difficult {
		t.Errorf("tile 0 boxes %+v", b)
	}
	// Tile 1 (6,0)-(14,8) holds 12/49 of the tree: difficult there.
	if b := tl.Items[1].Boxes; len(b) != 2 || b[0] != (Box{Class: 1, X0: 0, Y0: 2, X1: 2, Y1: 8, Difficult: true}) {
		t.Errorf("tile 1 boxes %+v", b)
	}
	// Tile 2 (12,0)-(20,8) does not reach the tree.
	if b := tl.Items[2].Boxes; len(b) != 1 || b[0].Class != 0 {
		t.Errorf("tile 2 boxes %+v", b)
	}
	// Tile 3 (0,2)-(8,10): the tree is whole there.
	if b := tl.Items[3].Boxes; b[0] != (Box{Class: 1, X0: 1, Y0: 0, X1: 8, Y1: 7}) {
		t.Errorf("tile 3 tree %+v", b[0])
	}
	// A tree cut to a third of itself is difficult.
	if c, ok := clipBox(Box{X0: 0, Y0: 0, X1: 9, Y1: 3}, image.Rect(6, 0, 20, 20), 0.5); !ok || !c.Difficult || c != (Box{X0: 0, Y0: 0, X1: 3, Y1: 3, Difficult: true}) {
		t.Errorf("clipped box %+v %v", c, ok)
	}
	small, _ := a.Tiled(32, 0.5)
	if small.Len() != 1 || !small.Items[0].Crop.Empty() {
		t.Errorf("an image smaller than the tile: %+v", small.Items)
	}
	if _, err := tl.Tiled(8, 0.5); err == nil || !strings.Contains(err.Error(), "already tiled") {
		t.Errorf("tiling tiles: %v", err)
	}
	for _, bad := range []struct {
		size int
		vis  float64
	}{{4, 0.5}, {8, -0.1}, {8, 1.5}} {
		if _, err := a.Tiled(bad.size, bad.vis); err == nil {
			t.Errorf("Tiled(%d, %g) accepted", bad.size, bad.vis)
		}
	}
	if _, err := DecodeWith(encodePNG(t, randRGBA(rng, 6, 6)), DecodeOptions{Crop: image.Rect(2, 2, 8, 4)}); err == nil || !strings.Contains(err.Error(), "outside the 6 x 6 image") {
		t.Errorf("crop outside the image: %v", err)
	}
}

// DeepForest's OSBS_029.xml names OSBS_029.tif; the folder holds
// OSBS_029.png: the annotation is matched by stem.
func TestOpenAnnotatedVOCByStem(t *testing.T) {
	root := t.TempDir()
	rng := rand.New(rand.NewSource(6))
	writeFile(t, filepath.Join(root, "test/img1.png"), encodePNG(t, randRGBA(rng, 20, 10)))
	writeFile(t, filepath.Join(root, "test/img1.xml"), []byte(strings.Replace(vocXML, "img1.png", "img1.tif", 1)))
	a, err := OpenAnnotated(root, "test", AnnotatedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() != 1 || !a.Items[0].Labelled || len(a.Items[0].Boxes) != 2 {
		t.Fatalf("items %+v", a.Items)
	}
	// Two images of the stem: ambiguous, left unlabelled.
	writeFile(t, filepath.Join(root, "test/img1.jpg"), encodeJPEG(t, smoothRGBA(20, 10)))
	if a, err = OpenAnnotated(root, "test", AnnotatedOptions{}); err != nil || len(a.WithBoxes()) != 0 {
		t.Fatalf("ambiguous stem: %v, %d labelled", err, len(a.WithBoxes()))
	}
}
