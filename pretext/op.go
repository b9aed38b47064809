package pretext

import (
	"fmt"
	"hash"
	"hash/fnv"
	"sync/atomic"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/ops"
)

// opBase is the part of the Gorgonia op interface that the ops of this
// package share: a name for printing and hashing and an id that goes into
// the hash, so that Gorgonia never merges two op instances (each reads its
// own target or index). A gradient op carries its forward op's id.
type opBase struct {
	name string
	id   uint64
}

func (b opBase) ReturnsPtr() bool      { return false }
func (b opBase) CallsExtern() bool     { return false }
func (b opBase) OverwritesInput() int  { return -1 }
func (b opBase) WriteHash(h hash.Hash) { fmt.Fprintf(h, "%s#%d", b.name, b.id) }
func (b opBase) Hashcode() uint32 {
	h := fnv.New32a()
	b.WriteHash(h)
	return h.Sum32()
}
func (b opBase) String() string { return b.name }

// floats runs f32 or f64 by dt, the dtype of an op's input; any other
// dtype is an error naming the op (what).
func floats(what string, dt tensor.Dtype, f32, f64 func()) error {
	switch dt {
	case tensor.Float32:
		f32()
	case tensor.Float64:
		f64()
	default:
		return fmt.Errorf("pretext: %s: dtype %v, expected float32 or float64", what, dt)
	}
	return nil
}

var lossSeq atomic.Uint64

// lossKernel is the math of a pretext loss over an input x [N, C, H, W]
// of float32 or float64 values (sums in float64); what names the loss in
// errors ("colorization loss", "... gradient").
type lossKernel interface {
	// forward checks x against the loss's target and returns the loss;
	// it may write the target's statistics.
	forward(what string, x *tensor.Dense) (float64, error)
	// backward checks x and returns dL/dx in x's shape, scaled by the
	// upstream gradient seed, in a tensor from ops.Reuse(buf, ...).
	backward(what string, x *tensor.Dense, seed float64, buf **tensor.Dense) (*tensor.Dense, error)
}

// lossOp is a pretext loss as a Gorgonia op: x [N, C, H, W] -> a scalar
// of x's dtype, differentiable in x through lossGrad (named name+"Grad").
// It holds the op plumbing; its kernel holds the math.
type lossOp struct {
	opBase
	label string // printed instead of name when set
	what  string // the loss in errors: "colorization loss"
	input string // x in errors, with its verb: "logits are"
	k     lossKernel
}

// applyLoss applies the loss of kernel k to x [N, C, H, W]; name, label,
// what and input are as in lossOp.
func applyLoss(x *G.Node, k lossKernel, name, label, what, input string) (*G.Node, error) {
	op := &lossOp{opBase: opBase{name: name, id: lossSeq.Add(1)}, label: label, what: what, input: input, k: k}
	return G.ApplyOp(op, x)
}

func (op *lossOp) Arity() int { return 1 }
func (op *lossOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 4, Of: a}, a)
}
func (op *lossOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }
func (op *lossOp) String() string {
	if op.label != "" {
		return op.label
	}
	return op.name
}

// dense returns v, the op's input x, as a dense tensor; what names the op.
func (op *lossOp) dense(what string, v G.Value) (*tensor.Dense, error) {
	x, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("pretext: %s: %s %T, expected a dense tensor", what, op.input, v)
	}
	return x, nil
}

func (op *lossOp) Do(vs ...G.Value) (G.Value, error) {
	x, err := op.dense(op.what, vs[0])
	if err != nil {
		return nil, err
	}
	loss, err := op.k.forward(op.what, x)
	if err != nil {
		return nil, err
	}
	if x.Dtype() == tensor.Float32 {
		return G.NewF32(float32(loss)), nil
	}
	return G.NewF64(loss), nil
}

func (op *lossOp) DiffWRT(int) []bool { return []bool{true} }
func (op *lossOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&lossGrad{opBase: opBase{name: op.name + "Grad", id: op.id}, fwd: op}, in[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// lossGrad computes dL/dx [N, C, H, W] of a lossOp from (x, dL).
type lossGrad struct {
	opBase
	fwd *lossOp
	buf *tensor.Dense
}

func (op *lossGrad) Arity() int { return 2 }
func (op *lossGrad) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 4, Of: a}, a, G.TensorType{Dims: 4, Of: a})
}
func (op *lossGrad) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	s, ok := ns[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("pretext: %s gradient: input shape %v", op.fwd.what, ns[0])
	}
	return s.Clone(), nil
}

func (op *lossGrad) Do(vs ...G.Value) (G.Value, error) {
	what := op.fwd.what + " gradient"
	x, err := op.fwd.dense(what, vs[0])
	if err != nil {
		return nil, err
	}
	seed, err := ops.ScalarValue(what, vs[1])
	if err != nil {
		return nil, err
	}
	dx, err := op.fwd.k.backward(what, x, seed, &op.buf)
	if err != nil {
		return nil, err
	}
	return dx, nil
}
