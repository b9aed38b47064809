package ops

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// L2NormEps is the smallest row norm L2Normalize divides by (PyTorch's
// F.normalize default).
const L2NormEps = 1e-12

// L2Normalize divides every row of x [N, D] by its Euclidean norm:
// y_i = x_i / max(||x_i||, L2NormEps), [N, D]. The embeddings of
// contrastive heads (PIRL, NPID) go through it so that dot products are
// cosine similarities. Its gradient is dx_i = (dy_i - y_i (y_i . dy_i)) /
// ||x_i|| (dy_i / L2NormEps for rows shorter than L2NormEps, where the map
// is linear).
func L2Normalize(x *G.Node) (*G.Node, error) {
	if x.Dims() != 2 {
		return nil, fmt.Errorf("ops: l2 normalize: x has shape %v, expected [N, D]", x.Shape())
	}
	return G.ApplyOp(&l2norm{base: newBase("L2Normalize")}, x)
}

type l2norm struct{ base }

func (op *l2norm) Arity() int    { return 1 }
func (op *l2norm) Type() hm.Type { return fnType(2, 2) }
func (op *l2norm) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	s := ns[0].(tensor.Shape)
	if len(s) != 2 {
		return nil, fmt.Errorf("ops: l2 normalize: shape %v, expected [N, D]", s)
	}
	return s.Clone(), nil
}

// rowNorm is max(||row||, L2NormEps), accumulated in float64.
func rowNorm[T Float](row []T) float64 {
	var s float64
	for _, v := range row {
		s += float64(v) * float64(v)
	}
	return math.Max(math.Sqrt(s), L2NormEps)
}

func l2normKernel[T Float](x, y []T, N, D int) {
	parallelFor(N, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			row := x[i*D : (i+1)*D]
			inv := 1 / rowNorm(row)
			for j, v := range row {
				y[i*D+j] = T(float64(v) * inv)
			}
		}
	})
}

func l2normGradKernel[T Float](x, y, dy, dx []T, N, D int) {
	parallelFor(N, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			r := i * D
			n := rowNorm(x[r : r+D])
			var dot float64
			if n > L2NormEps {
				for j := 0; j < D; j++ {
					dot += float64(y[r+j]) * float64(dy[r+j])
				}
			}
			for j := 0; j < D; j++ {
				dx[r+j] = T((float64(dy[r+j]) - float64(y[r+j])*dot) / n)
			}
		}
	})
}

func (op *l2norm) Do(vs ...G.Value) (G.Value, error) {
	x, err := dense("l2 normalize", 0, vs[0])
	if err != nil {
		return nil, err
	}
	if err := checkRank("l2 normalize", 0, x, 2); err != nil {
		return nil, err
	}
	dt, err := dtypeOf("l2 normalize", x)
	if err != nil {
		return nil, err
	}
	N, D := x.Shape()[0], x.Shape()[1]
	y := op.output(dt, false, N, D)
	switch dt {
	case tensor.Float32:
		l2normKernel(x.Float32s(), y.Float32s(), N, D)
	default:
		l2normKernel(x.Float64s(), y.Float64s(), N, D)
	}
	return y, nil
}

func (op *l2norm) DiffWRT(int) []bool { return []bool{true} }
func (op *l2norm) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&l2normGrad{base: newBase("L2NormalizeGrad")}, in[0], out, grad)
	return G.Nodes{dx}, err
}

// l2normGrad computes dx from (x, y, dy).
type l2normGrad struct{ base }

func (op *l2normGrad) Arity() int    { return 3 }
func (op *l2normGrad) Type() hm.Type { return fnType(2, 2, 2, 2) }
func (op *l2normGrad) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	return ns[0].(tensor.Shape).Clone(), nil
}
func (op *l2normGrad) Do(vs ...G.Value) (G.Value, error) {
	var ds [3]*tensor.Dense
	for i := range ds {
		d, err := dense("l2 normalize grad", i, vs[i])
		if err != nil {
			return nil, err
		}
		if !d.Shape().Eq(vs[0].Shape()) {
			return nil, fmt.Errorf("ops: l2 normalize grad: input %d has shape %v, input 0 has %v", i, d.Shape(), vs[0].Shape())
		}
		ds[i] = d
	}
	dt, err := dtypeOf("l2 normalize grad", ds[:]...)
	if err != nil {
		return nil, err
	}
	N, D := ds[0].Shape()[0], ds[0].Shape()[1]
	dx := op.output(dt, false, N, D)
	switch dt {
	case tensor.Float32:
		l2normGradKernel(ds[0].Float32s(), ds[1].Float32s(), ds[2].Float32s(), dx.Float32s(), N, D)
	default:
		l2normGradKernel(ds[0].Float64s(), ds[1].Float64s(), ds[2].Float64s(), dx.Float64s(), N, D)
	}
	return dx, nil
}
