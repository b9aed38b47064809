package models

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/ops"
)

// layoutRun is one training-mode forward and backward pass of a backbone
// built with its activations in one layout.
type layoutRun struct {
	outs  map[string][]float32
	grads map[string][]float32
	bn    Weights
}

func runLayout(t *testing.T, s *Spec, w Weights, x []float32, n, h int, r map[string][]float32, lay ops.Layout) layoutRun {
	t.Helper()
	g := G.NewGraph()
	bb, err := NewBackbone(g, s, w, tensor.Float32, &ops.Mode{Training: true})
	if err != nil {
		t.Fatal(err)
	}
	bb.Layout = lay
	in := G.NewTensor(g, tensor.Float32, 4, G.WithShape(n, s.InC, h, h), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(n, s.InC, h, h), tensor.WithBacking(append([]float32(nil), x...)))))
	outs, err := bb.Forward(in)
	if err != nil {
		t.Fatal(err)
	}
	// loss = sum over outputs of sum(out .* r[out]): every output gets a
	// distinct random gradient.
	var loss *G.Node
	names := []string{}
	for name, o := range outs {
		names = append(names, name)
		rn := G.NewTensor(g, tensor.Float32, o.Dims(), G.WithShape(o.Shape()...), G.WithName("r_"+name),
			G.WithValue(tensor.New(tensor.WithShape(o.Shape()...), tensor.WithBacking(r[name]))))
		p, err := G.HadamardProd(o, rn)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := G.Sum(p)
		if err != nil {
			t.Fatal(err)
		}
		if loss == nil {
			loss = sum
		} else if loss, err = G.Add(loss, sum); err != nil {
			t.Fatal(err)
		}
	}
	params := bb.Learnables()
	if _, err := G.Grad(loss, params...); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	res := layoutRun{outs: map[string][]float32{}, grads: map[string][]float32{}, bn: bb.Weights()}
	for _, name := range names {
		res.outs[name] = append([]float32(nil), outs[name].Value().Data().([]float32)...)
	}
	for _, p := range params {
		gv, err := p.Grad()
		if err != nil {
			t.Fatal(err)
		}
		res.grads[p.Name()] = append([]float32(nil), gv.Data().([]float32)...)
	}
	return res
}

// maxRelDiff is max |a-b| over max(1e-3, max |b|).
func maxRelDiff(a, b []float32) float64 {
	var d, sc float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		sc = math.Max(sc, math.Abs(float64(b[i])))
	}
	return d / math.Max(sc, 1e-3)
}

// A training step through the blocked layout (oneDNN convolutions, batch
// norms and pools on nChw16c, conversions at the edges), and through
// channels-last (NHWC, every activation), gives the same
// outputs, parameter gradients and running statistics as the plain NCHW
// graph, for a CIFAR stem, an ImageNet stem with max pooling, 16-channel
// stages, a one-channel input and a split backbone (8-channel stages in
// NCHW, 16- and 32-channel ones blocked, slices and concatenations).
func TestBlockedLayoutMatchesPlain(t *testing.T) {
	if !ops.BlockedLayout(tensor.Float32) {
		t.Skip("this build has no blocked layout (it needs oneDNN)")
	}
	for _, c := range []struct {
		arch    string
		inC, hw int
	}{{"resnet18c", 3, 8}, {"resnet20c", 1, 8}, {"resnet18", 3, 32}, {"resnet20c-split", 3, 8}} {
		t.Run(c.arch, func(t *testing.T) {
			rng := rand.New(rand.NewSource(7))
			s, err := New(c.arch, c.inC)
			if err != nil {
				t.Fatal(err)
			}
			w := InitWeights(s, rng)
			randomiseBN(s, w, rng)
			n := 4
			x := make([]float32, n*c.inC*c.hw*c.hw)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			ref, err := Reference(s, w, x, n, c.hw, c.hw, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := map[string][]float32{}
			for name, o := range ref {
				r[name] = make([]float32, len(o.Data))
				for i := range r[name] {
					r[name][i] = float32(rng.NormFloat64())
				}
			}
			plain := runLayout(t, s, w, x, n, c.hw, r, ops.NCHW)
			for _, lay := range []ops.Layout{ops.NChw16c, ops.NHWC} {
				got := runLayout(t, s, w, x, n, c.hw, r, lay)
				for name, want := range plain.outs {
					if d := maxRelDiff(got.outs[name], want); d > 1e-4 {
						t.Errorf("output %s: %v vs plain relative difference %g", name, lay, d)
					}
				}
				for name, want := range plain.grads {
					if d := maxRelDiff(got.grads[name], want); d > 1e-3 {
						t.Errorf("gradient of %s: %v vs plain relative difference %g", name, lay, d)
					}
				}
				for name, want := range plain.bn {
					if d := maxRelDiff(got.bn[name].Data, want.Data); d > 1e-4 {
						t.Errorf("%s after the step: %v vs plain relative difference %g", name, lay, d)
					}
				}
			}
		})
	}
}
