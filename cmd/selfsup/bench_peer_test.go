package main

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/models"
)

// torchPython returns $SELFSUP_PYTHON, else the repository's .venv python,
// when torch imports from it; it skips the test otherwise (torch is a
// benchmark-only dependency that scripts/bench_setup.sh installs).
func torchPython(t *testing.T) string {
	t.Helper()
	py := os.Getenv("SELFSUP_PYTHON")
	if py == "" {
		py, _ = filepath.Abs(filepath.Join("..", "..", ".venv", "bin", "python"))
	}
	if _, err := os.Stat(py); err != nil {
		t.Skipf("no Python at %s (run bash scripts/setup.sh and scripts/bench_setup.sh, or set SELFSUP_PYTHON): skipping the PyTorch peer check", py)
	}
	if out, err := exec.Command(py, "-c", "import torch").CombinedOutput(); err != nil {
		t.Skipf("torch is not importable from %s (run bash scripts/bench_setup.sh): skipping the PyTorch peer check: %v: %s", py, err, lastLine(string(out)))
	}
	return py
}

// specStructure computes, from a Spec alone, what `torch_train.py
// --check-params` reports: the sorted shapes of the learnable tensors (plus
// the 10-class head, weight [10, D] and bias [10]), and every convolution
// in layer order as [inC, outC, kernel, stride, pad, inH, inW] for a
// size x size input, by propagating [C, H, W] shapes through the layers.
func specStructure(t *testing.T, s *models.Spec, size, classes int) (shapes, convs [][]int, logits []int) {
	t.Helper()
	for _, p := range s.Params() {
		if p.Learnable {
			shapes = append(shapes, append([]int(nil), p.Shape...))
		}
	}
	shapes = append(shapes, []int{classes, s.FeatureDim}, []int{classes})
	sort.Slice(shapes, func(i, j int) bool { return lessInts(shapes[i], shapes[j]) })

	chw := map[string][3]int{models.InputName: {s.InC, size, size}}
	for _, l := range s.Layers {
		in := chw[l.Inputs[0]]
		out := in
		switch l.Op {
		case models.OpConv:
			convs = append(convs, []int{l.InC, l.OutC, l.Kernel, l.Stride, l.Pad, in[1], in[2]})
			out = [3]int{l.OutC, (in[1]+2*l.Pad-l.Kernel)/l.Stride + 1, (in[2]+2*l.Pad-l.Kernel)/l.Stride + 1}
		case models.OpMaxPool:
			out = [3]int{in[0], (in[1]+2*l.Pad-l.Kernel)/l.Stride + 1, (in[2]+2*l.Pad-l.Kernel)/l.Stride + 1}
		case models.OpGlobalAvgPool:
			out = [3]int{in[0], 1, 1}
		case models.OpAdd:
			if other := chw[l.Inputs[1]]; other != in {
				t.Fatalf("%s: add %s: inputs %v and %v differ", s.Arch, l.Name, in, other)
			}
		}
		chw[l.Name] = out
	}
	if f := chw[s.Outputs["features"]]; f[0] != s.FeatureDim {
		t.Fatalf("%s: features have %d channels, FeatureDim %d", s.Arch, f[0], s.FeatureDim)
	}
	return shapes, convs, []int{1, classes}
}

// lessInts orders int slices lexicographically, shorter first on a tie, as
// Python sorts lists.
func lessInts(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

// TestTorchPeerNetworksMatchSpecs checks that the PyTorch peer of `bench
// train --peer torch` builds, for every registered architecture, the very
// network of the Go spec: the same parameter and buffer counts as the
// spec's, the same tensor shapes, and the same convolutions (channels,
// kernel, stride, padding) applied to the same feature-map sizes in the
// same order. It runs the embedded copy of the script, as the binary does.
func TestTorchPeerNetworksMatchSpecs(t *testing.T) {
	py := torchPython(t)
	peer, err := newTorchPeer(py)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	// 64 px: every stride and the max-pool still show in the feature-map
	// sizes (ImageNet stem 64 -> 32 -> 16, stages 16, 8, 4, 2), at a
	// twelfth of the cost of 224 px.
	const size = 64
	archs := models.Names()
	nets, err := peer.describe(archs, size)
	if err != nil {
		t.Fatal(err)
	}
	for i, arch := range archs {
		n := nets[i]
		spec, err := models.New(arch, 3)
		if err != nil {
			t.Fatal(err)
		}
		if n.Arch != arch || n.Size != size {
			t.Errorf("%s: peer described %s at %d px, want %d px", arch, n.Arch, n.Size, size)
			continue
		}
		params, buffers := specParamCounts(spec, benchClasses)
		if n.Params != params || n.Buffers != buffers {
			t.Errorf("%s: peer has %d parameters and %d buffer values, the Go spec %d and %d", arch, n.Params, n.Buffers, params, buffers)
		}
		shapes, convs, logits := specStructure(t, spec, size, benchClasses)
		if !reflect.DeepEqual(n.ParamShapes, shapes) {
			t.Errorf("%s: parameter shapes differ:\npeer %v\nGo   %v", arch, n.ParamShapes, shapes)
		}
		if !reflect.DeepEqual(n.Convs, convs) {
			t.Errorf("%s: convolutions differ:\npeer %v\nGo   %v", arch, n.Convs, convs)
		}
		if !reflect.DeepEqual(n.LogitsShape, logits) {
			t.Errorf("%s: logits shape %v, want %v", arch, n.LogitsShape, logits)
		}
	}
}

// TestTorchPeerCountsAreTheKnownOnes pins specParamCounts to the
// well-known sizes of torchvision's ResNets with a 10-class head (an
// independent figure: torchvision.models.resnet18(num_classes=10) has
// 11,181,642 parameters, resnet34 21,289,802, resnet50 23,528,522), so the
// peer test above cannot pass by both sides drifting together.
func TestTorchPeerCountsAreTheKnownOnes(t *testing.T) {
	for arch, want := range map[string]int{"resnet18": 11181642, "resnet34": 21289802, "resnet50": 23528522} {
		spec, err := models.New(arch, 3)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := specParamCounts(spec, benchClasses); got != want {
			t.Errorf("%s: %d parameters with a 10-class head, torchvision has %d", arch, got, want)
		}
	}
}

// TestTorchPeerMissing checks the one-line errors that send the user to
// scripts/bench_setup.sh: for a Python that does not exist, and for one
// where torch does not import (a stand-in torch module on PYTHONPATH that
// raises ImportError, so this runs whether or not torch is installed).
func TestTorchPeerMissing(t *testing.T) {
	_, err := resolvePython(filepath.Join(t.TempDir(), "no", "python"), true)
	if err == nil || !strings.Contains(err.Error(), "scripts/bench_setup.sh") || !strings.Contains(err.Error(), "no python at") {
		t.Errorf("missing python: error %v, want 'no python at ...' pointing to scripts/bench_setup.sh", err)
	}
	if _, err := resolvePython("selfsup-no-such-python-here", false); err == nil || !strings.Contains(err.Error(), "not on PATH") {
		t.Errorf("python name not on PATH: error %v", err)
	}

	py := os.Getenv("SELFSUP_PYTHON")
	if py == "" {
		py, _ = filepath.Abs(filepath.Join("..", "..", ".venv", "bin", "python"))
		if _, err := os.Stat(py); err != nil {
			if py, err = exec.LookPath("python3"); err != nil {
				t.Skip("no Python at all: skipping the missing-torch check")
			}
		}
	}
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "torch.py"), []byte("raise ImportError('no torch in this test')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	peer, err := newTorchPeer(py)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peer.env = []string{"PYTHONPATH=" + fake}
	_, err = peer.describe([]string{"resnet18c"}, 0)
	if err == nil {
		t.Fatal("describe with torch unimportable: no error")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "torch is not importable") || !strings.Contains(msg, "no torch in this test") ||
		!strings.Contains(msg, "run bash scripts/bench_setup.sh") {
		t.Errorf("torch missing: error %q, want one line naming the import error and scripts/bench_setup.sh", msg)
	}
	_, err = peer.bench("resnet18c", 2, 32, 1, 0, 1, "contiguous")
	if err == nil || !strings.Contains(err.Error(), "torch is not importable") {
		t.Errorf("bench with torch unimportable: error %v", err)
	}
	if err := peer.Close(); err != nil {
		t.Error(err)
	}
	if err := peer.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestBenchTrainPeerCLIErrors checks through the binary that a missing
// Python gives one clear error line, and that an unknown peer is refused.
func TestBenchTrainPeerCLIErrors(t *testing.T) {
	bin := buildBinary(t)
	res := runCmd(t, nil, bin, "bench", "train", "--arch", "resnet20c", "--peer", "torch", "--python", filepath.Join(t.TempDir(), "nope", "python"))
	if lines := strings.Split(strings.TrimSpace(res.stderr), "\n"); res.code == 0 || len(lines) != 1 ||
		!strings.Contains(res.stderr, "no python at") || !strings.Contains(res.stderr, "run bash scripts/bench_setup.sh") {
		t.Errorf("missing python: exit %d, stderr %q; want one line pointing to scripts/bench_setup.sh", res.code, res.stderr)
	}
	res = runCmd(t, nil, bin, "bench", "train", "--peer", "tensorflow")
	if res.code == 0 || !strings.Contains(res.stderr, "expected torch") {
		t.Errorf("--peer tensorflow: exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestBenchTrainPeerCLI runs a tiny `selfsup bench train --peer torch`
// through the binary and checks that it reports the Go engine, both PyTorch
// layouts, the checked parameter count and the ratios of the reported rates.
func TestBenchTrainPeerCLI(t *testing.T) {
	py := torchPython(t)
	bin := buildBinary(t)
	var rep benchTrainReport
	lastJSON(t, runCmd(t, nil, bin, "bench", "train", "--arch", "resnet20c", "--batch", "2", "--size", "16", "--warmup", "0", "--steps", "1",
		"--peer", "torch", "--python", py, "--json"), &rep)
	if rep.Fast == nil || rep.Stock != nil || rep.PeerTorch == nil || rep.PeerTorchCL == nil {
		t.Fatalf("report: %+v", rep)
	}
	spec, err := models.New("resnet20c", 3)
	if err != nil {
		t.Fatal(err)
	}
	if params, _ := specParamCounts(spec, benchClasses); rep.PeerParams != params {
		t.Errorf("peer_params %d, want %d", rep.PeerParams, params)
	}
	for format, r := range map[string]*torchPeerResult{"contiguous": rep.PeerTorch, "channels_last": rep.PeerTorchCL} {
		if r.MemoryFormat != format || r.Arch != "resnet20c" || r.Batch != 2 || r.Size != 16 || r.Warmup != 0 || r.Steps != 1 || r.Threads != rep.Fast.Threads {
			t.Errorf("peer %s: %+v; Go ran %d threads", format, r, rep.Fast.Threads)
		}
	}
	for _, r := range []*torchPeerResult{rep.PeerTorch, rep.PeerTorchCL} {
		if r.Engine != "torch" || r.TorchVersion == "" || !(r.PeakRSSMB >= r.ImportRSSMB && r.ImportRSSMB > 0) ||
			!(r.StepSeconds > 0) || math.Abs(r.ImagesPerSec*r.StepSeconds-2) > 1e-6 {
			t.Errorf("peer %s: %+v", r.MemoryFormat, r)
		}
	}
	if want := rep.Fast.ImagesPerSec / rep.PeerTorch.ImagesPerSec; rep.SpeedupVsTorch["fast"] != want {
		t.Errorf("speedup_vs_torch %v, want fast %v", rep.SpeedupVsTorch, want)
	}
	if want := rep.Fast.ImagesPerSec / rep.PeerTorchCL.ImagesPerSec; rep.SpeedupVsTorchCL["fast"] != want {
		t.Errorf("speedup_vs_torch_channels_last %v, want fast %v", rep.SpeedupVsTorchCL, want)
	}
	if rep.LoadBefore == "" || rep.LoadAfter == "" || rep.Date == "" {
		t.Errorf("load %q -> %q, date %q", rep.LoadBefore, rep.LoadAfter, rep.Date)
	}
}
