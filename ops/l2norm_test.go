package ops

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestL2NormalizeValue(t *testing.T) {
	g := G.NewGraph()
	x := tensor.New(tensor.WithShape(3, 2), tensor.WithBacking([]float32{3, 4, 0, -2, 0, 0}))
	n := G.NewTensor(g, tensor.Float32, 2, G.WithShape(3, 2), G.WithValue(x))
	y, err := L2Normalize(n)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	want := []float32{0.6, 0.8, 0, -1, 0, 0} // a zero row stays zero
	for i, v := range y.Value().Data().([]float32) {
		if math.Abs(float64(v-want[i])) > 1e-7 {
			t.Fatalf("y = %v, expected %v", y.Value().Data(), want)
		}
	}
	if _, err := L2Normalize(G.NewVector(g, tensor.Float32, G.WithShape(3))); err == nil {
		t.Fatal("expected an error for a rank-1 input")
	}
}

func TestL2NormalizeGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	gradCheck(t, "l2 normalize", []*tensor.Dense{randDense(rng, 4, 5)}, func(n []*G.Node) (*G.Node, error) {
		return L2Normalize(n[0])
	})
}

// The PIRL jigsaw head concatenates the nine tile embeddings of an image
// by reshaping [9B, 128] to [B, 1152]. Gorgonia's stock Reshape is used for
// that; check its gradient in the same composition (linear per tile,
// reshape, linear, L2 normalisation).
func TestReshapeConcatHeadGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	const B, tiles, in, mid, out = 2, 3, 4, 3, 5
	x := randDense(rng, B*tiles, in)
	w1, b1 := randDense(rng, mid, in), randDense(rng, mid)
	w2, b2 := randDense(rng, out, tiles*mid), randDense(rng, out)
	gradCheck(t, "linear-reshape-linear-l2norm", []*tensor.Dense{x, w1, b1, w2, b2}, func(n []*G.Node) (*G.Node, error) {
		h, err := Linear(n[0], n[1], n[2])
		if err != nil {
			return nil, err
		}
		if h, err = G.Reshape(h, tensor.Shape{B, tiles * mid}); err != nil {
			return nil, err
		}
		if h, err = Linear(h, n[3], n[4]); err != nil {
			return nil, err
		}
		return L2Normalize(h)
	})
}
