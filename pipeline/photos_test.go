package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/train"
)

// writePhotos writes n smooth w x h JPEGs (and one grayscale one) straight
// into dir: a user's own flat folder of photos, no train/ split, no labels.
func writePhotos(t *testing.T, dir string, n, w, h int) {
	t.Helper()
	for i := 0; i <= n; i++ {
		var m image.Image
		if i == n {
			g := image.NewGray(image.Rect(0, 0, h, w)) // portrait, gray
			for k := range g.Pix {
				g.Pix[k] = uint8(k * 7)
			}
			m = g
		} else {
			c := image.NewRGBA(image.Rect(0, 0, w, h))
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					c.Set(x, y, color.RGBA{uint8(x + 40*i), uint8(y), uint8(x + y), 255})
				}
			}
			m = c
		}
		var b bytes.Buffer
		if err := jpeg.Encode(&b, m, nil); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("IMG_%04d.jpg", i)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Regression (issue 16): a flat folder of one's own photos was refused
// without --split "", then trained at full resolution (resnet18c: a
// segfault at the default batch, the OOM killer at batch 2). It now trains
// without a flag at the architecture's input size: 32 px for CIFAR-stem
// networks, 224 for ImageNet-stem ones, recorded in the config.
func TestPretrainOnOwnPhotos(t *testing.T) {
	dir := t.TempDir()
	writePhotos(t, dir, 5, 400, 300)
	archs := map[string]int{"resnet20c": 32, "resnet18": 224}
	if testing.Short() {
		delete(archs, "resnet18")
	}
	for arch, want := range archs {
		cfg := train.DefaultConfig("rotation", arch)
		cfg.Batch, cfg.Steps, cfg.ValImages, cfg.CheckpointEvery = 2, 2, 0, 0
		res, err := Pretrain(context.Background(), PretrainConfig{Train: cfg, Data: dir, Out: filepath.Join(t.TempDir(), "run")})
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		ck, err := train.LoadCheckpoint(res.Checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		if got := ck.Config.Pretext.InputSize; got != want {
			t.Errorf("%s: trained at %d px, want %d", arch, got, want)
		}
		if ck.Config.Pretext.Channels != 3 {
			t.Errorf("%s: %d channels, want 3 (the gray photo converted)", arch, ck.Config.Pretext.Channels)
		}
	}
}
