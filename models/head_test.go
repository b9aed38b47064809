package models

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/ops"
)

// bn1dRef is the plain batch norm of x [n, c] with batch statistics
// (biased variance), float64.
func bn1dRef(x []float64, n, c int, gamma, beta []float64, eps float64) []float64 {
	y := make([]float64, len(x))
	for j := 0; j < c; j++ {
		var m, v float64
		for i := 0; i < n; i++ {
			m += x[i*c+j]
		}
		m /= float64(n)
		for i := 0; i < n; i++ {
			d := x[i*c+j] - m
			v += d * d
		}
		v /= float64(n)
		for i := 0; i < n; i++ {
			y[i*c+j] = gamma[j]*(x[i*c+j]-m)/math.Sqrt(v+eps) + beta[j]
		}
	}
	return y
}

// TestBatchNorm1d checks the training forward pass against the plain
// reference, the gradients of sum(r * y) for x, gamma and beta against
// finite differences of that reference, the running statistics, and the
// inference pass with them.
func TestBatchNorm1d(t *testing.T) {
	const n, c = 6, 3
	rng := rand.New(rand.NewSource(4))
	x := make([]float64, n*c)
	r := make([]float64, n*c)
	for i := range x {
		x[i] = 2*rng.NormFloat64() + 1
		r[i] = rng.NormFloat64()
	}
	gamma := []float64{1.5, 0.7, -0.4}
	beta := []float64{0.1, -0.2, 0.3}
	w := Weights{"bn.weight": {Shape: []int{c}, Data: []float32{1.5, 0.7, -0.4}}, "bn.bias": {Shape: []int{c}, Data: []float32{0.1, -0.2, 0.3}},
		"bn.running_mean": {Shape: []int{c}, Data: []float32{0, 0, 0}}, "bn.running_var": {Shape: []int{c}, Data: []float32{1, 1, 1}}}
	mode := &ops.Mode{Training: true}
	g := G.NewGraph()
	xn := G.NewTensor(g, tensor.Float64, 2, G.WithShape(n, c), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(n, c), tensor.WithBacking(append([]float64(nil), x...)))))
	rn := G.NewTensor(g, tensor.Float64, 2, G.WithShape(n, c), G.WithName("r"),
		G.WithValue(tensor.New(tensor.WithShape(n, c), tensor.WithBacking(r))))
	bn, err := NewBatchNorm1d(g, "bn", c, tensor.Float64, mode, w)
	if err != nil {
		t.Fatal(err)
	}
	y, err := bn.Apply(xn)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := G.HadamardProd(y, rn)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := G.Sum(prod)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(loss, xn, bn.Gamma, bn.Beta)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	want := bn1dRef(x, n, c, gamma, beta, 1e-5)
	got := y.Value().Data().([]float64)
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-6 { // the op keeps eps and its statistics in float32
			t.Fatalf("y[%d] = %v, reference %v", i, got[i], want[i])
		}
	}
	f := func(x, gamma, beta []float64) float64 {
		var s float64
		for i, v := range bn1dRef(x, n, c, gamma, beta, 1e-5) {
			s += v * r[i]
		}
		return s
	}
	const h = 1e-6
	check := func(name string, v []float64, grad *G.Node) {
		t.Helper()
		gv := grad.Value().Data().([]float64)
		for i := range v {
			old := v[i]
			v[i] = old + h
			up := f(x, gamma, beta)
			v[i] = old - h
			down := f(x, gamma, beta)
			v[i] = old
			if fd := (up - down) / (2 * h); math.Abs(fd-gv[i]) > 1e-5*math.Max(1, math.Abs(fd)) {
				t.Fatalf("d/d%s[%d] = %v, finite differences %v", name, i, gv[i], fd)
			}
		}
	}
	check("x", x, grads[0])
	check("gamma", gamma, grads[1])
	check("beta", beta, grads[2])

	// Running statistics: 0.9*old + 0.1*batch (unbiased variance).
	for j := 0; j < c; j++ {
		var mean, v float64
		for i := 0; i < n; i++ {
			mean += x[i*c+j]
		}
		mean /= n
		for i := 0; i < n; i++ {
			v += (x[i*c+j] - mean) * (x[i*c+j] - mean)
		}
		v /= n - 1
		ws := bn.Weights()
		if gm, gv := float64(ws["bn.running_mean"].Data[j]), float64(ws["bn.running_var"].Data[j]); math.Abs(gm-0.1*mean) > 1e-6 || math.Abs(gv-(0.9+0.1*v)) > 1e-5 {
			t.Fatalf("column %d: running mean/var %v/%v, expected %v/%v", j, gm, gv, 0.1*mean, 0.9+0.1*v)
		}
	}

	// Inference: the running statistics, and the weights round-trip.
	mode.Training = false
	g2 := G.NewGraph()
	x2 := G.NewTensor(g2, tensor.Float64, 2, G.WithShape(n, c), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(n, c), tensor.WithBacking(append([]float64(nil), x...)))))
	bn2, err := NewBatchNorm1d(g2, "bn", c, tensor.Float64, mode, bn.Weights())
	if err != nil {
		t.Fatal(err)
	}
	y2, err := bn2.Apply(x2)
	if err != nil {
		t.Fatal(err)
	}
	m2 := G.NewTapeMachine(g2)
	defer m2.Close()
	if err := m2.RunAll(); err != nil {
		t.Fatal(err)
	}
	st := bn.Weights()
	for i, v := range y2.Value().Data().([]float64) {
		j := i % c
		mu, va := float64(st["bn.running_mean"].Data[j]), float64(st["bn.running_var"].Data[j])
		if e := gamma[j]*(x[i]-mu)/math.Sqrt(va+1e-5) + beta[j]; math.Abs(v-e) > 1e-5 {
			t.Fatalf("inference y[%d] = %v, expected %v", i, v, e)
		}
	}
}

func TestBatchNorm1dErrors(t *testing.T) {
	g := G.NewGraph()
	mode := &ops.Mode{}
	if _, err := NewBatchNorm1d(g, "bn", 3, tensor.Float32, mode, Weights{"bn.weight": {Shape: []int{3}, Data: make([]float32, 3)}}); err == nil || !strings.Contains(err.Error(), "1 of its 4") {
		t.Fatalf("partial weights: %v", err)
	}
	if _, err := NewBatchNorm1d(g, "bn", 3, tensor.Float32, mode, Weights{"bn.weight": {Shape: []int{4}, Data: make([]float32, 4)}}); err == nil || !strings.Contains(err.Error(), "expected [3]") {
		t.Fatalf("wrong shape: %v", err)
	}
	bn, err := NewBatchNorm1d(g, "bn", 3, tensor.Float32, mode, nil)
	if err != nil {
		t.Fatal(err)
	}
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(2, 4), G.WithName("x"))
	if _, err := bn.Apply(x); err == nil || !strings.Contains(err.Error(), "expected [N 3]") {
		t.Fatalf("wrong input: %v", err)
	}
}
