package train

import (
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
