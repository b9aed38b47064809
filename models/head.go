package models

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/ops"
)

// BatchNorm1d is a batch norm over the rows of a head's [N, C] activations
// (PyTorch's BatchNorm1d; VISSL's MLP heads with use_bn): per column,
// batch statistics in training, running statistics otherwise, gamma and
// beta learnable. It runs the backbone's batch-norm op on [N, C, 1, 1].
type BatchNorm1d struct {
	Name        string
	Gamma, Beta *G.Node
	St          *ops.BNState
}

// NewBatchNorm1d makes a batch norm over c columns of dtype (that of the
// input: tensor.Float32, or tensor.Float64 for gradient checks), with gamma 1, beta 0,
// running mean 0 and variance 1 (eps 1e-5, momentum 0.1), or with the
// values in w when it holds "<name>.weight", "<name>.bias",
// "<name>.running_mean" and "<name>.running_var" (all four or none).
func NewBatchNorm1d(g *G.ExprGraph, name string, c int, dtype tensor.Dtype, mode *ops.Mode, w Weights) (*BatchNorm1d, error) {
	keys := []string{".weight", ".bias", ".running_mean", ".running_var"}
	vals := make([]Tensor, len(keys))
	found := 0
	for i, k := range keys {
		t, ok := w[name+k]
		if !ok {
			continue
		}
		if !sameShape(t.Shape, []int{c}) {
			return nil, fmt.Errorf("models: batch norm %s: %s has shape %v, expected [%d]", name, name+k, t.Shape, c)
		}
		vals[i] = t
		found++
	}
	switch found {
	case 0:
		for i := range vals {
			vals[i] = Tensor{Shape: []int{c}, Data: make([]float32, c)}
			if keys[i] == ".weight" || keys[i] == ".running_var" {
				for j := range vals[i].Data {
					vals[i].Data[j] = 1
				}
			}
		}
	case len(keys):
	default:
		return nil, fmt.Errorf("models: batch norm %s: weights have %d of its 4 tensors (weight, bias, running_mean, running_var)", name, found)
	}
	return &BatchNorm1d{Name: name,
		Gamma: ParamNode(g, name+".weight", vals[0], dtype),
		Beta:  ParamNode(g, name+".bias", vals[1], dtype),
		St: &ops.BNState{Mean: append([]float32(nil), vals[2].Data...), Var: append([]float32(nil), vals[3].Data...),
			Momentum: 0.1, Eps: 1e-5, Mode: mode},
	}, nil
}

// Apply normalises x [N, C].
func (b *BatchNorm1d) Apply(x *G.Node) (*G.Node, error) {
	s := x.Shape()
	if x.Dims() != 2 || s[1] != len(b.St.Mean) {
		return nil, fmt.Errorf("models: batch norm %s: input has shape %v, expected [N %d]", b.Name, s, len(b.St.Mean))
	}
	y, err := G.Reshape(x, tensor.Shape{s[0], s[1], 1, 1})
	if err != nil {
		return nil, err
	}
	if y, err = ops.BatchNorm(y, b.Gamma, b.Beta, b.St); err != nil {
		return nil, err
	}
	return G.Reshape(y, tensor.Shape{s[0], s[1]})
}

// Weights snapshots gamma, beta and the running statistics.
func (b *BatchNorm1d) Weights() Weights {
	c := len(b.St.Mean)
	return Weights{b.Name + ".weight": NodeTensor(b.Gamma), b.Name + ".bias": NodeTensor(b.Beta),
		b.Name + ".running_mean": Tensor{Shape: []int{c}, Data: append([]float32(nil), b.St.Mean...)},
		b.Name + ".running_var":  Tensor{Shape: []int{c}, Data: append([]float32(nil), b.St.Var...)}}
}
