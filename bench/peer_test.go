package bench

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/models"
)

// torchPython returns a Python with torch or skips (torch is a
// benchmark-only dependency that scripts/bench_setup.sh installs; see
// testenv.Unavailable).
func torchPython(t *testing.T) string { return testenv.Python(t, "torch") }

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
	peer, err := NewTorchPeer(py)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	// 64 px: every stride and the max-pool still show in the feature-map
	// sizes (ImageNet stem 64 -> 32 -> 16, stages 16, 8, 4, 2), at a
	// twelfth of the cost of 224 px.
	const size = 64
	archs := models.Names()
	nets, err := peer.Describe(archs, size)
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
		params, buffers := SpecParamCounts(spec, Classes)
		if n.Params != params || n.Buffers != buffers {
			t.Errorf("%s: peer has %d parameters and %d buffer values, the Go spec %d and %d", arch, n.Params, n.Buffers, params, buffers)
		}
		shapes, convs, logits := specStructure(t, spec, size, Classes)
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
		if got, _ := SpecParamCounts(spec, Classes); got != want {
			t.Errorf("%s: %d parameters with a 10-class head, torchvision has %d", arch, got, want)
		}
	}
}

// TestTorchPeerMissing checks the one-line errors that send the user to
// scripts/bench_setup.sh: for a Python that does not exist, and for one
// where torch does not import (a stand-in torch module on PYTHONPATH that
// raises ImportError, so this runs whether or not torch is installed).
func TestTorchPeerMissing(t *testing.T) {
	_, err := ResolvePython(filepath.Join(t.TempDir(), "no", "python"), true)
	if err == nil || !strings.Contains(err.Error(), "scripts/bench_setup.sh") || !strings.Contains(err.Error(), "no python at") {
		t.Errorf("missing python: error %v, want 'no python at ...' pointing to scripts/bench_setup.sh", err)
	}
	if _, err := ResolvePython("selfsup-no-such-python-here", false); err == nil || !strings.Contains(err.Error(), "not on PATH") {
		t.Errorf("python name not on PATH: error %v", err)
	}

	py := testenv.Python(t)
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "torch.py"), []byte("raise ImportError('no torch in this test')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	peer, err := NewTorchPeer(py)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peer.env = []string{"PYTHONPATH=" + fake}
	_, err = peer.Describe([]string{"resnet18c"}, 0)
	if err == nil {
		t.Fatal("describe with torch unimportable: no error")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "torch is not importable") || !strings.Contains(msg, "no torch in this test") ||
		!strings.Contains(msg, "run bash scripts/bench_setup.sh") {
		t.Errorf("torch missing: error %q, want one line naming the import error and scripts/bench_setup.sh", msg)
	}
	_, err = peer.Bench("resnet18c", 2, 32, 1, 0, 1, "contiguous", "none")
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
