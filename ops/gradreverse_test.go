package ops

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// GradReverse: the forward pass copies its input exactly (float32 and
// float64); the gradient of loss(GradReverse(f(x))) is -lambda times the
// finite-difference gradient of loss(f(x)), which is the same function of
// x; a negative or infinite lambda is refused.
func TestGradReverse(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	for _, lambda := range []float64{0.3, 1, 0} {
		x, w, b := randDense(rng, 4, 5), randDense(rng, 3, 5), randDense(rng, 3)
		r := make([]float64, 4*3)
		for i := range r {
			r[i] = rng.NormFloat64()
		}
		g := G.NewGraph()
		xn := G.NewTensor(g, tensor.Float64, 2, G.WithShape(4, 5), G.WithValue(x), G.WithName("x"))
		wn := G.NewTensor(g, tensor.Float64, 2, G.WithShape(3, 5), G.WithValue(w), G.WithName("w"))
		bn := G.NewTensor(g, tensor.Float64, 1, G.WithShape(3), G.WithValue(b), G.WithName("b"))
		h, err := Linear(xn, wn, bn)
		if err != nil {
			t.Fatal(err)
		}
		rev, err := GradReverse(h, lambda)
		if err != nil {
			t.Fatal(err)
		}
		// A nonlinearity after the reversal, so the gradient reaching it
		// depends on the input.
		act, err := ReLU(rev)
		if err != nil {
			t.Fatal(err)
		}
		loss, err := G.ApplyOp(&weightedSum{base: newBase("ws"), r: r, rank: 2}, act)
		if err != nil {
			t.Fatal(err)
		}
		grads, err := G.Grad(loss, xn, wn, bn)
		if err != nil {
			t.Fatal(err)
		}
		m := G.NewTapeMachine(g)
		run := func() float64 {
			m.Reset()
			if err := m.RunAll(); err != nil {
				t.Fatal(err)
			}
			return loss.Value().Data().(float64)
		}
		run()
		hv, rv := h.Value().Data().([]float64), rev.Value().Data().([]float64)
		for i := range hv {
			if hv[i] != rv[i] {
				t.Fatalf("forward [%d]: %v, input %v", i, rv[i], hv[i])
			}
		}
		for k, in := range []*tensor.Dense{x, w, b} {
			analytic := append([]float64(nil), grads[k].Value().Data().([]float64)...)
			data := in.Float64s()
			for j := range data {
				orig := data[j]
				data[j] = orig + 1e-5
				fp := run()
				data[j] = orig - 1e-5
				fm := run()
				data[j] = orig
				want := -lambda * (fp - fm) / 2e-5
				if math.Abs(analytic[j]-want) > 1e-6+1e-5*math.Abs(want) {
					t.Fatalf("lambda %v: d/d input %d [%d]: %v, expected -lambda x finite difference %v", lambda, k, j, analytic[j], want)
				}
			}
		}
		m.Close()
	}
	// float32 forward is an exact copy too.
	g := G.NewGraph()
	v := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1.5, -2, 3e-8, 0, 7, -0.25}))
	xn := G.NewTensor(g, tensor.Float32, 2, G.WithShape(2, 3), G.WithValue(v))
	y, err := GradReverse(xn, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	for i, e := range y.Value().Data().([]float32) {
		if e != v.Float32s()[i] {
			t.Fatalf("float32 forward [%d]: %v, input %v", i, e, v.Float32s()[i])
		}
	}
	for _, bad := range []float64{-0.1, math.Inf(1), math.NaN()} {
		if _, err := GradReverse(xn, bad); err == nil {
			t.Fatalf("lambda %v accepted", bad)
		}
	}
}
