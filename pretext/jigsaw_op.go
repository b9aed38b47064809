package pretext

import (
	"fmt"
	"sync/atomic"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/ops"
)

// rowIndex holds the rows a gatherConcat op reads; the task sets Rows
// before every step (like ops.Labels).
type rowIndex struct {
	Rows []int
}

var gatherSeq atomic.Uint64

// gatherConcat is the Gorgonia op of the context-free network that
// reorders per-tile features and concatenates them: for x [R, D] (or
// [R, d1, d2, ...], each row flattened to D = d1*d2*... values) and
// idx.Rows of length M*K it gives y [M, K*D] with
//
//	y[m, k*D:(k+1)*D] = x[idx.Rows[m*K+k], :]
//
// With K = 1 and the identity index it is a flatten. Its gradient scatters
// back: dx[idx.Rows[m*K+k]] += dy[m, k*D:(k+1)*D] (rows read twice
// accumulate), in x's shape. Works on float32 and float64.
type gatherConcat struct {
	opBase
	idx  *rowIndex
	k    int // blocks per output row
	m    int // output rows
	rank int // of the input
	buf  *tensor.Dense
}

// gatherRows applies gatherConcat to x [R, ...] with output [m, k*D]
// (D: the values of one row of x); idx.Rows must hold m*k entries in
// [0, R) when the graph runs.
func gatherRows(x *G.Node, idx *rowIndex, m, k int) (*G.Node, error) {
	if x.Dims() < 2 {
		return nil, fmt.Errorf("pretext: gather rows: input %v, expected [rows, dim, ...]", x.Shape())
	}
	if m < 1 || k < 1 || len(idx.Rows) != m*k {
		return nil, fmt.Errorf("pretext: gather rows: %d indices for a [%d, %d*dim] output", len(idx.Rows), m, k)
	}
	return G.ApplyOp(&gatherConcat{opBase: opBase{name: "GatherConcat", id: gatherSeq.Add(1)}, idx: idx, k: k, m: m, rank: x.Dims()}, x)
}

// flattenRows reshapes x [R, d1, d2, ...] to [R, d1*d2*...] (a gatherConcat
// with the identity index).
func flattenRows(x *G.Node) (*G.Node, error) {
	r := x.Shape()[0]
	idx := &rowIndex{Rows: make([]int, r)}
	for i := range idx.Rows {
		idx.Rows[i] = i
	}
	return gatherRows(x, idx, r, 1)
}

// rowSize is the number of values in one row of shape s.
func rowSize(s tensor.Shape) int {
	d := 1
	for _, v := range s[1:] {
		d *= v
	}
	return d
}

func (op *gatherConcat) Arity() int { return 1 }
func (op *gatherConcat) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: op.rank, Of: a}, G.TensorType{Dims: 2, Of: a})
}
func (op *gatherConcat) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	s, ok := ns[0].(tensor.Shape)
	if !ok || len(s) != op.rank {
		return nil, fmt.Errorf("pretext: gather rows: input shape %v, expected rank %d", ns[0], op.rank)
	}
	return tensor.Shape{op.m, op.k * rowSize(s)}, nil
}
func (op *gatherConcat) String() string { return fmt.Sprintf("GatherConcat[%dx%d]", op.m, op.k) }

// checkRows verifies the indices against r input rows.
func (op *gatherConcat) checkRows(r int) error {
	if len(op.idx.Rows) != op.m*op.k {
		return fmt.Errorf("pretext: gather rows: %d indices, expected %d", len(op.idx.Rows), op.m*op.k)
	}
	for i, j := range op.idx.Rows {
		if j < 0 || j >= r {
			return fmt.Errorf("pretext: gather rows: index %d is %d, outside [0, %d)", i, j, r)
		}
	}
	return nil
}

func gatherKernel[T float32 | float64](x, y []T, rows []int, d int) {
	for i, j := range rows {
		copy(y[i*d:(i+1)*d], x[j*d:(j+1)*d])
	}
}

func scatterKernel[T float32 | float64](dy, dx []T, rows []int, d int) {
	for i, j := range rows {
		dst, src := dx[j*d:(j+1)*d], dy[i*d:(i+1)*d]
		for c, v := range src {
			dst[c] += v
		}
	}
}

func (op *gatherConcat) Do(vs ...G.Value) (G.Value, error) {
	x, ok := vs[0].(*tensor.Dense)
	if !ok || x.Dims() != op.rank {
		return nil, fmt.Errorf("pretext: gather rows: input is %T %v, expected a dense rank-%d tensor", vs[0], vs[0].Shape(), op.rank)
	}
	r, d := x.Shape()[0], rowSize(x.Shape())
	if err := op.checkRows(r); err != nil {
		return nil, err
	}
	y := ops.Reuse(&op.buf, x.Dtype(), false, op.m, op.k*d)
	if err := floats("gather rows", x.Dtype(),
		func() { gatherKernel(x.Float32s(), y.Float32s(), op.idx.Rows, d) },
		func() { gatherKernel(x.Float64s(), y.Float64s(), op.idx.Rows, d) }); err != nil {
		return nil, err
	}
	return y, nil
}

func (op *gatherConcat) DiffWRT(int) []bool { return []bool{true} }
func (op *gatherConcat) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	n, err := G.ApplyOp(&scatterRows{opBase: opBase{name: "ScatterRows", id: op.id}, fwd: op, shape: in[0].Shape().Clone()}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{n}, nil
}

// scatterRows is gatherConcat's gradient: dy [M, K*D] -> dx in x's shape.
type scatterRows struct {
	opBase
	fwd   *gatherConcat
	shape tensor.Shape
	buf   *tensor.Dense
}

func (op *scatterRows) Arity() int { return 1 }
func (op *scatterRows) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: op.fwd.rank, Of: a})
}
func (op *scatterRows) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.shape.Clone(), nil
}

func (op *scatterRows) Do(vs ...G.Value) (G.Value, error) {
	dy, ok := vs[0].(*tensor.Dense)
	r, d := op.shape[0], rowSize(op.shape)
	if !ok || dy.Dims() != 2 || dy.Shape()[0] != op.fwd.m || dy.Shape()[1] != op.fwd.k*d {
		return nil, fmt.Errorf("pretext: gather rows gradient: got %T %v, expected [%d, %d]", vs[0], vs[0].Shape(), op.fwd.m, op.fwd.k*d)
	}
	if err := op.fwd.checkRows(r); err != nil {
		return nil, err
	}
	dx := ops.Reuse(&op.buf, dy.Dtype(), true, op.shape...)
	if err := floats("gather rows gradient", dy.Dtype(),
		func() { scatterKernel(dy.Float32s(), dx.Float32s(), op.fwd.idx.Rows, d) },
		func() { scatterKernel(dy.Float64s(), dx.Float64s(), op.fwd.idx.Rows, d) }); err != nil {
		return nil, err
	}
	return dx, nil
}
