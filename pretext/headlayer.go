package pretext

import (
	"fmt"
	"math/rand"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// hiddenLayer is one hidden layer of a classification head:
// x -> fc -> batch norm (optional) -> ReLU -> dropout (optional).
type hiddenLayer struct {
	fc   *models.Linear
	bn   *models.BatchNorm1d // nil: none
	drop *dropout            // nil: none
}

// newHiddenLayer applies a hidden layer named name (its batch norm is
// bnName; "" for none) of out units to x [rows, in]; rate <= 0 means no
// dropout. Weights come from heads where it holds them.
func newHiddenLayer(g *G.ExprGraph, x *G.Node, name, bnName string, in, out int, rate float64, mode *ops.Mode,
	heads models.Weights, rng *rand.Rand) (*hiddenLayer, *G.Node, error) {
	h := &hiddenLayer{}
	var err error
	if h.fc, err = models.NewLinear(g, name, in, out, heads, rng); err != nil {
		return nil, nil, err
	}
	if x, err = h.fc.Apply(x); err != nil {
		return nil, nil, err
	}
	if bnName != "" {
		if h.bn, err = models.NewBatchNorm1d(g, bnName, out, x.Dtype(), mode, heads); err != nil {
			return nil, nil, err
		}
		if x, err = h.bn.Apply(x); err != nil {
			return nil, nil, err
		}
	}
	if x, err = ops.ReLU(x); err != nil {
		return nil, nil, err
	}
	if rate > 0 {
		h.drop = &dropout{rate: rate, mode: mode, mask: G.NewTensor(g, x.Dtype(), 2, G.WithShape(x.Shape()...), G.WithName(name+".dropout"),
			G.WithValue(tensor.New(tensor.WithShape(x.Shape()...), tensor.Of(x.Dtype()))))}
		if x, err = G.HadamardProd(x, h.drop.mask); err != nil {
			return nil, nil, err
		}
	}
	return h, x, nil
}

// params lists the learnable nodes: fc weight and bias, then batch-norm
// gamma and beta.
func (h *hiddenLayer) params() G.Nodes {
	out := G.Nodes{h.fc.W, h.fc.B}
	if h.bn != nil {
		out = append(out, h.bn.Gamma, h.bn.Beta)
	}
	return out
}

// weights snapshots the layer (batch-norm running statistics included).
func (h *hiddenLayer) weights() models.Weights {
	w := h.fc.Weights()
	if h.bn != nil {
		for k, v := range h.bn.Weights() {
			w[k] = v
		}
	}
	return w
}

// dropout is inverted dropout (Srivastava et al. 2014) as a product with a
// mask input: in training each entry is 0 with probability rate and
// 1/(1-rate) otherwise, drawn with the batch (MakeBatch's rng, so runs are
// reproducible and resumable); in inference mode the mask is all ones.
type dropout struct {
	rate float64
	mode *ops.Mode
	mask *G.Node
}

// size is the number of mask entries.
func (d *dropout) size() int { return d.mask.Shape().TotalSize() }

// draw returns a training mask.
func (d *dropout) draw(rng *rand.Rand) []float32 {
	m := make([]float32, d.size())
	keep := float32(1 / (1 - d.rate))
	for i := range m {
		if rng.Float64() >= d.rate {
			m[i] = keep
		}
	}
	return m
}

// load sets the mask: drawn in training, ones otherwise.
func (d *dropout) load(drawn []float32) error {
	if len(drawn) != d.size() {
		return fmt.Errorf("dropout mask has %d values, expected %d", len(drawn), d.size())
	}
	v := d.mask.Value().Data().([]float32) // head layers are float32 (models.NewLinear)
	for i := range v {
		v[i] = 1
		if d.mode.Training {
			v[i] = drawn[i]
		}
	}
	return nil
}
