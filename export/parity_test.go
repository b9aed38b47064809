package export_test

// Parity of the exported graph with the network it came from: ONNX Runtime
// (through selfsup's runtime package, as users run it) against the Gorgonia
// inference forward pass that training uses (models.NewBackbone in
// inference mode), and against Python's onnxruntime. The export package
// itself never imports runtime; only this external test package does.

import (
	"fmt"
	"math"
	"math/rand"
	"path/filepath"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
	"github.com/selfsup/selfsup/runtime"
)

// needORT skips the test when the ONNX Runtime library is not installed.
func needORT(t *testing.T) {
	t.Helper()
	testenv.ORT(t)
	if err := runtime.Init(); err != nil {
		t.Fatalf("runtime.Init: %v", err)
	}
}

// parityNet makes a registered architecture with random weights and
// non-trivial batch-norm statistics and affine parameters (gamma of both
// signs), so that folding is exercised.
func parityNet(t testing.TB, arch string, seed int64) (*models.Spec, models.Weights) {
	return parityNetC(t, arch, 3, seed)
}

// parityNetC is parityNet with inC input channels.
func parityNetC(t testing.TB, arch string, inC int, seed int64) (*models.Spec, models.Weights) {
	t.Helper()
	spec, err := models.New(arch, inC)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(seed))
	w := models.InitWeights(spec, rng)
	for _, l := range spec.Layers {
		if l.Op != models.OpBatchNorm {
			continue
		}
		g, b := w[l.Name+".weight"].Data, w[l.Name+".bias"].Data
		m, v := w[l.Name+".running_mean"].Data, w[l.Name+".running_var"].Data
		for c := range g {
			g[c] = float32(0.5 + rng.Float64())
			if rng.Intn(5) == 0 {
				g[c] = -g[c]
			}
			b[c] = float32(rng.NormFloat64() * 0.2)
			m[c] = float32(rng.NormFloat64() * 0.2)
			v[c] = float32(0.25 + 2*rng.Float64())
		}
	}
	return spec, w
}

func normalInput(seed int64, n int) []float32 {
	rng := rand.New(rand.NewSource(seed))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// allOutputs is "features" followed by the spec's stage outputs in name order.
func allOutputs(spec *models.Spec) []string {
	outs := []string{export.FeaturesOutput}
	for _, k := range []string{"stage1", "stage2", "stage3", "stage4"} {
		if _, ok := spec.Outputs[k]; ok {
			outs = append(outs, k)
		}
	}
	return outs
}

// gorgoniaForward runs the training stack's inference forward pass
// (models.NewBackbone with ops.Mode{Training: false}) on x [n, 3, h, w] and
// returns every output.
func gorgoniaForward(t *testing.T, spec *models.Spec, w models.Weights, x []float32, n, h, wd int) map[string]models.Tensor {
	t.Helper()
	g := G.NewGraph()
	bb, err := models.NewBackbone(g, spec, w, tensor.Float32, &ops.Mode{Training: false})
	if err != nil {
		t.Fatal(err)
	}
	in := G.NewTensor(g, tensor.Float32, 4, G.WithShape(n, spec.InC, h, wd), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(n, spec.InC, h, wd), tensor.WithBacking(append([]float32(nil), x...)))))
	outs, err := bb.Forward(in)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g, G.EvalMode())
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	res := map[string]models.Tensor{}
	for name, node := range outs {
		res[name] = models.NodeTensor(node)
	}
	return res
}

// maxDiff returns max |a - b| and max |b| (the output scale); it fails the
// test on a length mismatch or a NaN.
func maxDiff(t *testing.T, what string, a []float32, b []float32) (diff, scale float64) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d values, expected %d", what, len(a), len(b))
	}
	for i := range b {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			t.Fatalf("%s: value %d is NaN (%v vs %v)", what, i, a[i], b[i])
		}
		diff = math.Max(diff, d)
		scale = math.Max(scale, math.Abs(float64(b[i])))
	}
	return diff, scale
}

func shape64(s []int) []int64 {
	r := make([]int64, len(s))
	for i, v := range s {
		r[i] = int64(v)
	}
	return r
}

func equal64(a, b []int64) bool {
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

// TestParityORTvsGorgonia exports every registered architecture with all
// of its outputs (features and stages), with and without batch-norm
// folding, runs it with ONNX Runtime through runtime.Session and checks each
// output against the Gorgonia inference forward pass of the same weights:
// max |ORT - Gorgonia| <= 1e-4 * max |Gorgonia| (the output scale). The
// unfolded export also has dynamic height and width and is fed a
// non-square input. A one-channel (grayscale) resnet20c and the split
// form of resnet20c (two half-width branches on channel 0 and channels
// 1-2, joined by Concat) are checked too.
func TestParityORTvsGorgonia(t *testing.T) {
	needORT(t)
	type net struct {
		arch string
		inC  int
	}
	var nets []net
	for _, arch := range models.Names() {
		nets = append(nets, net{arch, 3})
	}
	nets = append(nets, net{"resnet20c", 1}, net{"resnet20c-split", 3})
	for _, nt := range nets {
		arch := nt.arch
		t.Run(fmt.Sprintf("%s/%dch", arch, nt.inC), func(t *testing.T) {
			spec, w := parityNetC(t, arch, nt.inC, 7)
			outs := allOutputs(spec)
			for _, c := range []struct {
				fold, dynamic bool
				n, h, w       int
			}{
				{fold: true, n: 2, h: 32, w: 32},
				{fold: false, dynamic: true, n: 1, h: 32, w: 48},
			} {
				name := fmt.Sprintf("fold=%v/%dx%dx%d", c.fold, c.n, c.h, c.w)
				x := normalInput(3, c.n*spec.InC*c.h*c.w)
				want := gorgoniaForward(t, spec, w, x, c.n, c.h, c.w)
				m, err := export.Build(spec, w, export.Options{Outputs: outs, FoldBN: c.fold, DynamicHW: c.dynamic, InputSize: c.h})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				path := filepath.Join(t.TempDir(), "model.onnx")
				if err := export.Write(path, m); err != nil {
					t.Fatal(err)
				}
				sess, err := runtime.Open(path, runtime.Options{})
				if err != nil {
					t.Fatal(err)
				}
				got, err := sess.Run(x, []int64{int64(c.n), int64(spec.InC), int64(c.h), int64(c.w)}, outs...)
				if cerr := sess.Close(); cerr != nil {
					t.Error(cerr)
				}
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for _, o := range outs {
					ref, ok := want[o]
					if !ok {
						t.Fatalf("%s: Gorgonia forward has no output %q", name, o)
					}
					if !equal64(got[o].Shape, shape64(ref.Shape)) {
						t.Fatalf("%s %s: ORT shape %v, Gorgonia %v", name, o, got[o].Shape, ref.Shape)
					}
					d, scale := maxDiff(t, name+" "+o, got[o].Data, ref.Data)
					if scale == 0 {
						t.Errorf("%s %s: Gorgonia output is all zeros; the comparison proves nothing", name, o)
					}
					if d > 1e-4*scale {
						t.Errorf("%s %s %v: max |ORT - Gorgonia| %.3g exceeds 1e-4 * scale %.3g", name, o, ref.Shape, d, scale)
					}
					t.Logf("%s %s %v: max |ORT - Gorgonia| %.2g, scale %.3g (ratio %.1e)", name, o, ref.Shape, d, scale, d/scale)
				}
			}
		})
	}
}
