package pipeline

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/internal/testenv"
)

// denseFixture writes a COCO128-like set: 12 train and 6 test 32x32
// images, each with one bright square (class 0 "person" or 1 "ball" by
// colour) as a YOLO box and a class-index mask (ids 1 and 37), and a
// random-init resnet20c exported at 32 px with its three stage maps.
func denseFixture(t *testing.T) (dir, model string) {
	dir = t.TempDir()
	rng := rand.New(rand.NewSource(5))
	write := func(p string, b []byte) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	enc := func(m image.Image) []byte {
		var b bytes.Buffer
		if err := png.Encode(&b, m); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	write(filepath.Join(dir, "od/config.yaml"), []byte("names:\n  0: person\n  1: ball\n"))
	for split, n := range map[string]int{"train": 12, "val": 6} {
		for i := 0; i < n; i++ {
			img := image.NewRGBA(image.Rect(0, 0, 32, 32))
			mask := image.NewGray(image.Rect(0, 0, 32, 32))
			for p := range img.Pix {
				img.Pix[p] = uint8(rng.Intn(40))
			}
			cls, s := i%2, 8+rng.Intn(8)
			x0, y0 := rng.Intn(32-s), rng.Intn(32-s)
			for y := y0; y < y0+s; y++ {
				for x := x0; x < x0+s; x++ {
					img.SetRGBA(x, y, color.RGBA{uint8(255 * (1 - cls)), 200, uint8(255 * cls), 255})
					mask.Pix[y*32+x] = uint8(1 + 36*cls)
				}
			}
			name := fmt.Sprintf("%s%02d", split, i)
			write(filepath.Join(dir, "images", split, name+".png"), enc(img))
			write(filepath.Join(dir, "seg/masks", split, name+".png"), enc(mask))
			write(filepath.Join(dir, "od/labels", split, name+".txt"),
				[]byte(fmt.Sprintf("%d %g %g %g %g\n", cls, (float64(x0)+float64(s)/2)/32, (float64(y0)+float64(s)/2)/32, float64(s)/32, float64(s)/32)))
		}
	}
	b, err := RandomBackbone("resnet20c", 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	model = filepath.Join(dir, "m.onnx")
	if err := b.Export(model, export.Options{Outputs: []string{"stage1", "stage2", "stage3"}, FoldBN: true, InputSize: 32}); err != nil {
		t.Fatal(err)
	}
	return dir, model
}

func TestSegmentAndDetect(t *testing.T) {
	testenv.ORT(t)
	dir, model := denseFixture(t)
	out := t.TempDir()
	base := DenseConfig{Model: model, Data: dir, TrainSplit: "train", TestSplit: "val", Layers: []string{"stage1", "stage2"},
		Cache: filepath.Join(out, "cache"), Bootstrap: 50, Seed: 1, Batch: 8}
	sc := SegmentConfig{DenseConfig: base, Grid: 16, Epochs: []int{5, 20}, L2s: []float64{1e-3}}
	sc.Picture = filepath.Join(out, "seg.png")
	seg, err := Segment(sc)
	if err != nil {
		t.Fatal(err)
	}
	// Colour alone separates the classes: a linear head on stage1 must
	// get most pixels right.
	if seg.PixelAcc < 0.7 || seg.Classes != 2 || seg.NTest != 6 || !(seg.MIoUCI[0] <= seg.MIoU && seg.MIoU <= seg.MIoUCI[1]) {
		t.Errorf("segment: %v", seg)
	}
	if _, err := os.Stat(sc.Picture); err != nil {
		t.Error(err)
	}
	// The cache now answers without the model's outputs being recomputed:
	// a second run gives the same numbers.
	again, err := Segment(sc)
	if err != nil || again.MIoU != seg.MIoU {
		t.Errorf("second run (cached maps): %v, %v", again, err)
	}
	dc := DetectConfig{DenseConfig: base, Hidden: []int{0, 4}, Epochs: []int{10}, LR: 0.01}
	dc.Picture = filepath.Join(out, "det.png")
	det, err := Detect(dc)
	if err != nil {
		t.Fatal(err)
	}
	if det.NTest != 6 || det.AP50 < 0 || det.AP50 > 1 || math.IsNaN(det.AP) || det.PersonAP < 0 || det.CI95["ap"][0] > det.CI95["ap"][1] {
		t.Errorf("detect: %v", det)
	}
	// Tiled: every 32 px image is four 16 px tiles, scaled up to the
	// model's 32 px; colour still separates the classes.
	tc := sc
	tc.Tile, tc.Picture, tc.Epochs = 16, "", []int{20}
	tiled, err := Segment(tc)
	if err != nil {
		t.Fatal(err)
	}
	if tiled.NTest != 24 || tiled.PixelAcc < 0.7 {
		t.Errorf("tiled segment: %v", tiled)
	}
	// The baselines: raw pixels (4 x 4 patches flattened) separate the
	// colours; the prior-only head (a constant input) predicts one class
	// everywhere, so its pixel accuracy is at most the majority class's
	// share of the labelled test pixels.
	pc := sc
	pc.Picture, pc.Layers = "", []string{LayerPixels}
	pix, err := Segment(pc)
	if err != nil {
		t.Fatal(err)
	}
	pc.Layers = []string{LayerPrior}
	prior, err := Segment(pc)
	if err != nil {
		t.Fatal(err)
	}
	val, err := data.OpenAnnotated(dir, "val", data.AnnotatedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	count := map[uint8]int{}
	for i := range val.Items {
		m, err := val.Mask(i)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range m.Pix {
			if v != 0 {
				count[v]++
			}
		}
	}
	share := float64(max(count[1], count[37])) / float64(count[1]+count[37])
	if pix.PixelAcc < 0.7 || prior.PixelAcc > share+1e-9 || pix.MIoU <= prior.MIoU {
		t.Errorf("pixels: acc %.3f mIoU %.3f; prior: acc %.3f (majority share %.3f) mIoU %.3f", pix.PixelAcc, pix.MIoU, prior.PixelAcc, share, prior.MIoU)
	}
	bad := base
	bad.Size = 64
	if _, err := Segment(SegmentConfig{DenseConfig: bad}); err == nil {
		t.Error("--size 64 on a 32 px model: no error")
	}
}

// SpaceToDepth on a 1 x 4 x 4 ramp with 2 x 2 patches.
func TestSpaceToDepth(t *testing.T) {
	x := make([]float32, 16)
	for i := range x {
		x[i] = float32(i)
	}
	dst := make([]float32, 16)
	SpaceToDepth(dst, x, [3]int{1, 4, 4}, 2, 2, 2)
	want := []float32{0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15}
	for i := range want {
		if dst[i] != want[i] {
			t.Fatalf("SpaceToDepth = %v, want %v", dst, want)
		}
	}
}
