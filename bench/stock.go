package bench

import (
	"fmt"
	"math/rand"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/models"
)

// StockClassifier builds spec + a linear classifier with Gorgonia v0.9.18's
// own operations (Conv2d via im2col, BatchNorm, Rectify, MaxPool2D, Mul),
// the baseline that `selfsup bench train --engine stock` measures the ops/
// package against. Known traps are worked around: global average pooling
// is a reshape and a single-axis Mean (GlobalAveragePool2D has no
// gradient; multi-axis Mean is wrong), and batch norm gets explicit scale
// and bias nodes. It returns the input node [batch, InC, size, size], the
// one-hot target node [batch, classes], the scalar loss and the learnables.
// Only for benchmarks: running statistics are not exported.
func StockClassifier(g *G.ExprGraph, s *models.Spec, batch, size, classes int, rng *rand.Rand) (x, target, loss *G.Node, learn G.Nodes, err error) {
	w := models.InitWeights(s, rng)
	x = G.NewTensor(g, tensor.Float32, 4, G.WithShape(batch, s.InC, size, size), G.WithName("x"), G.WithInit(G.GlorotN(1)))
	acts := map[string]*G.Node{models.InputName: x}
	for _, l := range s.Layers {
		in := acts[l.Inputs[0]]
		var out *G.Node
		switch l.Op {
		case models.OpConv:
			wt := models.ParamNode(g, l.Name+".weight", w[l.Name+".weight"], tensor.Float32)
			learn = append(learn, wt)
			out, err = G.Conv2d(in, wt, tensor.Shape{l.Kernel, l.Kernel}, []int{l.Pad, l.Pad}, []int{l.Stride, l.Stride}, []int{1, 1})
		case models.OpBatchNorm:
			c := l.OutC
			scale := models.ParamNode(g, l.Name+".weight", models.Tensor{Shape: []int{1, c, 1, 1}, Data: w[l.Name+".weight"].Data}, tensor.Float32)
			bias := models.ParamNode(g, l.Name+".bias", models.Tensor{Shape: []int{1, c, 1, 1}, Data: w[l.Name+".bias"].Data}, tensor.Float32)
			learn = append(learn, scale, bias)
			out, _, _, _, err = G.BatchNorm(in, scale, bias, 0.1, l.Eps)
		case models.OpRelu:
			out, err = G.Rectify(in)
		case models.OpAdd:
			out, err = G.Add(in, acts[l.Inputs[1]])
		case models.OpMaxPool:
			out, err = G.MaxPool2D(in, tensor.Shape{l.Kernel, l.Kernel}, []int{l.Pad, l.Pad}, []int{l.Stride, l.Stride})
		case models.OpGlobalAvgPool:
			sh := in.Shape()
			var r *G.Node
			if r, err = G.Reshape(in, tensor.Shape{sh[0], sh[1], sh[2] * sh[3]}); err == nil {
				out, err = G.Mean(r, 2)
			}
		default: // the split forms' Slice and Concat
			err = fmt.Errorf("op %s is not in the stock benchmark graph", l.Op)
		}
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("models: stock %s: layer %q: %w", s.Arch, l.Name, err)
		}
		acts[l.Name] = out
	}
	feats := acts[s.Outputs["features"]]
	fc := G.NewMatrix(g, tensor.Float32, G.WithShape(s.FeatureDim, classes), G.WithName("fc"), G.WithInit(G.GlorotN(1)))
	learn = append(learn, fc)
	logits, err := G.Mul(feats, fc)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	target = G.NewMatrix(g, tensor.Float32, G.WithShape(batch, classes), G.WithName("target"), G.WithInit(G.Zeroes()))
	lsm, err := G.LogSoftMax(logits)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	prod, err := G.HadamardProd(lsm, target)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	perRow, err := G.Sum(prod, 1)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	mean, err := G.Mean(perRow, 0)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	loss, err = G.Neg(mean)
	return x, target, loss, learn, err
}
