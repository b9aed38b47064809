// Package testenv decides, in one place, whether a test's outside
// requirements are there: a Python with given modules, the ONNX Runtime
// library, the project's shared data, the MNIST module. A test that
// cannot run says so loudly: with SELFSUP_STRICT=1 (CI sets it in
// .ci/run) a missing requirement fails the test instead of skipping it,
// unless it is named in Unavailable, the one list of what CI cannot have,
// each with its reason.
package testenv

import (
	"archive/tar"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/internal/ortlib"
)

// StrictEnv is the environment variable that turns skips into failures.
const StrictEnv = "SELFSUP_STRICT"

// Strict reports whether SELFSUP_STRICT=1.
func Strict() bool { return os.Getenv(StrictEnv) == "1" }

// Requirement names something outside the Go code that a test needs.
type Requirement string

// The requirements tests check for.
const (
	PythonReq     Requirement = "python"        // the .venv Python with the modules of requirements-test.txt
	Torch         Requirement = "python:torch"  // torch, for the PyTorch benchmark peer
	ORTLib        Requirement = "onnxruntime"   // libonnxruntime.so
	SharedDataReq Requirement = "shared-data"   // ../shared/data (SELFSUP_DATA)
	MNIST         Requirement = "mnist"         // the MNIST Go module in the module cache
	CUDA          Requirement = "cuda"          // an NVIDIA GPU with ONNX Runtime's CUDA provider
	FashionMNIST  Requirement = "fashion-mnist" // the Debian package dataset-fashion-mnist
	ProcMeminfo   Requirement = "proc-meminfo"  // Linux's /proc/meminfo
	ProcStat      Requirement = "proc-stat"     // Linux's /proc/PID/stat
	OneDNN3       Requirement = "onednn3"       // oneDNN 3's headers at build time and libdnnl.so.3 (scripts/setup.sh)
)

// Unavailable is what CI cannot have, with the reason: a test that needs
// one of these skips even under SELFSUP_STRICT=1. Everything else must be
// installed by scripts/setup.sh.
var Unavailable = map[Requirement]string{
	Torch: "torch is a benchmark-only dependency (about 5 GB with the CUDA wheels PyPI's Linux torch pulls in); " +
		"scripts/bench_setup.sh installs it for `selfsup bench train --peer torch`, CI does not",
	CUDA: "CI machines have no GPU; scripts/cuda_check.sh runs the CUDA checks on a machine that has one",
}

// Skip skips t because req is missing (why says what was looked for),
// or fails it under SELFSUP_STRICT=1 unless req is in Unavailable.
func Skip(t testing.TB, req Requirement, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if reason, ok := Unavailable[req]; ok {
		t.Skipf("%s (%s: %s)", msg, req, reason)
	}
	if Strict() {
		t.Fatalf("%s=1: %s is required here: %s", StrictEnv, req, msg)
	}
	t.Skipf("%s (set %s=1 to make this a failure)", msg, StrictEnv)
}

// Short skips t under go test -short with why (what makes it slow). CI
// runs without -short, so such a test always runs there.
func Short(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: %s", why)
	}
}

// RepoRoot is the folder holding go.mod, above the test's directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: no go.mod above the test directory")
		}
		dir = parent
	}
}

// Python returns a Python interpreter that imports modules: the one named
// by SELFSUP_PYTHON (the test fails when it lacks them), else the
// repository's .venv (made by scripts/setup.sh); otherwise it skips (see
// Skip; torch counts as Torch, anything else as PythonReq).
func Python(t testing.TB, modules ...string) string {
	t.Helper()
	req := PythonReq
	for _, m := range modules {
		if m == "torch" {
			req = Torch
		}
	}
	py, explicit := os.LookupEnv("SELFSUP_PYTHON")
	if !explicit || py == "" {
		explicit = false
		py = filepath.Join(RepoRoot(t), ".venv", "bin", "python")
		if _, err := os.Stat(py); err != nil {
			Skip(t, req, "no Python at %s (run bash scripts/setup.sh, or set SELFSUP_PYTHON)", py)
		}
	}
	if len(modules) == 0 {
		return py
	}
	out, err := exec.Command(py, "-c", "import "+strings.Join(modules, ", ")).CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		msg := fmt.Sprintf("%s cannot import %s: %v: %s", py, strings.Join(modules, ", "), err, lines[len(lines)-1])
		if explicit && req != Torch {
			t.Fatal(msg)
		}
		Skip(t, req, "%s", msg)
	}
	return py
}

// ORT returns the path of the ONNX Runtime library, or skips (see Skip).
func ORT(t testing.TB) string {
	t.Helper()
	p, err := ortlib.Path()
	if err != nil {
		Skip(t, ORTLib, "ONNX Runtime not installed: %v", err)
	}
	return p
}

// SharedDataDir is the folder of the project's shared data: $SELFSUP_DATA,
// else ../shared/data beside the repository.
func SharedDataDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("SELFSUP_DATA")
	if d == "" {
		return filepath.Join(RepoRoot(t), "..", "shared", "data")
	}
	if !filepath.IsAbs(d) {
		d = filepath.Join(RepoRoot(t), d)
	}
	return d
}

// SharedData returns the path of name in the shared data folder, or skips
// (see Skip) when it is not there.
func SharedData(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(SharedDataDir(t), name)
	if _, err := os.Stat(p); err != nil {
		Skip(t, SharedDataReq, "%s absent (%v); set SELFSUP_DATA to the folder holding it", name, err)
	}
	return p
}

// ToyTar writes a labelled image-folder tar at path: train/ and test/ with
// two classes of 16x16 images (a bright square in one of two corners), and
// optionally one truncated PNG in train/.
func ToyTar(t testing.TB, path string, nTrain, nTest int, corrupt bool) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	rng := rand.New(rand.NewSource(1))
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	for _, split := range []struct {
		name string
		n    int
	}{{"train", nTrain}, {"test", nTest}} {
		for i := 0; i < split.n; i++ {
			cls := i % 2
			img := image.NewRGBA(image.Rect(0, 0, 16, 16))
			for y := 0; y < 16; y++ {
				for x := 0; x < 16; x++ {
					v := uint8(40 + rng.Intn(40))
					if (cls == 0 && x < 7 && y < 7) || (cls == 1 && x > 8 && y > 8) {
						v = uint8(200 + rng.Intn(50))
					}
					img.Set(x, y, color.RGBA{v, v / 2, 255 - v, 255})
				}
			}
			var b bytes.Buffer
			png.Encode(&b, img)
			add(fmt.Sprintf("%s/class%d/%03d.png", split.name, cls, i), b.Bytes())
		}
	}
	if corrupt {
		var b bytes.Buffer
		png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 16, 16)))
		add("train/class0/zz-truncated.png", b.Bytes()[:b.Len()/2])
	}
	tw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
