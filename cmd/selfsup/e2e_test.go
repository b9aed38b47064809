package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/runtime"
)

// buildBinary compiles selfsup once per test binary.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "selfsup")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// writeTar writes testenv's toy image-folder tar.
func writeTar(t *testing.T, path string, nTrain, nTest int, corrupt bool) {
	testenv.ToyTar(t, path, nTrain, nTest, corrupt)
}

type cmdResult struct {
	stdout, stderr string
	code           int
}

func runCmd(t *testing.T, env []string, bin string, args ...string) cmdResult {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return cmdResult{so.String(), se.String(), code}
}

// lastJSON decodes the last stdout line as JSON, as the CLI contract says.
func lastJSON(t *testing.T, r cmdResult, v any) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("last stdout line is not JSON: %v\n%s", err, r.stdout)
	}
}

// toySet writes the toy tar (nTrain training and nTest test images) as
// toy.tar into a new temporary folder and returns the folder and the
// tar's path.
func toySet(t *testing.T, nTrain, nTest int) (dir, ds string) {
	t.Helper()
	dir = t.TempDir()
	ds = filepath.Join(dir, "toy.tar")
	writeTar(t, ds, nTrain, nTest, false)
	return dir, ds
}

// pretrainSummary is what the task tests read of pretrain's --json line.
type pretrainSummary struct {
	Steps      int     `json:"steps"`
	FinalLoss  float64 `json:"final_loss"`
	ValPretext float64 `json:"val_pretext_acc"`
}

// pretrainToy runs pretrain through bin with args (task, flags, --data)
// into run: one epoch, batches of 8, 8 held-out images; it fails the
// test if pretrain fails and returns its summary.
func pretrainToy(t *testing.T, bin, run string, args ...string) pretrainSummary {
	t.Helper()
	args = append(append([]string{"pretrain"}, args...), "--out", run, "--epochs", "1", "--batch", "8", "--val-images", "8", "--json")
	var pre pretrainSummary
	lastJSON(t, runCmd(t, nil, bin, args...), &pre)
	return pre
}

// readJSON decodes the JSON file at path into v and returns its bytes.
func readJSON(t *testing.T, path string, v any) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
	return b
}

// pngBounds decodes the PNG that flag (an eval pretext option) wrote at
// path and returns its bounds.
func pngBounds(t *testing.T, path, flag string) image.Rectangle {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("%s wrote no PNG: %v", flag, err)
	}
	return img.Bounds()
}

// exportAll exports run as model with every output, its batch norms
// recalibrated on ds.
func exportAll(t *testing.T, bin, run, ds, model string) {
	t.Helper()
	if r := runCmd(t, nil, bin, "export", "--run", run, "--bn-data", ds, "--outputs", "all", "--out", model); r.code != 0 {
		t.Fatal(r.stderr)
	}
}

// extractFeatures extracts model's features of ds's images into feats
// and reads them back.
func extractFeatures(t *testing.T, bin, model, ds, feats string) ([]float32, []int) {
	t.Helper()
	if r := runCmd(t, nil, bin, "extract", "--model", model, "--data", ds, "--out", feats); r.code != 0 {
		t.Fatal(r.stderr)
	}
	got, shape, err := npy.ReadFloat32(feats)
	if err != nil {
		t.Fatal(err)
	}
	return got, shape
}

// openModel opens model in ONNX Runtime (closed when the test ends) and
// returns the session and its preprocessing.
func openModel(t *testing.T, model string) (*runtime.Session, runtime.Preprocess) {
	t.Helper()
	sess, err := runtime.Open(model, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	p, err := sess.Preprocess()
	if err != nil {
		t.Fatal(err)
	}
	return sess, p
}

// linearLayers is what the tests read of `eval linear --json`.
type linearLayers struct {
	Layers []struct {
		Layer string  `json:"layer"`
		Top1  float64 `json:"top1"`
	} `json:"layers"`
}

// evalLinearAll runs the linear probe on every layer of model over ds.
func evalLinearAll(t *testing.T, bin, model, ds string) linearLayers {
	t.Helper()
	var lin linearLayers
	lastJSON(t, runCmd(t, nil, bin, "eval", "linear", "--model", model, "--data", ds, "--layers", "all", "--json"), &lin)
	return lin
}

func pythonOrSkip(t *testing.T) string {
	return testenv.Python(t, "onnx", "onnxruntime", "numpy")
}

// TestEndToEnd walks the main job through the real binary: pretrain,
// export, extract (Go ONNX Runtime), then checks the model with the real
// onnx checker, Python onnxruntime and NumPy, and evaluates.
func TestEndToEnd(t *testing.T) {
	testenv.ORT(t)
	bin := buildBinary(t)
	dir, ds := toySet(t, 64, 32)
	run := filepath.Join(dir, "run")

	var pre struct {
		Steps      int     `json:"steps"`
		ImagesSeen int     `json:"images_seen"`
		Checkpoint string  `json:"checkpoint"`
		FinalLoss  float64 `json:"final_loss"`
	}
	lastJSON(t, runCmd(t, nil, bin, "pretrain", "--task", "rotation", "--arch", "resnet20c", "--data", ds, "--out", run,
		"--epochs", "2", "--batch", "8", "--val-images", "0", "--checkpoint-every", "5", "--json"), &pre)
	if pre.Steps != 16 || pre.ImagesSeen != 128 || pre.Checkpoint == "" {
		t.Fatalf("pretrain: %+v", pre)
	}

	model := filepath.Join(dir, "m.onnx")
	if r := runCmd(t, nil, bin, "export", "--run", run, "--out", model); r.code != 0 {
		t.Fatalf("export: %s", r.stderr)
	}
	r := runCmd(t, nil, bin, "export", "--inspect", model)
	if r.code != 0 || !strings.Contains(r.stdout, "selfsup.task") || !strings.Contains(r.stdout, "rotation") {
		t.Fatalf("inspect:\n%s\n%s", r.stdout, r.stderr)
	}

	feats := filepath.Join(dir, "test.npy")
	var ex struct {
		Images int `json:"images"`
		Dim    int `json:"dim"`
	}
	lastJSON(t, runCmd(t, nil, bin, "extract", "--model", model, "--data", ds, "--split", "test", "--out", feats, "--batch", "5", "--json"), &ex)
	if ex.Images != 32 || ex.Dim != 64 {
		t.Fatalf("extract: %+v", ex)
	}

	// The inputs extract fed the model, through the same preprocessing.
	sess, err := runtime.Open(model, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := sess.Preprocess()
	sess.Close()
	if err != nil {
		t.Fatal(err)
	}
	folder, err := data.OpenImageFolder(ds, "test", data.FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conv := p.Dataset(folder)
	per := p.Channels * p.Size * p.Size
	inputs := make([]float32, folder.Len()*per)
	for i := 0; i < folder.Len(); i++ {
		img, err := conv.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Fill(img, inputs[i*per:(i+1)*per]); err != nil {
			t.Fatal(err)
		}
	}
	inPath := filepath.Join(dir, "inputs.npy")
	if err := npy.WriteFloat32(inPath, inputs, folder.Len(), p.Channels, p.Size, p.Size); err != nil {
		t.Fatal(err)
	}
	py := pythonOrSkip(t)
	out, err := exec.Command(py, "testdata/crosscheck.py", model, inPath, feats, filepath.Join(dir, "test_labels.npy")).CombinedOutput()
	if err != nil {
		t.Fatalf("crosscheck.py: %v\n%s", err, out)
	}
	var cc struct {
		MaxAbsDiff float64 `json:"max_abs_diff"`
		IRVersion  int     `json:"ir_version"`
		Opset      int     `json:"opset"`
		Arch       string  `json:"arch"`
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &cc); err != nil {
		t.Fatalf("crosscheck output: %v\n%s", err, out)
	}
	if cc.MaxAbsDiff > 1e-5 || cc.IRVersion != 8 || cc.Opset != 17 || cc.Arch != "resnet20c" {
		t.Fatalf("cross-check with Python onnxruntime: %+v", cc)
	}

	var lin struct {
		Top1 *float64 `json:"top1"`
		Top5 *float64 `json:"top5"`
	}
	lastJSON(t, runCmd(t, nil, bin, "eval", "linear", "--model", model, "--data", ds, "--json"), &lin)
	if lin.Top1 == nil || lin.Top5 == nil || *lin.Top1 < 0 || *lin.Top1 > 1 || *lin.Top5 < *lin.Top1 {
		t.Fatalf("eval linear: %+v", lin)
	}
}

// TestBadInputsGiveOneClearError runs the binary on broken inputs: each
// must exit non-zero with one line naming the problem, and no panic.
func TestBadInputsGiveOneClearError(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	ds := filepath.Join(dir, "bad.tar")
	writeTar(t, ds, 16, 8, true)

	check := func(name string, r cmdResult, want ...string) {
		t.Helper()
		if r.code == 0 {
			t.Fatalf("%s: exit 0, expected a failure", name)
		}
		msg := strings.TrimSpace(r.stderr)
		lines := strings.Split(msg, "\n")
		last := lines[len(lines)-1]
		if strings.Contains(r.stderr, "panic") || !strings.HasPrefix(last, "selfsup: ") {
			t.Fatalf("%s: expected one 'selfsup: ...' error line, got:\n%s", name, r.stderr)
		}
		for _, w := range want {
			if !strings.Contains(last, w) {
				t.Fatalf("%s: error %q does not mention %q", name, last, w)
			}
		}
	}
	run := filepath.Join(dir, "run")
	check("corrupt image", runCmd(t, nil, bin, "pretrain", "--data", ds, "--out", run, "--epochs", "1", "--batch", "4", "--val-images", "0"), "zz-truncated.png")
	// With --skip-bad the bad file is counted and training goes on.
	r := runCmd(t, nil, bin, "pretrain", "--data", ds, "--out", run, "--epochs", "1", "--batch", "4", "--val-images", "0", "--skip-bad")
	if r.code != 0 || !strings.Contains(r.stderr, "skipped 1") {
		t.Fatalf("--skip-bad: exit %d\n%s", r.code, r.stderr)
	}
	ckpts, _ := filepath.Glob(filepath.Join(run, "checkpoint-*.safetensors"))
	if len(ckpts) == 0 {
		t.Fatal("no checkpoint written")
	}
	b, _ := os.ReadFile(ckpts[0])
	half := filepath.Join(dir, "half.safetensors")
	os.WriteFile(half, b[:len(b)/2], 0o644)
	check("truncated checkpoint", runCmd(t, nil, bin, "export", "--checkpoint", half, "--out", filepath.Join(dir, "x.onnx")), "half.safetensors", "truncated")

	idx := filepath.Join(dir, "idx")
	os.MkdirAll(idx, 0o755)
	os.WriteFile(filepath.Join(idx, "train-images-idx3-ubyte"), []byte{0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3}, 0o644)
	os.WriteFile(filepath.Join(idx, "train-labels-idx1-ubyte"), []byte{0, 0, 8, 1, 0, 0, 0, 2, 1, 2}, 0o644)
	check("wrong-size IDX", runCmd(t, nil, bin, "pretrain", "--data", idx, "--out", filepath.Join(dir, "r2"), "--epochs", "1"), "train-images-idx3-ubyte")

	model := filepath.Join(dir, "m.onnx")
	if r := runCmd(t, nil, bin, "export", "--arch", "resnet20c", "--random-init", "--out", model); r.code != 0 {
		t.Fatalf("export --random-init: %s", r.stderr)
	}
	check("missing ONNX Runtime", runCmd(t, []string{"ONNXRUNTIME_LIB=" + filepath.Join(dir, "nope.so")}, bin, "extract", "--model", model, "--data", ds, "--out", filepath.Join(dir, "f.npy"), "--skip-bad"), "ONNXRUNTIME_LIB", "nope.so")
}
