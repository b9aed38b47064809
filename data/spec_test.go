package data

import (
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
)

func TestOpenSpecAndSplits(t *testing.T) {
	dir := t.TempDir()
	ds := filepath.Join(dir, "toy.tar")
	testenv.ToyTar(t, ds, 8, 4, false)
	tr, te, err := OpenSplits(ds, SplitsOptions{MaxTrain: 4, Seed: 1})
	if err != nil || tr.Len() != 4 || te.Len() != 4 {
		t.Fatalf("splits: %v", err)
	}
	if _, _, err := OpenSplits(ds, SplitsOptions{Train: "nosuch"}); err == nil {
		t.Error("a missing split accepted")
	}
	small, err := Load(ds, "train", OpenOptions{Size: 8, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	if img, err := small.Image(0); err != nil || img.C != 1 || img.H != 8 {
		t.Fatalf("converted image %dx%dx%d, %v", img.C, img.H, img.W, err)
	}
	notArchive := filepath.Join(dir, "x.txt")
	os.WriteFile(notArchive, []byte("x"), 0o644)
	if _, err := Open(notArchive, "train", OpenOptions{}); err == nil || !strings.Contains(err.Error(), "not a .tar") {
		t.Errorf("a text file: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing"), "train", OpenOptions{}); err == nil || !strings.Contains(err.Error(), "expected fashion-mnist") {
		t.Errorf("a missing path: %v", err)
	}
	if Len(nil) != 0 || Len(tr) != 4 {
		t.Error("Len")
	}
}

// ChannelStats agrees with the mean and standard deviation computed by
// hand (red: 0, 255, 255, 255), and floors a constant channel's (green)
// deviation at 1e-3.
func TestChannelStats(t *testing.T) {
	a := image.NewRGBA(image.Rect(0, 0, 2, 1))
	b := image.NewRGBA(image.Rect(0, 0, 2, 1))
	a.Set(0, 0, color.RGBA{0, 7, 0, 255})
	a.Set(1, 0, color.RGBA{255, 7, 0, 255})
	b.Set(0, 0, color.RGBA{255, 7, 0, 255})
	b.Set(1, 0, color.RGBA{255, 7, 0, 255})
	mean, std, err := ChannelStats(Images{a, b}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(mean[0])-0.75) > 1e-6 || math.Abs(float64(std[0])-math.Sqrt(0.75*0.25)) > 1e-6 {
		t.Errorf("channel 0: mean %v std %v, want 0.75 and %v", mean[0], std[0], math.Sqrt(0.75*0.25))
	}
	if math.Abs(float64(mean[1])-7.0/255) > 1e-6 || std[1] != 1e-3 {
		t.Errorf("channel 1: mean %v std %v, want %v and 1e-3", mean[1], std[1], 7.0/255)
	}
}
