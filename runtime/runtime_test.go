package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
)

const tinyModel = "testdata/tiny.onnx"

// Shape of the tiny model (see testdata/make_tiny.py).
const (
	tinyC, tinyH, tinyW, tinyOut, tinyK = 3, 8, 8, 4, 3
)

// needLibrary skips the test when the ONNX Runtime library is not installed.
func needLibrary(t *testing.T) {
	t.Helper()
	testenv.ORT(t)
	if err := Init(); err != nil {
		t.Fatalf("Init: %v", err)
	}
}

func openTiny(t *testing.T, opts Options) *Session {
	t.Helper()
	needLibrary(t)
	s, err := Open(tinyModel, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", tinyModel, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// tinyImage fills dst ([3,8,8]) with the input formula of make_tiny.py for batch index n.
func tinyImage(n int, dst []float32) {
	for c := 0; c < tinyC; c++ {
		for h := 0; h < tinyH; h++ {
			for w := 0; w < tinyW; w++ {
				v := (n*192+c*64+h*8+w)%17 - 8
				dst[(c*tinyH+h)*tinyW+w] = float32(v) / 8
			}
		}
	}
}

func tinyBatch(n int) []float32 {
	item := tinyC * tinyH * tinyW
	x := make([]float32, n*item)
	for i := 0; i < n; i++ {
		tinyImage(i, x[i*item:(i+1)*item])
	}
	return x
}

// tinyReference computes the tiny net in float64 in plain Go: conv 3x3 (pad
// 1) with the make_tiny.py weights, ReLU, global average pool. It returns
// relu [4,8,8] and features [4] for one image [3,8,8].
func tinyReference(x []float32) (relu []float64, features []float64) {
	weight := func(o, c, i, j int) float64 { return float64((o*27+c*9+i*3+j)%7-3) / 8 }
	bias := func(o int) float64 { return (float64(o) - 1.5) / 4 }
	relu = make([]float64, tinyOut*tinyH*tinyW)
	features = make([]float64, tinyOut)
	for o := 0; o < tinyOut; o++ {
		for h := 0; h < tinyH; h++ {
			for w := 0; w < tinyW; w++ {
				s := bias(o)
				for c := 0; c < tinyC; c++ {
					for i := 0; i < tinyK; i++ {
						for j := 0; j < tinyK; j++ {
							y, z := h+i-1, w+j-1
							if y < 0 || y >= tinyH || z < 0 || z >= tinyW {
								continue
							}
							s += weight(o, c, i, j) * float64(x[(c*tinyH+y)*tinyW+z])
						}
					}
				}
				s = math.Max(s, 0)
				relu[(o*tinyH+h)*tinyW+w] = s
				features[o] += s / (tinyH * tinyW)
			}
		}
	}
	return relu, features
}

func assertClose(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s[%d] = %g, want %g (|diff| %g > %g)", what, i, got[i], want[i], d, tol)
		}
	}
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLibraryPath(t *testing.T) {
	dir := t.TempDir()

	missing := filepath.Join(dir, "nope", "libonnxruntime.so")
	t.Setenv(LibraryEnv, missing)
	_, err := LibraryPath()
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "scripts/setup.sh") {
		t.Fatalf("LibraryPath with missing %s: got %v, want an error naming it and scripts/setup.sh", LibraryEnv, err)
	}

	t.Setenv(LibraryEnv, dir)
	if _, err := LibraryPath(); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("LibraryPath with a directory: got %v, want an error saying it is a directory", err)
	}

	present := filepath.Join(dir, "lib.so")
	if err := os.WriteFile(present, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(LibraryEnv, present)
	if p, err := LibraryPath(); err != nil || p != present {
		t.Fatalf("LibraryPath = %q, %v; want %q, nil", p, err, present)
	}

	// Unset: the default cache location under XDG_CACHE_HOME.
	t.Setenv(LibraryEnv, "")
	t.Setenv("XDG_CACHE_HOME", dir)
	want := filepath.Join(dir, "selfsup", "onnxruntime", LibraryVersion, "libonnxruntime.so")
	if p, err := DefaultLibraryPath(); err != nil || p != want {
		t.Fatalf("DefaultLibraryPath = %q, %v; want %q", p, err, want)
	}
	_, err = LibraryPath()
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "scripts/setup.sh") || !strings.Contains(err.Error(), LibraryEnv) {
		t.Fatalf("LibraryPath without library: got %v, want an error naming %s, scripts/setup.sh and %s", err, want, LibraryEnv)
	}
	if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(want, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := LibraryPath(); err != nil || p != want {
		t.Fatalf("LibraryPath = %q, %v; want %q", p, err, want)
	}
}

const initChildEnv = "SELFSUP_RUNTIME_INIT_CHILD"

// TestInitChild runs only as the child process of TestInitBadLibrary: a
// fresh process whose ONNXRUNTIME_LIB points at something that is not ONNX
// Runtime. It prints the errors for the parent to check.
func TestInitChild(t *testing.T) {
	if os.Getenv(initChildEnv) != "1" {
		t.Skip("helper process for TestInitBadLibrary")
	}
	var errs []string
	for k := 0; k < 2; k++ {
		if err := Init(); err != nil {
			errs = append(errs, err.Error())
		} else {
			errs = append(errs, "")
		}
	}
	_, err := Open(tinyModel, Options{})
	if err != nil {
		errs = append(errs, err.Error())
	} else {
		errs = append(errs, "")
	}
	b, _ := json.Marshal(errs)
	fmt.Printf("INIT-ERRORS %s\n", b)
}

// TestInitBadLibrary points ONNXRUNTIME_LIB at a missing file, a file that
// is not a library and a library that is not ONNX Runtime, each in a fresh
// process (the environment is per process), and checks that Init and Open
// return one clear error every time and do not panic.
func TestInitBadLibrary(t *testing.T) {
	if os.Getenv(initChildEnv) == "1" {
		t.Skip("in child")
	}
	dir := t.TempDir()
	text := filepath.Join(dir, "libonnxruntime.so")
	if err := os.WriteFile(text, []byte("this is not a shared library\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"missing":       filepath.Join(dir, "missing", "libonnxruntime.so"),
		"not-a-library": text,
	}
	// A real shared library without OrtGetApiBase.
	for _, p := range []string{"/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1"} {
		if _, err := os.Stat(p); err == nil {
			cases["other-library"] = p
			break
		}
	}
	for name, lib := range cases {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestInitChild$", "-test.v")
			cmd.Env = append(os.Environ(), initChildEnv+"=1", LibraryEnv+"="+lib)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child process failed: %v\n%s", err, out)
			}
			if bytes.Contains(out, []byte("panic")) {
				t.Fatalf("child panicked:\n%s", out)
			}
			i := bytes.Index(out, []byte("INIT-ERRORS "))
			if i < 0 {
				t.Fatalf("child printed no errors:\n%s", out)
			}
			line := out[i+len("INIT-ERRORS "):]
			line = line[:bytes.IndexByte(line, '\n')]
			var errs []string
			if err := json.Unmarshal(line, &errs); err != nil {
				t.Fatalf("parse child output %q: %v", line, err)
			}
			if len(errs) != 3 {
				t.Fatalf("got %d results, want 3: %q", len(errs), errs)
			}
			for k, e := range errs {
				if e == "" {
					t.Fatalf("call %d with %s=%s succeeded, want an error", k, LibraryEnv, lib)
				}
				if !strings.HasPrefix(e, "runtime: ") || !strings.Contains(e, lib) || !strings.Contains(e, "scripts/setup.sh") {
					t.Errorf("call %d: error %q should start with \"runtime: \", name %s and say how to install the library", k, e, lib)
				}
				if strings.Count(e, "scripts/setup.sh") != 1 {
					t.Errorf("call %d: error %q should be one clear message", k, e)
				}
			}
			if errs[0] != errs[1] {
				t.Errorf("second Init returned %q, first %q: want the same failure every time", errs[1], errs[0])
			}
			t.Logf("%s: %s", name, errs[0])
		})
	}
}

func TestVersion(t *testing.T) {
	needLibrary(t)
	v, err := Version()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "1.24.") {
		t.Errorf("ONNX Runtime version %q, want 1.24.x", v)
	}
	if LoadedLibrary() == "" {
		t.Error("LoadedLibrary is empty after Init")
	}
}

func TestSessionInfoAndMetadata(t *testing.T) {
	s := openTiny(t, Options{})
	ins, outs := s.Inputs(), s.Outputs()
	if len(ins) != 1 || ins[0].Name != "images" || !equalShape(ins[0].Shape, []int64{-1, 3, 8, 8}) || !ins[0].float {
		t.Errorf("Inputs() = %+v, want images [-1 3 8 8] float", ins)
	}
	if len(outs) != 2 || outs[0].Name != "features" || !equalShape(outs[0].Shape, []int64{-1, 4}) ||
		outs[1].Name != "relu" || !equalShape(outs[1].Shape, []int64{-1, 4, 8, 8}) {
		t.Errorf("Outputs() = %+v, want features [-1 4], relu [-1 4 8 8]", outs)
	}
	ins[0].Shape[0] = 99 // a copy: must not change the session
	if s.Inputs()[0].Shape[0] != -1 {
		t.Error("Inputs() returned the session's own slice")
	}
	md, err := s.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"arch": "tiny-conv", "input_size": "8", "mean": "0.5,0.5,0.5", "std": "0.25,0.25,0.25", "task": "test",
	}
	if len(md) != len(want) {
		t.Errorf("Metadata() = %v, want %v", md, want)
	}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("Metadata()[%q] = %q, want %q", k, md[k], v)
		}
	}
}

func TestRunMatchesReference(t *testing.T) {
	s := openTiny(t, Options{IntraOpThreads: 1})
	item := tinyC * tinyH * tinyW
	for _, n := range []int{1, 3, 5} {
		x := tinyBatch(n)
		res, err := s.Run(x, []int64{int64(n), tinyC, tinyH, tinyW})
		if err != nil {
			t.Fatalf("batch %d: %v", n, err)
		}
		f, r := res["features"], res["relu"]
		if !equalShape(f.Shape, []int64{int64(n), tinyOut}) || !equalShape(r.Shape, []int64{int64(n), tinyOut, tinyH, tinyW}) {
			t.Fatalf("batch %d: shapes features %v relu %v", n, f.Shape, r.Shape)
		}
		for i := 0; i < n; i++ {
			wantRelu, wantFeat := tinyReference(x[i*item : (i+1)*item])
			assertClose(t, fmt.Sprintf("batch %d features item %d", n, i), f.Data[i*tinyOut:(i+1)*tinyOut], wantFeat, 1e-5)
			ri := tinyOut * tinyH * tinyW
			assertClose(t, fmt.Sprintf("batch %d relu item %d", n, i), r.Data[i*ri:(i+1)*ri], wantRelu, 1e-5)
		}
	}

	// One named output only.
	res, err := s.Run(tinyBatch(2), []int64{2, tinyC, tinyH, tinyW}, "features")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res["relu"]; ok || len(res) != 1 {
		t.Errorf("Run(..., \"features\") returned outputs %v, want only features", len(res))
	}
}

// TestRunMatchesPythonORT compares against the outputs Python's onnxruntime
// gave when make_tiny.py wrote the model (testdata/tiny_expected.json).
func TestRunMatchesPythonORT(t *testing.T) {
	s := openTiny(t, Options{})
	raw, err := os.ReadFile("testdata/tiny_expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var exp struct {
		Batch         int       `json:"batch"`
		FeaturesShape []int64   `json:"features_shape"`
		Features      []float64 `json:"features"`
		ReluShape     []int64   `json:"relu_shape"`
		ReluSum       float64   `json:"relu_sum"`
	}
	if err := json.Unmarshal(raw, &exp); err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(tinyBatch(exp.Batch), []int64{int64(exp.Batch), tinyC, tinyH, tinyW})
	if err != nil {
		t.Fatal(err)
	}
	if !equalShape(res["features"].Shape, exp.FeaturesShape) || !equalShape(res["relu"].Shape, exp.ReluShape) {
		t.Fatalf("shapes %v %v, python %v %v", res["features"].Shape, res["relu"].Shape, exp.FeaturesShape, exp.ReluShape)
	}
	assertClose(t, "features vs python onnxruntime", res["features"].Data, exp.Features, 1e-6)
	sum := 0.0
	for _, v := range res["relu"].Data {
		sum += float64(v)
	}
	if math.Abs(sum-exp.ReluSum) > 1e-3 {
		t.Errorf("relu sum %g, python %g", sum, exp.ReluSum)
	}
}

func TestRunErrors(t *testing.T) {
	s := openTiny(t, Options{})
	x := tinyBatch(2)
	cases := []struct {
		name  string
		x     []float32
		shape []int64
		outs  []string
		want  string
	}{
		{"rank", x, []int64{2, 3, 64}, nil, "rank 3"},
		{"channels", x, []int64{2, 4, 8, 6}, nil, "dimension 1 is 4, model expects 3"},
		{"length", x[:10], []int64{2, 3, 8, 8}, nil, "holds 384 values, got 10"},
		{"zero batch", nil, []int64{0, 3, 8, 8}, nil, "must be > 0"},
		{"output", x, []int64{2, 3, 8, 8}, []string{"logits"}, `no output "logits" (outputs: features, relu)`},
	}
	for _, c := range cases {
		_, err := s.Run(c.x, c.shape, c.outs...)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "runtime: ") {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	needLibrary(t)
	if _, err := Open(filepath.Join(t.TempDir(), "missing.onnx"), Options{}); err == nil || !strings.Contains(err.Error(), "missing.onnx") {
		t.Errorf("Open(missing): %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.onnx")
	if err := os.WriteFile(bad, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(bad, Options{}); err == nil || !strings.Contains(err.Error(), bad) {
		s.Close()
		t.Errorf("Open(garbage): %v", err)
	}
	if _, err := Open(tinyModel, Options{Device: "tpu"}); err == nil || !strings.Contains(err.Error(), `unknown device "tpu"`) {
		t.Errorf("Open(device tpu): %v", err)
	}
	if _, err := Open(tinyModel, Options{Device: "cuda:x"}); err == nil || !strings.Contains(err.Error(), "cuda:N") {
		t.Errorf("Open(device cuda:x): %v", err)
	}
	if _, err := Open(tinyModel, Options{IntraOpThreads: -1}); err == nil {
		t.Error("Open with -1 threads succeeded")
	}
}

// TestCUDA checks that asking for CUDA either works (and agrees with the
// CPU) or fails naming the missing provider library; it never falls back to
// the CPU silently.
func TestCUDA(t *testing.T) {
	needLibrary(t)
	s, err := Open(tinyModel, Options{Device: "cuda"})
	if err != nil {
		if !strings.Contains(err.Error(), "CUDA execution provider unavailable") || !strings.Contains(err.Error(), "libonnxruntime_providers_cuda.so") {
			t.Fatalf("Open(cuda) error %q should name the missing CUDA provider library", err)
		}
		t.Logf("no CUDA here, as expected for the CPU build: %v", err)
		return
	}
	defer s.Close()
	x := tinyBatch(2)
	res, err := s.Run(x, []int64{2, tinyC, tinyH, tinyW}, "features")
	if err != nil {
		t.Fatal(err)
	}
	item := tinyC * tinyH * tinyW
	for i := 0; i < 2; i++ {
		_, want := tinyReference(x[i*item : (i+1)*item])
		assertClose(t, "cuda features", res["features"].Data[i*tinyOut:(i+1)*tinyOut], want, 1e-4)
	}
}

func TestOptionsGiveSameResults(t *testing.T) {
	x := tinyBatch(4)
	shape := []int64{4, tinyC, tinyH, tinyW}
	base, err := openTiny(t, Options{}).Run(x, shape, "features")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{
		{IntraOpThreads: 2, DisableSpinning: true},
		{IntraOpThreads: 1, InterOpThreads: 2},
		{Device: "cpu"},
	} {
		got, err := openTiny(t, o).Run(x, shape, "features")
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		for i, v := range base["features"].Data {
			if got["features"].Data[i] != v {
				t.Fatalf("%+v: features[%d] = %g, default options gave %g", o, i, got["features"].Data[i], v)
			}
		}
	}
}

func TestCloseTwiceAndHalfBuilt(t *testing.T) {
	needLibrary(t)
	s, err := Open(tinyModel, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Run(tinyBatch(1), []int64{1, 3, 8, 8}); !errors.Is(err, errClosed) {
		t.Errorf("Run after Close: %v, want %v", err, errClosed)
	}
	if _, err := s.Metadata(); !errors.Is(err, errClosed) {
		t.Errorf("Metadata after Close: %v", err)
	}
	var zero Session
	if err := zero.Close(); err != nil {
		t.Errorf("zero Session Close: %v", err)
	}
	var nilSess *Session
	if err := nilSess.Close(); err != nil {
		t.Errorf("nil Session Close: %v", err)
	}
}

func TestRunConcurrent(t *testing.T) {
	s := openTiny(t, Options{IntraOpThreads: 1})
	hammer(t, s.Run, 8, 3, 5)
}

// hammer calls run from goroutines concurrent goroutines, reps times each,
// with batches of 1 + g%maxBatch tiny inputs, and checks every answer
// against the plain Go reference of the tiny model.
func hammer(t *testing.T, run func(x []float32, shape []int64, outputs ...string) (map[string]Output, error), goroutines, maxBatch, reps int) {
	t.Helper()
	item := tinyC * tinyH * tinyW
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			n := 1 + g%maxBatch
			x := tinyBatch(n)
			for rep := 0; rep < reps; rep++ {
				res, err := run(x, []int64{int64(n), tinyC, tinyH, tinyW}, "features")
				if err != nil {
					errs <- err
					return
				}
				for i := 0; i < n; i++ {
					_, want := tinyReference(x[i*item : (i+1)*item])
					for k := range want {
						if d := math.Abs(float64(res["features"].Data[i*tinyOut+k]) - want[k]); d > 1e-5 {
							errs <- fmt.Errorf("goroutine %d item %d: features[%d] off by %g", g, i, k, d)
							return
						}
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestTinyModelReproducible reruns make_tiny.py and checks that it writes
// the committed fixtures byte for byte.
func TestTinyModelReproducible(t *testing.T) {
	testenv.Short(t, "the Python fixture check")
	py := testenv.Python(t, "onnx", "numpy")
	dir := t.TempDir()
	cmd := exec.Command(py, "testdata/make_tiny.py", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make_tiny.py: %v\n%s", err, out)
	}
	for _, name := range []string{"tiny.onnx", "tiny_expected.json"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("make_tiny.py writes a %s that differs from testdata/%s: rerun it and commit the result", name, name)
		}
	}
}

// TestNoTrainingStackImports keeps the inference side free of the
// training stack (design.md, "Who may import whom"): runtime, serve, the
// inference side of eval and eval/cluster import neither Gorgonia nor
// models, ops, train, pretext or export, so a feature server ships
// without them; pretext may use eval/cluster but never eval itself.
func TestNoTrainingStackImports(t *testing.T) {
	const mod = "github.com/selfsup/selfsup/"
	training := []string{"models", "ops", "train", "pretext", "export", "pipeline", "bench"}
	rules := []struct {
		pkg       string
		forbidden []string // module folders (with their subpackages) it must not depend on
		gorgonia  bool     // Gorgonia is forbidden too
	}{
		{"runtime", training, true},
		{"serve", training, true},
		{"eval", training, true},
		{"eval/cluster", append([]string{"eval/report", "runtime"}, training...), true},
		{"pretext", []string{"eval", "eval/report", "runtime", "pipeline"}, false},
	}
	for _, r := range rules {
		out, err := exec.Command("go", "list", "-deps", mod+r.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", r.pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			bad := r.gorgonia && strings.HasPrefix(dep, "gorgonia.org/")
			for _, p := range r.forbidden {
				bad = bad || dep == mod+p || (p != "eval" && strings.HasPrefix(dep, mod+p+"/")) ||
					(p == "eval" && strings.HasPrefix(dep, mod+"eval/report"))
			}
			if bad {
				t.Errorf("%s depends on %s; see the import rules in design.md", r.pkg, dep)
			}
		}
	}
}
