package ops

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// GradReverse is the gradient-reversal layer of Ganin & Lempitsky,
// "Unsupervised Domain Adaptation by Backpropagation" (ICML 2015): the
// identity in the forward pass (a copy of x, any rank), and in the
// backward pass the incoming gradient multiplied by -lambda. Put between
// features and a domain discriminator, it lets one minimisation train the
// discriminator to tell the domains apart while the layers below learn,
// with weight lambda, to make them indistinguishable. lambda must be
// finite and >= 0 (0 stops the gradient).
func GradReverse(x *G.Node, lambda float64) (*G.Node, error) {
	if !(lambda >= 0) || math.IsInf(lambda, 0) {
		return nil, fmt.Errorf("ops: gradient reversal: lambda %v, expected finite and >= 0", lambda)
	}
	return G.ApplyOp(&gradReverse{base: newBase("GradReverse"), rank: x.Dims(), scale: -lambda}, x)
}

// gradReverse is GradReverse; gradScale (scale -lambda) is its gradient,
// which scales dy by a constant and is not differentiated further.
type gradReverse struct {
	base
	rank  int
	scale float64
}

func (op *gradReverse) Arity() int    { return 1 }
func (op *gradReverse) Type() hm.Type { return fnType(op.rank, op.rank) }
func (op *gradReverse) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	return ns[0].(tensor.Shape).Clone(), nil
}

func (op *gradReverse) Do(vs ...G.Value) (G.Value, error) {
	return scaleCopy(&op.base, "gradient reversal", vs[0], 1)
}

func (op *gradReverse) DiffWRT(int) []bool { return []bool{true} }
func (op *gradReverse) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&gradScale{base: newBase("GradReverseGrad"), rank: op.rank, scale: op.scale}, grad)
	return G.Nodes{dx}, err
}

type gradScale struct {
	base
	rank  int
	scale float64
}

func (op *gradScale) Arity() int    { return 1 }
func (op *gradScale) Type() hm.Type { return fnType(op.rank, op.rank) }
func (op *gradScale) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	return ns[0].(tensor.Shape).Clone(), nil
}
func (op *gradScale) Do(vs ...G.Value) (G.Value, error) {
	return scaleCopy(&op.base, "gradient reversal gradient", vs[0], op.scale)
}

// scaleCopy returns s * v in the op's reused output buffer.
func scaleCopy(b *base, name string, v G.Value, s float64) (G.Value, error) {
	x, err := dense(name, 0, v)
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf(name, x)
	if err != nil {
		return nil, err
	}
	y := b.output(dt, false, x.Shape()...)
	switch dt {
	case tensor.Float32:
		src, dst, k := x.Float32s(), y.Float32s(), float32(s)
		for i, e := range src {
			dst[i] = k * e
		}
	default:
		src, dst := x.Float64s(), y.Float64s()
		for i, e := range src {
			dst[i] = s * e
		}
	}
	return y, nil
}
