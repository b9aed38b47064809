package ops

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ReLU is max(x, 0) element-wise on a tensor of any rank. Its gradient
// passes dy where the output is positive.
func ReLU(x *G.Node) (*G.Node, error) {
	return G.ApplyOp(&relu{base: newBase("ReLU"), rank: x.Dims()}, x)
}

type relu struct {
	base
	rank int
}

func (op *relu) Arity() int    { return 1 }
func (op *relu) Type() hm.Type { return fnType(op.rank, op.rank) }
func (op *relu) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	return ns[0].(tensor.Shape).Clone(), nil
}

// reluKernel and reluGradKernel avoid data-dependent branches in the
// float32 path (bit masks on the IEEE representation): on activations
// whose sign is a coin toss a branch mispredicts half the time.
func reluKernel[T Float](x, y []T) {
	if x32, ok := any(x).([]float32); ok {
		y32 := any(y).([]float32)
		parallelFor(len(x32), func(_, lo, hi int) {
			xs, ys := x32[lo:hi], y32[lo:hi]
			for i, v := range xs {
				b := math.Float32bits(v)
				ys[i] = math.Float32frombits(b &^ uint32(int32(b)>>31)) // negative (sign set) -> +0
			}
		})
		return
	}
	parallelFor(len(x), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			if v := x[i]; v > 0 {
				y[i] = v
			} else {
				y[i] = 0
			}
		}
	})
}

func reluGradKernel[T Float](y, dy, dx []T) {
	if y32, ok := any(y).([]float32); ok {
		dy32, dx32 := any(dy).([]float32), any(dx).([]float32)
		parallelFor(len(y32), func(_, lo, hi int) {
			ys, ds, gs := y32[lo:hi], dy32[lo:hi], dx32[lo:hi]
			for i, v := range ys {
				// y is a ReLU output, so y > 0 exactly when its bits are not
				// zero; m is all ones then and zero otherwise.
				b := math.Float32bits(v)
				m := uint32(int32(b|-b) >> 31)
				gs[i] = math.Float32frombits(math.Float32bits(ds[i]) & m)
			}
		})
		return
	}
	parallelFor(len(y), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			if y[i] > 0 {
				dx[i] = dy[i]
			} else {
				dx[i] = 0
			}
		}
	})
}

func (op *relu) Do(vs ...G.Value) (G.Value, error) {
	x, err := dense("relu", 0, vs[0])
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("relu", x)
	if err != nil {
		return nil, err
	}
	y := op.output(dt, false, x.Shape()...)
	switch dt {
	case tensor.Float32:
		reluKernel(x.Float32s(), y.Float32s())
	default:
		reluKernel(x.Float64s(), y.Float64s())
	}
	return y, nil
}

func (op *relu) DiffWRT(int) []bool { return []bool{true} }
func (op *relu) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&reluGrad{base: newBase("ReLUGrad"), rank: op.rank}, out, grad)
	return G.Nodes{dx}, err
}

type reluGrad struct {
	base
	rank int
}

func (op *reluGrad) Arity() int    { return 2 }
func (op *reluGrad) Type() hm.Type { return fnType(op.rank, op.rank, op.rank) }
func (op *reluGrad) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	return ns[0].(tensor.Shape).Clone(), nil
}
func (op *reluGrad) Do(vs ...G.Value) (G.Value, error) {
	y, err := dense("relu grad", 0, vs[0])
	if err != nil {
		return nil, err
	}
	dy, err := dense("relu grad", 1, vs[1])
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("relu grad", y, dy)
	if err != nil {
		return nil, err
	}
	dx := op.output(dt, false, y.Shape()...)
	switch dt {
	case tensor.Float32:
		reluGradKernel(y.Float32s(), dy.Float32s(), dx.Float32s())
	default:
		reluGradKernel(y.Float64s(), dy.Float64s(), dx.Float64s())
	}
	return dx, nil
}

// Linear is a fully connected layer: x [N, D], w [K, D] (PyTorch's
// out-by-in layout), b [K] give y = x*w^T + b, [N, K].
func Linear(x, w, b *G.Node) (*G.Node, error) {
	if x.Dims() != 2 || w.Dims() != 2 || b.Dims() != 1 {
		return nil, fmt.Errorf("ops: linear: x %v, w %v, b %v: expected ranks 2, 2, 1", x.Shape(), w.Shape(), b.Shape())
	}
	return G.ApplyOp(&linear{base: newBase("Linear")}, x, w, b)
}

type linear struct{ base }

func (op *linear) Arity() int    { return 3 }
func (op *linear) Type() hm.Type { return fnType(2, 2, 1, 2) }
func (op *linear) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	xs, ws, bs := ns[0].(tensor.Shape), ns[1].(tensor.Shape), ns[2].(tensor.Shape)
	if len(xs) != 2 || len(ws) != 2 || xs[1] != ws[1] || bs.TotalSize() != ws[0] {
		return nil, fmt.Errorf("ops: linear: x %v, w %v, b %v do not fit [N,D], [K,D], [K]", xs, ws, bs)
	}
	return tensor.Shape{xs[0], ws[0]}, nil
}

func linearKernel[T Float](x, w, b, y []T, N, D, K int) {
	for i := 0; i < N; i++ {
		copy(y[i*K:(i+1)*K], b)
	}
	gemm(false, true, N, K, D, 1, x, D, w, D, 1, y, K)
}

func (op *linear) Do(vs ...G.Value) (G.Value, error) {
	var ds [3]*tensor.Dense
	for i := range ds {
		d, err := dense("linear", i, vs[i])
		if err != nil {
			return nil, err
		}
		ds[i] = d
	}
	s, err := op.InferShape(ds[0].Shape(), ds[1].Shape(), ds[2].Shape())
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("linear", ds[:]...)
	if err != nil {
		return nil, err
	}
	y := op.output(dt, false, s...)
	N, D, K := s[0], ds[0].Shape()[1], s[1]
	switch dt {
	case tensor.Float32:
		linearKernel(ds[0].Float32s(), ds[1].Float32s(), ds[2].Float32s(), y.Float32s(), N, D, K)
	default:
		linearKernel(ds[0].Float64s(), ds[1].Float64s(), ds[2].Float64s(), y.Float64s(), N, D, K)
	}
	return y, nil
}

func (op *linear) DiffWRT(int) []bool { return []bool{true, true, true} }
func (op *linear) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	var res G.Nodes
	for which := 0; which < 3; which++ {
		n, err := G.ApplyOp(&linearGrad{base: newBase(fmt.Sprintf("LinearGrad%d", which)), which: which}, in[0], in[1], grad)
		if err != nil {
			return nil, err
		}
		res = append(res, n)
	}
	return res, nil
}

// linearGrad computes dx = dy*w (which 0), dw = dy^T*x (1) or db = sum dy (2)
// from (x, w, dy).
type linearGrad struct {
	base
	which int
}

func (op *linearGrad) Arity() int { return 3 }
func (op *linearGrad) Type() hm.Type {
	if op.which == 2 {
		return fnType(2, 2, 2, 1)
	}
	return fnType(2, 2, 2, 2)
}
func (op *linearGrad) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	switch op.which {
	case 0:
		return ns[0].(tensor.Shape).Clone(), nil
	case 1:
		return ns[1].(tensor.Shape).Clone(), nil
	}
	return tensor.Shape{ns[1].(tensor.Shape)[0]}, nil
}

func linearGradKernel[T Float](which int, x, w, dy, out []T, N, D, K int) {
	switch which {
	case 0:
		gemm(false, false, N, D, K, 1, dy, K, w, D, 0, out, D)
	case 1:
		gemm(true, false, K, D, N, 1, dy, K, x, D, 0, out, D)
	default:
		for i := 0; i < N; i++ {
			for k, v := range dy[i*K : (i+1)*K] {
				out[k] += v
			}
		}
	}
}

func (op *linearGrad) Do(vs ...G.Value) (G.Value, error) {
	var ds [3]*tensor.Dense
	for i := range ds {
		d, err := dense("linear grad", i, vs[i])
		if err != nil {
			return nil, err
		}
		ds[i] = d
	}
	dt, err := dtypeOf("linear grad", ds[:]...)
	if err != nil {
		return nil, err
	}
	s, _ := op.InferShape(ds[0].Shape(), ds[1].Shape())
	out := op.output(dt, true, s...)
	N, D, K := ds[0].Shape()[0], ds[0].Shape()[1], ds[1].Shape()[0]
	switch dt {
	case tensor.Float32:
		linearGradKernel(op.which, ds[0].Float32s(), ds[1].Float32s(), ds[2].Float32s(), out.Float32s(), N, D, K)
	default:
		linearGradKernel(op.which, ds[0].Float64s(), ds[1].Float64s(), ds[2].Float64s(), out.Float64s(), N, D, K)
	}
	return out, nil
}

// Labels holds the integer targets of the current batch for
// SoftmaxCrossEntropy; the training loop sets Y before every step. The
// forward pass writes the predicted class of every row (argmax of the
// logits, first on ties) into Pred, so callers need not read the logits
// node after the graph has run (Gorgonia may reuse its memory by then).
type Labels struct {
	Y    []int
	Pred []int
	// Rank is, per row, how many classes scored strictly above the target
	// (0 means a top-1 hit; below 5 a top-5 hit).
	Rank []int
}

// SoftmaxCrossEntropy is the mean over the batch of -log softmax(logits)[y]
// for logits [N, K] and targets labels.Y (len N, each in [0, K)). The
// gradient w.r.t. the logits is (softmax - onehot(y))/N. Computed with the
// log-sum-exp shift, so large logits do not overflow.
func SoftmaxCrossEntropy(logits *G.Node, labels *Labels) (*G.Node, error) {
	if logits.Dims() != 2 {
		return nil, fmt.Errorf("ops: softmax cross-entropy: logits %v, expected [N, K]", logits.Shape())
	}
	return G.ApplyOp(&softmaxCE{base: newBase("SoftmaxCE"), labels: labels}, logits)
}

type softmaxCE struct {
	base
	labels *Labels
}

func (op *softmaxCE) Arity() int    { return 1 }
func (op *softmaxCE) Type() hm.Type { return fnType(2, 0) }
func (op *softmaxCE) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}

func (op *softmaxCE) check(x *tensor.Dense) (int, int, error) {
	N, K := x.Shape()[0], x.Shape()[1]
	if len(op.labels.Y) != N {
		return 0, 0, fmt.Errorf("ops: softmax cross-entropy: %d labels for %d rows", len(op.labels.Y), N)
	}
	for i, y := range op.labels.Y {
		if y < 0 || y >= K {
			return 0, 0, fmt.Errorf("ops: softmax cross-entropy: label %d of row %d outside [0, %d)", y, i, K)
		}
	}
	return N, K, nil
}

// softmaxRows writes softmax(x) row-wise into p (float64) and returns the
// mean cross-entropy.
func softmaxRows[T Float](x []T, y []int, N, K int, p []float64) float64 {
	var loss float64
	for i := 0; i < N; i++ {
		row := x[i*K : (i+1)*K]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, float64(v))
		}
		var s float64
		for k, v := range row {
			e := math.Exp(float64(v) - m)
			p[i*K+k] = e
			s += e
		}
		for k := range row {
			p[i*K+k] /= s
		}
		loss += -(float64(row[y[i]]) - m - math.Log(s))
	}
	return loss / float64(N)
}

func (op *softmaxCE) Do(vs ...G.Value) (G.Value, error) {
	x, err := dense("softmax cross-entropy", 0, vs[0])
	if err != nil {
		return nil, err
	}
	N, K, err := op.check(x)
	if err != nil {
		return nil, err
	}
	p := make([]float64, N*K)
	var loss float64
	switch x.Dtype() {
	case tensor.Float32:
		loss = softmaxRows(x.Float32s(), op.labels.Y, N, K, p)
	case tensor.Float64:
		loss = softmaxRows(x.Float64s(), op.labels.Y, N, K, p)
	default:
		return nil, fmt.Errorf("ops: softmax cross-entropy: dtype %v, expected float32 or float64", x.Dtype())
	}
	if len(op.labels.Pred) != N {
		op.labels.Pred, op.labels.Rank = make([]int, N), make([]int, N)
	}
	for i := 0; i < N; i++ {
		best, rank := 0, 0
		pt := p[i*K+op.labels.Y[i]]
		for k := 0; k < K; k++ {
			if p[i*K+k] > p[i*K+best] {
				best = k
			}
			if p[i*K+k] > pt {
				rank++
			}
		}
		op.labels.Pred[i], op.labels.Rank[i] = best, rank
	}
	if x.Dtype() == tensor.Float32 {
		return G.NewF32(float32(loss)), nil
	}
	return G.NewF64(loss), nil
}

func (op *softmaxCE) DiffWRT(int) []bool { return []bool{true} }
func (op *softmaxCE) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&softmaxCEGrad{base: newBase("SoftmaxCEGrad"), fwd: op}, in[0], grad)
	return G.Nodes{dx}, err
}

type softmaxCEGrad struct {
	base
	fwd *softmaxCE
}

func (op *softmaxCEGrad) Arity() int    { return 2 }
func (op *softmaxCEGrad) Type() hm.Type { return fnType(2, 0, 2) }
func (op *softmaxCEGrad) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	return ns[0].(tensor.Shape).Clone(), nil
}

func ceGrad[T Float](x, dx []T, y []int, N, K int, seed float64) {
	p := make([]float64, N*K)
	softmaxRows(x, y, N, K, p)
	for i := 0; i < N; i++ {
		p[i*K+y[i]] -= 1
	}
	for i, v := range p {
		dx[i] = T(v * seed / float64(N))
	}
}

func (op *softmaxCEGrad) Do(vs ...G.Value) (G.Value, error) {
	x, err := dense("softmax cross-entropy grad", 0, vs[0])
	if err != nil {
		return nil, err
	}
	seed, err := ScalarValue("softmax cross-entropy grad", vs[1])
	if err != nil {
		return nil, err
	}
	N, K, err := op.fwd.check(x)
	if err != nil {
		return nil, err
	}
	dx := op.output(x.Dtype(), false, N, K)
	switch x.Dtype() {
	case tensor.Float32:
		ceGrad(x.Float32s(), dx.Float32s(), op.fwd.labels.Y, N, K, seed)
	default:
		ceGrad(x.Float64s(), dx.Float64s(), op.fwd.labels.Y, N, K, seed)
	}
	return dx, nil
}
