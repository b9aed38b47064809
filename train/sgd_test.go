package train

import (
	"errors"
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestSGDMatchesPyTorch runs three steps of SGD with and without Nesterov
// momentum on a 2x2 weight (decayed) and a bias (not decayed) and compares
// with PyTorch's torch.optim.SGD update written out in float64:
// g' = g + wd*w; v = mu*v + g'; w -= lr*(nesterov ? g' + mu*v : v).
func TestSGDMatchesPyTorch(t *testing.T) {
	const mu, wd, lr = 0.9, 0.01, 0.1
	grads := [][]float64{{0.5, -1, 2, 0.25}, {-0.3, 0.7, 0.1, -2}, {1, 1, -1, 0.5}}
	for _, nesterov := range []bool{false, true} {
		g := G.NewGraph()
		w0 := []float32{1, -2, 0.5, 3}
		wn := G.NewTensor(g, tensor.Float32, 2, G.WithShape(2, 2), G.WithName("w"),
			G.WithValue(tensor.New(tensor.WithShape(2, 2), tensor.WithBacking(append([]float32(nil), w0...)))))
		bn := G.NewVector(g, tensor.Float32, G.WithShape(4), G.WithName("b"),
			G.WithValue(tensor.New(tensor.WithShape(4), tensor.WithBacking(append([]float32(nil), w0...)))))
		gw := G.NewTensor(g, tensor.Float32, 2, G.WithShape(2, 2), G.WithName("gw"),
			G.WithValue(tensor.New(tensor.WithShape(2, 2), tensor.Of(tensor.Float32))))
		gb := G.NewVector(g, tensor.Float32, G.WithShape(4), G.WithName("gb"),
			G.WithValue(tensor.New(tensor.WithShape(4), tensor.Of(tensor.Float32))))
		opt := NewSGD(mu, wd)
		opt.Nesterov = nesterov
		ref := map[string][]float64{"w": {1, -2, 0.5, 3}, "b": {1, -2, 0.5, 3}}
		vel := map[string][]float64{"w": make([]float64, 4), "b": make([]float64, 4)}
		for _, gr := range grads {
			for i, v := range gr {
				gw.Value().Data().([]float32)[i] = float32(v)
				gb.Value().Data().([]float32)[i] = float32(v)
			}
			if err := opt.Step(G.Nodes{wn, bn}, G.Nodes{gw, gb}, lr); err != nil {
				t.Fatal(err)
			}
			for name, decay := range map[string]float64{"w": wd, "b": 0} {
				p, v := ref[name], vel[name]
				for i := range p {
					gi := gr[i] + decay*p[i]
					v[i] = mu*v[i] + gi
					if nesterov {
						p[i] -= lr * (gi + mu*v[i])
					} else {
						p[i] -= lr * v[i]
					}
				}
			}
		}
		for name, n := range map[string]*G.Node{"w": wn, "b": bn} {
			for i, got := range n.Value().Data().([]float32) {
				if want := ref[name][i]; math.Abs(float64(got)-want) > 1e-5 {
					t.Fatalf("nesterov=%v %s[%d] = %g, PyTorch's update gives %g", nesterov, name, i, got, want)
				}
			}
		}
	}
}

// A parameter large enough to be split over the cores is updated exactly
// as the element-by-element formula says (float32, bit for bit), and a
// non-finite value in its last chunk is still caught.
func TestSGDLargeParameter(t *testing.T) {
	const n = 3*sgdParallelMin + 7
	const mu, wd, lr = float32(0.9), float32(0.01), float32(0.1)
	g := G.NewGraph()
	w, gr := make([]float32, n), make([]float32, n)
	for i := range w {
		w[i], gr[i] = float32(i%97)/50-1, float32(i%89)/40-1
	}
	want := append([]float32(nil), w...)
	wn := G.NewTensor(g, tensor.Float32, 2, G.WithShape(n, 1), G.WithName("w"),
		G.WithValue(tensor.New(tensor.WithShape(n, 1), tensor.WithBacking(w))))
	gn := G.NewTensor(g, tensor.Float32, 2, G.WithShape(n, 1), G.WithName("gw"),
		G.WithValue(tensor.New(tensor.WithShape(n, 1), tensor.WithBacking(gr))))
	opt := NewSGD(float64(mu), float64(wd))
	vel := make([]float32, n)
	for step := 0; step < 2; step++ {
		if err := opt.Step(G.Nodes{wn}, G.Nodes{gn}, float64(lr)); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			gi := gr[i] + wd*want[i]
			vel[i] = mu*vel[i] + gi
			want[i] -= lr * vel[i]
		}
	}
	for i, got := range w {
		if math.Float32bits(got) != math.Float32bits(want[i]) {
			t.Fatalf("w[%d] = %v, the formula gives %v", i, got, want[i])
		}
	}
	gr[n-1] = float32(math.Inf(1))
	if err := opt.Step(G.Nodes{wn}, G.Nodes{gn}, float64(lr)); err == nil || !errors.Is(err, ErrNonFinite) {
		t.Fatalf("an infinite gradient in the last chunk: %v, expected ErrNonFinite", err)
	}
}

// BenchmarkSGDStep is one update of resnet18c's 11.2M parameters as one
// tensor: -cpu 1 is the serial update, -cpu 2 the split one.
func BenchmarkSGDStep(b *testing.B) {
	const n = 11173962
	g := G.NewGraph()
	wn := G.NewTensor(g, tensor.Float32, 2, G.WithShape(n, 1), G.WithName("w"),
		G.WithValue(tensor.New(tensor.WithShape(n, 1), tensor.Of(tensor.Float32))))
	gn := G.NewTensor(g, tensor.Float32, 2, G.WithShape(n, 1), G.WithName("gw"),
		G.WithValue(tensor.New(tensor.WithShape(n, 1), tensor.Of(tensor.Float32))))
	opt := NewSGD(0.9, 5e-4)
	b.SetBytes(4 * 4 * n) // w, g and v read, w and v written: about four passes
	for b.Loop() {
		if err := opt.Step(G.Nodes{wn}, G.Nodes{gn}, 0.1); err != nil {
			b.Fatal(err)
		}
	}
}
