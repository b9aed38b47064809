package models

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/ops"
)

// randomiseBN gives every batch norm non-trivial statistics and affine
// parameters, so that inference-mode tests exercise them.
func randomiseBN(s *Spec, w Weights, rng *rand.Rand) {
	for _, l := range s.Layers {
		if l.Op != OpBatchNorm {
			continue
		}
		for i := 0; i < l.OutC; i++ {
			w[l.Name+".weight"].Data[i] = float32(0.5 + rng.Float64())
			w[l.Name+".bias"].Data[i] = float32(rng.NormFloat64() * 0.1)
			w[l.Name+".running_mean"].Data[i] = float32(rng.NormFloat64() * 0.1)
			w[l.Name+".running_var"].Data[i] = float32(0.5 + rng.Float64())
		}
	}
}

// The Gorgonia graph in inference mode computes what the plain float64
// reference computes, for every registered architecture and the split
// form of resnet20c, and every output.
func TestBackboneMatchesReference(t *testing.T) {
	for _, arch := range append(Names(), "resnet20c"+SplitSuffix) {
		arch := arch
		t.Run(arch, func(t *testing.T) {
			if testing.Short() && arch == "resnet50" {
				t.Skip("resnet50 reference is slow; skipped under -short")
			}
			rng := rand.New(rand.NewSource(1))
			s, err := New(arch, 3)
			if err != nil {
				t.Fatal(err)
			}
			w := InitWeights(s, rng)
			randomiseBN(s, w, rng)
			n, h := 2, 32
			x := make([]float32, n*3*h*h)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			g := G.NewGraph()
			bb, err := NewBackbone(g, s, w, tensor.Float32, &ops.Mode{Training: false})
			if err != nil {
				t.Fatal(err)
			}
			in := G.NewTensor(g, tensor.Float32, 4, G.WithShape(n, 3, h, h), G.WithValue(tensor.New(tensor.WithShape(n, 3, h, h), tensor.WithBacking(x))), G.WithName("x"))
			outs, err := bb.Forward(in)
			if err != nil {
				t.Fatal(err)
			}
			m := G.NewTapeMachine(g)
			defer m.Close()
			if err := m.RunAll(); err != nil {
				t.Fatal(err)
			}
			ref, err := Reference(s, w, x, n, h, h, nil)
			if err != nil {
				t.Fatal(err)
			}
			for name, node := range outs {
				got := node.Value().Data().([]float32)
				want := ref[name]
				if len(got) != len(want.Data) {
					t.Fatalf("%s: %d values, reference %d", name, len(got), len(want.Data))
				}
				var scale, maxd float64
				for i := range got {
					scale = math.Max(scale, math.Abs(float64(want.Data[i])))
					maxd = math.Max(maxd, math.Abs(float64(got[i]-want.Data[i])))
				}
				if maxd > 1e-4*math.Max(1, scale) {
					t.Errorf("%s: max abs difference %g (output scale %g)", name, maxd, scale)
				}
			}
			if got := outs["features"].Shape(); got[0] != n || got[1] != s.FeatureDim {
				t.Errorf("features shape %v, expected [%d %d]", got, n, s.FeatureDim)
			}
		})
	}
}

func TestSpecValidateCatchesBadWeights(t *testing.T) {
	s, _ := New("resnet20c", 3)
	w := InitWeights(s, rand.New(rand.NewSource(1)))
	w["stem.conv.weight"] = Tensor{Shape: []int{16, 3, 3, 2}, Data: make([]float32, 288)}
	if err := s.Validate(w); err == nil {
		t.Fatal("expected a shape error")
	}
	delete(w, "stem.conv.weight")
	if err := s.Validate(w); err == nil {
		t.Fatal("expected a missing-weight error")
	}
	if _, err := New("resnet999", 3); err == nil {
		t.Fatal("expected unknown architecture error")
	}
}

// A convolution with bias (not used by the ResNets, but part of the Spec)
// builds and matches the reference.
func TestConvBiasMatchesReference(t *testing.T) {
	s := &Spec{Arch: "tiny-bias", InC: 2, InputSize: 6, Outputs: map[string]string{"features": "pool"}, FeatureDim: 3, Layers: []Layer{
		{Name: "c", Op: OpConv, Inputs: []string{InputName}, Kernel: 3, Stride: 1, Pad: 1, InC: 2, OutC: 3, Bias: true},
		{Name: "r", Op: OpRelu, Inputs: []string{"c"}},
		{Name: "pool", Op: OpGlobalAvgPool, Inputs: []string{"r"}},
	}}
	rng := rand.New(rand.NewSource(3))
	w := InitWeights(s, rng)
	for i := range w["c.bias"].Data {
		w["c.bias"].Data[i] = float32(rng.NormFloat64())
	}
	x := make([]float32, 2*2*6*6)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	g := G.NewGraph()
	bb, err := NewBackbone(g, s, w, tensor.Float32, &ops.Mode{})
	if err != nil {
		t.Fatal(err)
	}
	in := G.NewTensor(g, tensor.Float32, 4, G.WithShape(2, 2, 6, 6), G.WithValue(tensor.New(tensor.WithShape(2, 2, 6, 6), tensor.WithBacking(x))))
	outs, err := bb.Forward(in)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	ref, err := Reference(s, w, x, 2, 6, 6, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := outs["features"].Value().Data().([]float32)
	for i, v := range ref["features"].Data {
		if math.Abs(float64(v-got[i])) > 1e-5 {
			t.Fatalf("feature %d: graph %v, reference %v", i, got[i], v)
		}
	}
}
