package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ChannelBias adds b [C] to every cell of channel c of x [N, C, H, W]: the
// optional bias of a convolution. Gradients: dx = dy, db[c] = sum of dy over
// N, H and W.
func ChannelBias(x, b *G.Node) (*G.Node, error) {
	if x.Dims() != 4 || b.Dims() != 1 || b.Shape()[0] != x.Shape()[1] {
		return nil, fmt.Errorf("ops: channel bias: x %v and b %v do not fit [N, C, H, W] and [C]", x.Shape(), b.Shape())
	}
	return G.ApplyOp(&channelBias{base: newBase("ChannelBias")}, x, b)
}

// Conv2DBias is Conv2D followed by ChannelBias.
func Conv2DBias(x, w, b *G.Node, stride, pad int) (*G.Node, error) {
	y, err := Conv2D(x, w, stride, pad)
	if err != nil {
		return nil, err
	}
	return ChannelBias(y, b)
}

type channelBias struct{ base }

func (op *channelBias) Arity() int    { return 2 }
func (op *channelBias) Type() hm.Type { return fnType(4, 1, 4) }
func (op *channelBias) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	return ns[0].(tensor.Shape).Clone(), nil
}

func channelBiasKernel[T Float](x, b, y []T, N, C, HW int) {
	parallelFor(N*C, func(_, lo, hi int) {
		for nc := lo; nc < hi; nc++ {
			v := b[nc%C]
			xs, ys := x[nc*HW:(nc+1)*HW], y[nc*HW:(nc+1)*HW]
			for i, u := range xs {
				ys[i] = u + v
			}
		}
	})
}

func (op *channelBias) Do(vs ...G.Value) (G.Value, error) {
	x, err := dense("channel bias", 0, vs[0])
	if err != nil {
		return nil, err
	}
	b, err := dense("channel bias", 1, vs[1])
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("channel bias", x, b)
	if err != nil {
		return nil, err
	}
	if err := checkRank("channel bias", 0, x, 4); err != nil {
		return nil, err
	}
	N, C, H, W := shape4(x.Shape())
	if b.Shape().TotalSize() != C {
		return nil, fmt.Errorf("ops: channel bias: %d biases for %d channels", b.Shape().TotalSize(), C)
	}
	y := op.output(dt, false, x.Shape()...)
	switch dt {
	case tensor.Float32:
		channelBiasKernel(x.Float32s(), b.Float32s(), y.Float32s(), N, C, H*W)
	default:
		channelBiasKernel(x.Float64s(), b.Float64s(), y.Float64s(), N, C, H*W)
	}
	return y, nil
}

func (op *channelBias) DiffWRT(int) []bool { return []bool{true, true} }
func (op *channelBias) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	db, err := G.ApplyOp(&channelBiasGrad{base: newBase("ChannelBiasGrad")}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{grad, db}, nil
}

// channelBiasGrad sums dy [N, C, H, W] over everything but the channel.
type channelBiasGrad struct{ base }

func (op *channelBiasGrad) Arity() int    { return 1 }
func (op *channelBiasGrad) Type() hm.Type { return fnType(4, 1) }
func (op *channelBiasGrad) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{ns[0].(tensor.Shape)[1]}, nil
}

func channelSumKernel[T Float](dy, db []T, N, C, HW int) {
	parallelFor(C, func(_, lo, hi int) {
		for c := lo; c < hi; c++ {
			var s float64
			for n := 0; n < N; n++ {
				for _, v := range dy[(n*C+c)*HW : (n*C+c+1)*HW] {
					s += float64(v)
				}
			}
			db[c] = T(s)
		}
	})
}

func (op *channelBiasGrad) Do(vs ...G.Value) (G.Value, error) {
	dy, err := dense("channel bias grad", 0, vs[0])
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("channel bias grad", dy)
	if err != nil {
		return nil, err
	}
	N, C, H, W := shape4(dy.Shape())
	db := op.output(dt, false, C)
	switch dt {
	case tensor.Float32:
		channelSumKernel(dy.Float32s(), db.Float32s(), N, C, H*W)
	default:
		channelSumKernel(dy.Float64s(), db.Float64s(), N, C, H*W)
	}
	return db, nil
}
