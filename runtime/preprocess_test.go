package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/data"
)

// TestFillMatchesDataNormalize checks the fused Fill against the plain
// path it replaces, data.Normalize(data.ToTensor(img)), bit for bit.
func TestFillMatchesDataNormalize(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, c := range []struct {
		channels  int
		mean, std []float32
	}{
		{3, []float32{0.485, 0.456, 0.406}, []float32{0.229, 0.224, 0.225}},
		{1, []float32{0.5}, []float32{0.25}},
		{3, []float32{0.1, -0.3, 0.9}, []float32{2, 0.01, -0.5}},
	} {
		const size = 13
		img := data.Image{C: c.channels, H: size, W: size, Pix: make([]uint8, c.channels*size*size)}
		for i := range img.Pix {
			img.Pix[i] = uint8(rng.Intn(256))
		}
		img.Pix[0], img.Pix[1] = 0, 255
		p := Preprocess{Channels: c.channels, Size: size, Mean: c.mean, Std: c.std}
		got := make([]float32, len(img.Pix))
		if err := p.Fill(img, got); err != nil {
			t.Fatal(err)
		}
		want, err := data.Normalize(data.ToTensor(img), c.mean, c.std)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] != want.Data[i] {
				t.Fatalf("%d channels: value %d = %v, data.Normalize gives %v", c.channels, i, got[i], want.Data[i])
			}
		}
	}
	p := Preprocess{Channels: 3, Size: 4, Mean: ImageNetMean(), Std: ImageNetStd()}
	if err := p.Fill(data.Image{C: 3, H: 5, W: 4, Pix: make([]uint8, 60)}, make([]float32, 60)); err == nil || !strings.Contains(err.Error(), "model expects 3x4x4") {
		t.Errorf("Fill with a wrong image size: %v", err)
	}
	if err := p.Fill(data.Image{C: 3, H: 4, W: 4, Pix: make([]uint8, 48)}, make([]float32, 47)); err == nil {
		t.Error("Fill into a short destination succeeded")
	}
}

// TestPreprocessForeignDefaults: tiny.onnx carries no selfsup.* metadata
// (its keys are unprefixed), so it is preprocessed like a foreign model:
// ImageNet statistics and the input's static size.
func TestPreprocessForeignDefaults(t *testing.T) {
	s := openTiny(t, Options{})
	p, err := s.Preprocess()
	if err != nil {
		t.Fatal(err)
	}
	want := Preprocess{Channels: 3, Size: 8, Mean: ImageNetMean(), Std: ImageNetStd()}
	if fmt.Sprint(p) != fmt.Sprint(want) {
		t.Errorf("Preprocess() = %+v, want %+v", p, want)
	}
	if p.CHW() != [3]int{3, 8, 8} {
		t.Errorf("CHW() = %v", p.CHW())
	}
	out, err := s.DefaultOutput()
	if err != nil || out != "features" {
		t.Errorf("DefaultOutput() = %q, %v; want features", out, err)
	}

	// The same model with "features" renamed (same length, so the protobuf
	// stays valid) has two outputs and none called features: Extract must
	// be told which one.
	b, err := os.ReadFile(tinyModel)
	if err != nil {
		t.Fatal(err)
	}
	renamed := filepath.Join(t.TempDir(), "renamed.onnx")
	if err := os.WriteFile(renamed, bytes.ReplaceAll(b, []byte("features"), []byte("featurez")), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(renamed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if out, err := r.DefaultOutput(); err == nil || !strings.Contains(err.Error(), "featurez, relu") {
		t.Errorf("DefaultOutput() of a model with outputs featurez and relu = %q, %v; want an error listing them", out, err)
	}
	load := func(i int, dst []float32) error { tinyImage(i, dst); return nil }
	if _, _, err := Extract(r, 2, [3]int{tinyC, tinyH, tinyW}, load, ExtractOptions{}); err == nil || !strings.Contains(err.Error(), "name the one to extract") {
		t.Errorf("Extract without an output name: %v", err)
	}
	feats, dim, err := Extract(r, 2, [3]int{tinyC, tinyH, tinyW}, load, ExtractOptions{Output: "featurez"})
	if err != nil || dim != tinyOut || len(feats) != 2*tinyOut {
		t.Errorf("Extract of output featurez: %d values, dim %d, %v", len(feats), dim, err)
	}
}

// memDataset is an in-memory labelled dataset; item i is a constant image.
type memDataset struct {
	imgs []data.Image
	bad  int // index whose Image fails, -1 for none
}

func (m *memDataset) Len() int { return len(m.imgs) }
func (m *memDataset) Image(i int) (data.Image, error) {
	if i == m.bad {
		return data.Image{}, errors.New("corrupt JPEG")
	}
	img := m.imgs[i]
	img.Pix = append([]uint8(nil), img.Pix...)
	return img, nil
}
func (m *memDataset) Label(i int) int     { return i % 2 }
func (m *memDataset) Classes() []string   { return []string{"a", "b"} }
func (m *memDataset) Source(i int) string { return fmt.Sprintf("mem/%03d.png", i) }

// TestExtractDatasetResizes feeds images of other sizes through
// ExtractDataset: each is resized to the model's 8x8 and normalised with
// ImageNet statistics, which for a constant image gives a constant input
// that the plain-Go reference can check.
func TestExtractDatasetResizes(t *testing.T) {
	s := openTiny(t, Options{IntraOpThreads: 1})
	ds := &memDataset{bad: -1}
	sizes := [][2]int{{8, 8}, {16, 16}, {3, 5}, {40, 24}, {8, 9}}
	for i, hw := range sizes {
		img := data.Image{C: 3, H: hw[0], W: hw[1], Pix: make([]uint8, 3*hw[0]*hw[1])}
		for c := 0; c < 3; c++ {
			for k := 0; k < hw[0]*hw[1]; k++ {
				img.Pix[c*hw[0]*hw[1]+k] = uint8(40*i + 70*c)
			}
		}
		ds.imgs = append(ds.imgs, img)
	}
	feats, dim, err := ExtractDataset(s, ds, ExtractOptions{Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if dim != tinyOut || len(feats) != len(sizes)*dim {
		t.Fatalf("dim %d, %d values", dim, len(feats))
	}
	x := make([]float32, tinyC*tinyH*tinyW)
	for i := range sizes {
		for c := 0; c < 3; c++ {
			v := (float32(uint8(40*i+70*c))/255 - ImageNetMean()[c]) * (1 / ImageNetStd()[c])
			for k := 0; k < tinyH*tinyW; k++ {
				x[c*tinyH*tinyW+k] = v
			}
		}
		_, want := tinyReference(x)
		assertClose(t, fmt.Sprintf("item %d (%dx%d)", i, sizes[i][0], sizes[i][1]), feats[i*dim:(i+1)*dim], want, 1e-5)
	}

	ds.bad = 3
	if _, _, err := ExtractDataset(s, ds, ExtractOptions{Batch: 2}); err == nil || !strings.Contains(err.Error(), "mem/003.png") || !strings.Contains(err.Error(), "corrupt JPEG") {
		t.Errorf("extract with a corrupt item: %v, want an error naming mem/003.png", err)
	}
}

// TestExtractStream checks batch order and alignment, that the streamed
// output equals Extract's, and that an emit error stops the work.
func TestExtractStream(t *testing.T) {
	s := openTiny(t, Options{IntraOpThreads: 1})
	const n = 23
	load := func(i int, dst []float32) error { tinyImage(i, dst); return nil }
	all, _, err := Extract(s, n, [3]int{tinyC, tinyH, tinyW}, load, ExtractOptions{Batch: 5})
	if err != nil {
		t.Fatal(err)
	}
	var starts []int
	next := 0
	dim, err := ExtractStream(s, n, [3]int{tinyC, tinyH, tinyW}, load, func(start, count int, out []float32, dim int) error {
		starts = append(starts, start)
		if start != next || count != min(5, n-start) || len(out) != count*dim {
			return fmt.Errorf("batch at %d with %d items and %d values, expected start %d", start, count, len(out), next)
		}
		for i, v := range out {
			if v != all[start*dim+i] {
				return fmt.Errorf("item %d value %d: %v, Extract gave %v", start+i/dim, i%dim, v, all[start*dim+i])
			}
		}
		next += count
		return nil
	}, ExtractOptions{Batch: 5, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if dim != tinyOut || fmt.Sprint(starts) != "[0 5 10 15 20]" {
		t.Errorf("dim %d, batch starts %v; want %d, [0 5 10 15 20]", dim, starts, tinyOut)
	}
	stop := errors.New("disk full")
	calls := 0
	_, err = ExtractStream(s, n, [3]int{tinyC, tinyH, tinyW}, load, func(start, count int, out []float32, dim int) error {
		calls++
		if start == 10 {
			return stop
		}
		return nil
	}, ExtractOptions{Batch: 5})
	if !errors.Is(err, stop) || !strings.Contains(err.Error(), "items 10..14") || calls != 3 {
		t.Errorf("emit error: %v after %d calls; want the error wrapped with items 10..14 after 3 calls", err, calls)
	}
}

// BenchmarkLoader measures decode + resize + normalise of one JPEG, the
// per-image CPU cost of the extraction pipeline: a 32x32 CIFAR-sized image
// upsampled to 224 and a 320x240 photograph-sized one downsampled to 224.
func BenchmarkLoader(b *testing.B) {
	for _, c := range []struct{ w, h, size int }{{32, 32, 224}, {320, 240, 224}, {32, 32, 32}} {
		b.Run(fmt.Sprintf("%dx%d_to_%d", c.w, c.h, c.size), func(b *testing.B) {
			dir := b.TempDir()
			rng := rand.New(rand.NewSource(1))
			img := image.NewNRGBA(image.Rect(0, 0, c.w, c.h))
			for i := range img.Pix {
				img.Pix[i] = uint8(rng.Intn(256))
			}
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 75}); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "a.jpg"), buf.Bytes(), 0o644); err != nil {
				b.Fatal(err)
			}
			ds, err := data.OpenImageFolder(dir, "", data.FolderOptions{})
			if err != nil {
				b.Fatal(err)
			}
			p := Preprocess{Channels: 3, Size: c.size, Mean: ImageNetMean(), Std: ImageNetStd()}
			load := p.Loader(ds, 0)
			dst := make([]float32, 3*c.size*c.size)
			b.ReportAllocs()
			b.ResetTimer()
			for k := 0; k < b.N; k++ {
				if err := load(0, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFillLabL: in the lab-l space Fill takes RGB images and writes their
// normalised lightness, bit for bit
// data.Normalize(data.ToLabL(data.ToTensor(img))); Dataset decodes 3
// channels; a grey image or a 3-value mean is refused.
func TestFillLabL(t *testing.T) {
	const size = 9
	p := Preprocess{Channels: 1, Size: size, Mean: []float32{0.47}, Std: []float32{0.21}, Space: data.SpaceLabL}
	if p.DecodeChannels() != 3 || (Preprocess{Channels: 1}).DecodeChannels() != 1 {
		t.Fatalf("decode channels %d", p.DecodeChannels())
	}
	rng := rand.New(rand.NewSource(2))
	img := data.Image{C: 3, H: size, W: size, Pix: make([]uint8, 3*size*size)}
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.Intn(256))
	}
	dst := make([]float32, size*size)
	if err := p.Fill(img, dst); err != nil {
		t.Fatal(err)
	}
	want, err := data.Normalize(data.ToLabL(data.ToTensor(img)), p.Mean, p.Std)
	if err != nil {
		t.Fatal(err)
	}
	for i := range dst {
		if dst[i] != want.Data[i] {
			t.Fatalf("value %d: Fill %v, plain path %v", i, dst[i], want.Data[i])
		}
	}
	grey := data.Image{C: 1, H: size, W: size, Pix: make([]uint8, size*size)}
	if err := p.Fill(grey, dst); err == nil {
		t.Fatal("grey image filled into a lab-l input")
	}
	p.Mean = []float32{0.1, 0.2, 0.3}
	if err := p.Fill(img, dst); err == nil {
		t.Fatal("3 means accepted for the lightness")
	}
	conv := Preprocess{Channels: 1, Size: 4, Mean: []float32{0.5}, Std: []float32{0.25}, Space: data.SpaceLabL}.Dataset(&oneImage{img})
	if m, err := conv.Image(0); err != nil || m.C != 3 || m.H != 4 {
		t.Fatalf("converted image %dx%dx%d, %v", m.C, m.H, m.W, err)
	}
}

type oneImage struct{ img data.Image }

func (o *oneImage) Len() int                      { return 1 }
func (o *oneImage) Image(int) (data.Image, error) { return o.img, nil }
func (o *oneImage) Label(int) int                 { return -1 }
func (o *oneImage) Classes() []string             { return nil }
func (o *oneImage) Source(int) string             { return "one" }

// TestFillLab: in the lab space Fill takes RGB images and writes their
// normalised L*, a*, b* over 100, bit for bit
// data.Normalize(data.ToLabSpace(data.ToTensor(img))); Dataset decodes 3
// channels; a grey image or a single mean is refused.
func TestFillLab(t *testing.T) {
	const size = 7
	p := Preprocess{Channels: 3, Size: size, Mean: []float32{0.47, 0.03, -0.02}, Std: []float32{0.21, 0.11, 0.17}, Space: data.SpaceLab}
	if p.DecodeChannels() != 3 {
		t.Fatalf("decode channels %d", p.DecodeChannels())
	}
	rng := rand.New(rand.NewSource(3))
	img := data.Image{C: 3, H: size, W: size, Pix: make([]uint8, 3*size*size)}
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.Intn(256))
	}
	dst := make([]float32, 3*size*size)
	if err := p.Fill(img, dst); err != nil {
		t.Fatal(err)
	}
	want, err := data.Normalize(data.ToLabSpace(data.ToTensor(img)), p.Mean, p.Std)
	if err != nil {
		t.Fatal(err)
	}
	for i := range dst {
		if dst[i] != want.Data[i] {
			t.Fatalf("value %d: Fill %v, plain path %v", i, dst[i], want.Data[i])
		}
	}
	if rgb, _ := data.Normalize(data.ToTensor(img), p.Mean, p.Std); rgb.Data[size*size+3] == dst[size*size+3] {
		t.Fatal("the lab space filled RGB values")
	}
	grey := data.Image{C: 1, H: size, W: size, Pix: make([]uint8, size*size)}
	if err := p.Fill(grey, dst[:size*size]); err == nil {
		t.Fatal("grey image filled into a lab input")
	}
	p.Mean, p.Std = []float32{0.5}, []float32{0.25}
	if err := p.Fill(img, dst); err == nil {
		t.Fatal("one mean accepted for three Lab channels")
	}
}
