package runtime

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/testenv"
)

// foreignModel is laid out like a torchvision ResNet exported by
// torch.onnx.export, without selfsup metadata; see testdata/make_foreign.py.
const foreignModel = "testdata/foreign_resnet.onnx"

type foreignExpected struct {
	Input       string    `json:"input"`
	Output      string    `json:"output"`
	Size        int       `json:"size"`
	Batch       int       `json:"batch"`
	BatchShape  []int64   `json:"batch_output_shape"`
	BatchOutput []float64 `json:"batch_output"`
	Constant    []struct {
		RGB    [3]int    `json:"rgb"`
		Output []float64 `json:"output"`
	} `json:"constant"`
}

func loadForeignExpected(t *testing.T) foreignExpected {
	t.Helper()
	b, err := os.ReadFile("testdata/foreign_resnet_expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var e foreignExpected
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("foreign_resnet_expected.json: %v", err)
	}
	return e
}

// foreignBatch rebuilds make_foreign.py's formula input [n, 3, size, size].
func foreignBatch(n, size int) []float32 {
	x := make([]float32, n*3*size*size)
	i := 0
	for a := 0; a < n; a++ {
		for c := 0; c < 3; c++ {
			for h := 0; h < size; h++ {
				for w := 0; w < size; w++ {
					x[i] = float32((a*7+c*5+h*3+w)%17-8) / 8
					i++
				}
			}
		}
	}
	return x
}

// maxAbsDiff returns max |got - want| and fails on a length mismatch or NaN.
func maxAbsDiff(t *testing.T, what string, got []float32, want []float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	d := 0.0
	for i := range want {
		if math.IsNaN(float64(got[i])) {
			t.Fatalf("%s: value %d is NaN", what, i)
		}
		d = math.Max(d, math.Abs(float64(got[i])-want[i]))
	}
	return d
}

// TestForeignModelMatchesPythonORT runs the foreign model on make_foreign.py's
// formula batch and compares with what Python's onnxruntime computed when the
// fixture was made.
func TestForeignModelMatchesPythonORT(t *testing.T) {
	needLibrary(t)
	e := loadForeignExpected(t)
	s, err := Open(foreignModel, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, out := s.Inputs(), s.Outputs()
	if len(in) != 1 || in[0].Name != e.Input || !equalShape(in[0].Shape, []int64{-1, 3, int64(e.Size), int64(e.Size)}) ||
		len(out) != 1 || out[0].Name != e.Output {
		t.Fatalf("foreign model signature: inputs %+v, outputs %+v", in, out)
	}
	x := foreignBatch(e.Batch, e.Size)
	res, err := s.Run(x, []int64{int64(e.Batch), 3, int64(e.Size), int64(e.Size)})
	if err != nil {
		t.Fatal(err)
	}
	got := res[e.Output]
	if !equalShape(got.Shape, e.BatchShape) {
		t.Fatalf("output shape %v, Python onnxruntime gave %v", got.Shape, e.BatchShape)
	}
	d := maxAbsDiff(t, "foreign batch", got.Data, e.BatchOutput)
	if d > 1e-5 {
		t.Errorf("max |Go - Python onnxruntime| = %.3g > 1e-5", d)
	}
	t.Logf("foreign model, formula batch: max |Go - Python onnxruntime| = %.2g", d)
}

func writeImage(t *testing.T, path string, img image.Image) {
	t.Helper()
	var b bytes.Buffer
	var err error
	if strings.HasSuffix(path, ".jpg") {
		err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 90})
	} else {
		err = png.Encode(&b, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestForeignModelExtractsImages extracts features from PNG files of one
// colour each, of several sizes, through the whole path a user takes
// (image folder, Session.Preprocess defaults for a model without
// metadata, DefaultOutput, ExtractDataset) and compares them with Python
// onnxruntime's output for the torchvision-normalised input of that colour.
func TestForeignModelExtractsImages(t *testing.T) {
	needLibrary(t)
	e := loadForeignExpected(t)
	s, err := Open(foreignModel, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.Preprocess()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Preprocess{Channels: 3, Size: 224, Mean: ImageNetMean(), Std: ImageNetStd()}); fmt.Sprint(p) != fmt.Sprint(want) {
		t.Errorf("Preprocess() of a model without metadata = %+v, want the defaults %+v", p, want)
	}
	if o, err := s.DefaultOutput(); err != nil || o != e.Output {
		t.Errorf("DefaultOutput() = %q, %v; want %q", o, err, e.Output)
	}

	dir := t.TempDir()
	sizes := [][2]int{{224, 224}, {30, 50}, {300, 260}, {1, 1}}
	for i, c := range e.Constant {
		hw := sizes[i%len(sizes)]
		img := image.NewNRGBA(image.Rect(0, 0, hw[1], hw[0]))
		for y := 0; y < hw[0]; y++ {
			for x := 0; x < hw[1]; x++ {
				img.SetNRGBA(x, y, color.NRGBA{uint8(c.RGB[0]), uint8(c.RGB[1]), uint8(c.RGB[2]), 255})
			}
		}
		writeImage(t, filepath.Join(dir, fmt.Sprintf("img%02d.png", i)), img)
	}
	ds, err := data.OpenImageFolder(dir, "", data.FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	feats, dim, err := ExtractDataset(s, ds, ExtractOptions{Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != len(e.Constant) || dim != int(e.BatchShape[1]) {
		t.Fatalf("%d images, dim %d; want %d, %d", ds.Len(), dim, len(e.Constant), e.BatchShape[1])
	}
	for i, c := range e.Constant {
		d := maxAbsDiff(t, ds.Source(i), feats[i*dim:(i+1)*dim], c.Output)
		if d > 1e-5 {
			t.Errorf("%s (colour %v): max |Go extract - Python onnxruntime| = %.3g > 1e-5", ds.Source(i), c.RGB, d)
		}
		t.Logf("%s colour %v: max |Go - Python| %.2g", filepath.Base(ds.Source(i)), c.RGB, d)
	}
}

// pythonORT returns a Python with onnxruntime and numpy (see
// testenv.Python).
func pythonORT(t *testing.T) string { return testenv.Python(t, "onnxruntime", "numpy") }

// TestForeignModelTexturedVsPython decodes and preprocesses photographs-like
// noisy PNG and JPEG files of several sizes with Go, extracts features with
// Go's runtime, and runs Python's onnxruntime on the same preprocessed
// tensors: max |Go - Python| <= 1e-5. Set SELFSUP_FOREIGN_ONNX to the path
// of any other image model (for example a torchvision ResNet-50 exported
// with torch.onnx.export) to run the same check on it.
func TestForeignModelTexturedVsPython(t *testing.T) {
	needLibrary(t)
	py := pythonORT(t)
	modelsToCheck := []string{foreignModel}
	if m := os.Getenv("SELFSUP_FOREIGN_ONNX"); m != "" {
		modelsToCheck = append(modelsToCheck, m)
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(3))
	for i, hw := range [][2]int{{64, 48}, {250, 330}, {224, 224}} {
		img := image.NewNRGBA(image.Rect(0, 0, hw[1], hw[0]))
		for y := 0; y < hw[0]; y++ {
			for x := 0; x < hw[1]; x++ {
				img.SetNRGBA(x, y, color.NRGBA{uint8(x * 255 / hw[1]), uint8(rng.Intn(256)), uint8((x + y) % 256), 255})
			}
		}
		ext := ".png"
		if i == 1 {
			ext = ".jpg"
		}
		writeImage(t, filepath.Join(dir, fmt.Sprintf("tex%d%s", i, ext)), img)
	}
	ds, err := data.OpenImageFolder(dir, "", data.FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, model := range modelsToCheck {
		t.Run(filepath.Base(model), func(t *testing.T) {
			s, err := Open(model, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			p, err := s.Preprocess()
			if err != nil {
				t.Fatal(err)
			}
			output, err := s.DefaultOutput()
			if err != nil {
				t.Fatal(err)
			}
			feats, dim, err := ExtractDataset(s, ds, ExtractOptions{Batch: 2})
			if err != nil {
				t.Fatal(err)
			}
			// The same preprocessed tensors, for Python.
			item := p.Channels * p.Size * p.Size
			x := make([]float32, ds.Len()*item)
			load := p.Loader(ds, 0)
			for i := 0; i < ds.Len(); i++ {
				if err := load(i, x[i*item:(i+1)*item]); err != nil {
					t.Fatal(err)
				}
			}
			raw := make([]byte, 4*len(x))
			for i, v := range x {
				binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
			}
			tmp := t.TempDir()
			in, out := filepath.Join(tmp, "in.f32"), filepath.Join(tmp, "out.f32")
			if err := os.WriteFile(in, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(py, "testdata/ort_run.py", model, in, fmt.Sprintf("%d,%d,%d,%d", ds.Len(), p.Channels, p.Size, p.Size), output, out)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("ort_run.py: %v\n%s", err, b)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != 4*len(feats) {
				t.Fatalf("Python wrote %d values, Go extracted %d", len(b)/4, len(feats))
			}
			want := make([]float64, len(feats))
			for i := range want {
				want[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
			}
			d := maxAbsDiff(t, "features", feats, want)
			if d > 1e-5 {
				t.Errorf("%s: max |Go extract - Python onnxruntime| = %.3g > 1e-5", model, d)
			}
			t.Logf("%s (%d images, dim %d, output %q): max |Go - Python| %.2g", model, ds.Len(), dim, output, d)
		})
	}
}

// TestForeignModelReproducible reruns make_foreign.py and checks that it
// writes the committed fixtures byte for byte.
func TestForeignModelReproducible(t *testing.T) {
	testenv.Short(t, "the Python fixture check")
	py := pythonORT(t)
	dir := t.TempDir()
	if out, err := exec.Command(py, "testdata/make_foreign.py", dir).CombinedOutput(); err != nil {
		t.Fatalf("make_foreign.py: %v\n%s", err, out)
	}
	for _, name := range []string{"foreign_resnet.onnx", "foreign_resnet_expected.json"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("make_foreign.py writes a %s that differs from testdata/%s: rerun it and commit the result", name, name)
		}
	}
}
