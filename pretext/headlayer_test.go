package pretext

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// hiddenRef is fc -> batch norm (batch statistics) -> ReLU -> * mask for
// x [n, in], W [out, in], in float64.
func hiddenRef(x, w, b []float64, n, in, out int, mask []float64) []float64 {
	h := make([]float64, n*out)
	for i := 0; i < n; i++ {
		for o := 0; o < out; o++ {
			s := b[o]
			for k := 0; k < in; k++ {
				s += x[i*in+k] * w[o*in+k]
			}
			h[i*out+o] = s
		}
	}
	for o := 0; o < out; o++ {
		var m, v float64
		for i := 0; i < n; i++ {
			m += h[i*out+o]
		}
		m /= float64(n)
		for i := 0; i < n; i++ {
			v += (h[i*out+o] - m) * (h[i*out+o] - m)
		}
		v /= float64(n)
		for i := 0; i < n; i++ {
			y := (h[i*out+o] - m) / math.Sqrt(v+1e-5)
			h[i*out+o] = math.Max(0, y) * mask[i*out+o]
		}
	}
	return h
}

// TestHiddenLayer checks a float32 head layer with batch norm and dropout against
// the plain reference in training mode (the drawn mask applied) and in
// inference mode (all ones), and the gradient of a weighted sum of its
// output for the fc weights against finite differences of the reference.
func TestHiddenLayer(t *testing.T) {
	const n, in, out = 5, 4, 3
	rng := rand.New(rand.NewSource(8))
	x := make([]float64, n*in)
	r := make([]float64, n*out)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	for i := range r {
		r[i] = rng.NormFloat64()
	}
	mode := &ops.Mode{Training: true}
	g := G.NewGraph()
	x32 := make([]float32, len(x))
	for i, v := range x {
		x32[i] = float32(v)
		x[i] = float64(x32[i])
	}
	xn := G.NewTensor(g, tensor.Float32, 2, G.WithShape(n, in), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(n, in), tensor.WithBacking(x32))))
	// Weights are given as float32 tensors: take the float64 copies the
	// reference uses from them.
	wt := models.Tensor{Shape: []int{out, in}, Data: make([]float32, out*in)}
	bt := models.Tensor{Shape: []int{out}, Data: make([]float32, out)}
	for i := range wt.Data {
		wt.Data[i] = float32(rng.NormFloat64())
	}
	for i := range bt.Data {
		bt.Data[i] = float32(rng.NormFloat64())
	}
	heads := models.Weights{"fc.weight": wt, "fc.bias": bt}
	h, y, err := newHiddenLayer(g, xn, "fc", "bn", in, out, 0.5, mode, heads, rng)
	if err != nil {
		t.Fatal(err)
	}
	r32 := make([]float32, len(r))
	for i, v := range r {
		r32[i] = float32(v)
		r[i] = float64(r32[i])
	}
	rn := G.NewTensor(g, tensor.Float32, 2, G.WithShape(n, out), G.WithName("r"),
		G.WithValue(tensor.New(tensor.WithShape(n, out), tensor.WithBacking(r32))))
	prod, err := G.HadamardProd(y, rn)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := G.Sum(prod)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(loss, h.fc.W)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.params()) != 4 || len(h.weights()) != 6 {
		t.Fatalf("%d params, %d weights; expected 4 and 6", len(h.params()), len(h.weights()))
	}
	w64 := make([]float64, len(wt.Data))
	b64 := make([]float64, len(bt.Data))
	for i, v := range wt.Data {
		w64[i] = float64(v)
	}
	for i, v := range bt.Data {
		b64[i] = float64(v)
	}
	drawn := h.drop.draw(rand.New(rand.NewSource(1)))
	mask := make([]float64, len(drawn))
	for i, v := range drawn {
		mask[i] = float64(v)
	}
	if err := h.drop.load(drawn); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g, G.BindDualValues(h.fc.W))
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	want := hiddenRef(x, w64, b64, n, in, out, mask)
	for i, v := range y.Value().Data().([]float32) {
		if math.Abs(float64(v)-want[i]) > 1e-4 {
			t.Fatalf("training y[%d] = %v, reference %v", i, v, want[i])
		}
	}
	gw := grads[0].Value().Data().([]float32)
	const eps = 1e-6
	for i := range w64 {
		old := w64[i]
		w64[i] = old + eps
		up := hiddenRef(x, w64, b64, n, in, out, mask)
		w64[i] = old - eps
		down := hiddenRef(x, w64, b64, n, in, out, mask)
		w64[i] = old
		var fd float64
		for j := range up {
			fd += (up[j] - down[j]) * r[j] / (2 * eps)
		}
		if math.Abs(fd-float64(gw[i])) > 2e-3*math.Max(1, math.Abs(fd)) {
			t.Fatalf("dL/dW[%d] = %v, finite differences %v", i, gw[i], fd)
		}
	}
	// Inference: the mask is all ones whatever was drawn.
	mode.Training = false
	if err := h.drop.load(drawn); err != nil {
		t.Fatal(err)
	}
	for _, v := range h.drop.mask.Value().Data().([]float32) {
		if v != 1 {
			t.Fatalf("inference mask holds %v, expected 1", v)
		}
	}
	if err := h.drop.load(drawn[1:]); err == nil {
		t.Fatal("a short mask was accepted")
	}
}
