package ops

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Softmax normalises x along axis (negative counts from the end) so that
// each slice sums to one: exp(x - max) / sum exp(x - max), as ONNX
// Softmax-13. Its gradient is dx = y*(dy - sum(dy*y)) along the axis.
func Softmax(x *G.Node, axis int) (*G.Node, error) { return softmaxNode(x, axis, false) }

// LogSoftmax is log(Softmax(x, axis)) computed as x - max - log sum
// exp(x - max) (ONNX LogSoftmax-13). Gradient: dx = dy - softmax*sum(dy).
func LogSoftmax(x *G.Node, axis int) (*G.Node, error) { return softmaxNode(x, axis, true) }

func softmaxNode(x *G.Node, axis int, log bool) (*G.Node, error) {
	r := x.Dims()
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis >= r {
		return nil, fmt.Errorf("ops: softmax: axis out of range for shape %v", x.Shape())
	}
	name := "Softmax"
	if log {
		name = "LogSoftmax"
	}
	return G.ApplyOp(&softmax{base: newBase(name), axis: axis, log: log, rank: r}, x)
}

type softmax struct {
	base
	axis, rank int
	log        bool
}

func (op *softmax) Arity() int    { return 1 }
func (op *softmax) Type() hm.Type { return fnType(op.rank, op.rank) }
func (op *softmax) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	return ns[0].(tensor.Shape).Clone(), nil
}

// split returns the sizes before, along and after the axis.
func split(s tensor.Shape, axis int) (outer, n, inner int) {
	outer, inner = 1, 1
	for i, d := range s {
		switch {
		case i < axis:
			outer *= d
		case i > axis:
			inner *= d
		}
	}
	return outer, s[axis], inner
}

func softmaxKernel[T Float](x, y []T, outer, n, inner int, log bool) {
	for o := 0; o < outer; o++ {
		for in := 0; in < inner; in++ {
			base := o*n*inner + in
			m := math.Inf(-1)
			for j := 0; j < n; j++ {
				m = math.Max(m, float64(x[base+j*inner]))
			}
			var s float64
			for j := 0; j < n; j++ {
				s += math.Exp(float64(x[base+j*inner]) - m)
			}
			ls := math.Log(s)
			for j := 0; j < n; j++ {
				v := float64(x[base+j*inner]) - m
				if log {
					y[base+j*inner] = T(v - ls)
				} else {
					y[base+j*inner] = T(math.Exp(v) / s)
				}
			}
		}
	}
}

func (op *softmax) Do(vs ...G.Value) (G.Value, error) {
	x, err := dense(op.name, 0, vs[0])
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf(op.name, x)
	if err != nil {
		return nil, err
	}
	outer, n, inner := split(x.Shape(), op.axis)
	y := op.output(dt, false, x.Shape()...)
	switch dt {
	case tensor.Float32:
		softmaxKernel(x.Float32s(), y.Float32s(), outer, n, inner, op.log)
	default:
		softmaxKernel(x.Float64s(), y.Float64s(), outer, n, inner, op.log)
	}
	return y, nil
}

func (op *softmax) DiffWRT(int) []bool { return []bool{true} }
func (op *softmax) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&softmaxGrad{base: newBase(op.name + "Grad"), fwd: op}, out, grad)
	return G.Nodes{dx}, err
}

// softmaxGrad computes dx from (y, dy), y the forward output.
type softmaxGrad struct {
	base
	fwd *softmax
}

func (op *softmaxGrad) Arity() int    { return 2 }
func (op *softmaxGrad) Type() hm.Type { return fnType(op.fwd.rank, op.fwd.rank, op.fwd.rank) }
func (op *softmaxGrad) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	return ns[0].(tensor.Shape).Clone(), nil
}

func softmaxGradKernel[T Float](y, dy, dx []T, outer, n, inner int, log bool) {
	for o := 0; o < outer; o++ {
		for in := 0; in < inner; in++ {
			base := o*n*inner + in
			var s float64
			for j := 0; j < n; j++ {
				k := base + j*inner
				if log {
					s += float64(dy[k])
				} else {
					s += float64(dy[k]) * float64(y[k])
				}
			}
			for j := 0; j < n; j++ {
				k := base + j*inner
				if log {
					dx[k] = T(float64(dy[k]) - math.Exp(float64(y[k]))*s)
				} else {
					dx[k] = T(float64(y[k]) * (float64(dy[k]) - s))
				}
			}
		}
	}
}

func (op *softmaxGrad) Do(vs ...G.Value) (G.Value, error) {
	y, err := dense(op.name, 0, vs[0])
	if err != nil {
		return nil, err
	}
	dy, err := dense(op.name, 1, vs[1])
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf(op.name, y, dy)
	if err != nil {
		return nil, err
	}
	outer, n, inner := split(y.Shape(), op.fwd.axis)
	dx := op.output(dt, false, y.Shape()...)
	switch dt {
	case tensor.Float32:
		softmaxGradKernel(y.Float32s(), dy.Float32s(), dx.Float32s(), outer, n, inner, op.fwd.log)
	default:
		softmaxGradKernel(y.Float64s(), dy.Float64s(), dx.Float64s(), outer, n, inner, op.fwd.log)
	}
	return dx, nil
}
