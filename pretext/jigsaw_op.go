package pretext

import (
	"fmt"
	"hash"
	"hash/fnv"
	"sync/atomic"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// rowIndex holds the rows a gatherConcat op reads; the task sets Rows
// before every step (like ops.Labels).
type rowIndex struct {
	Rows []int
}

var gatherSeq atomic.Uint64

// gatherConcat is the Gorgonia op of the context-free network that
// reorders per-tile features and concatenates them: for x [R, D] and
// idx.Rows of length M*K it gives y [M, K*D] with
//
//	y[m, k*D:(k+1)*D] = x[idx.Rows[m*K+k], :]
//
// Its gradient scatters back: dx[idx.Rows[m*K+k]] += dy[m, k*D:(k+1)*D]
// (rows read twice accumulate). Works on float32 and float64.
type gatherConcat struct {
	id  uint64
	idx *rowIndex
	k   int // blocks per output row
	m   int // output rows
	buf *tensor.Dense
}

// reuse returns *buf when it has dtype dt and the given shape (zeroed when
// zero is set), else a fresh zeroed tensor stored in *buf: as in ops, an op
// instance runs once per pass, so its previous output is dead by the next.
func reuse(buf **tensor.Dense, dt tensor.Dtype, zero bool, shape ...int) *tensor.Dense {
	if d := *buf; d != nil && d.Dtype() == dt && d.Shape().Eq(tensor.Shape(shape)) {
		if zero {
			switch x := d.Data().(type) {
			case []float32:
				clear(x)
			case []float64:
				clear(x)
			}
		}
		return d
	}
	*buf = tensor.New(tensor.WithShape(shape...), tensor.Of(dt))
	return *buf
}

// gatherRows applies gatherConcat to x [R, D] with output [m, k*D]; idx.Rows
// must hold m*k entries in [0, R) when the graph runs.
func gatherRows(x *G.Node, idx *rowIndex, m, k int) (*G.Node, error) {
	if x.Dims() != 2 {
		return nil, fmt.Errorf("pretext: gather rows: input %v, expected [rows, dim]", x.Shape())
	}
	if m < 1 || k < 1 || len(idx.Rows) != m*k {
		return nil, fmt.Errorf("pretext: gather rows: %d indices for a [%d, %d*dim] output", len(idx.Rows), m, k)
	}
	return G.ApplyOp(&gatherConcat{id: gatherSeq.Add(1), idx: idx, k: k, m: m}, x)
}

func (op *gatherConcat) Arity() int { return 1 }
func (op *gatherConcat) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 2, Of: a})
}
func (op *gatherConcat) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	s, ok := ns[0].(tensor.Shape)
	if !ok || len(s) != 2 {
		return nil, fmt.Errorf("pretext: gather rows: input shape %v, expected [rows, dim]", ns[0])
	}
	return tensor.Shape{op.m, op.k * s[1]}, nil
}
func (op *gatherConcat) ReturnsPtr() bool     { return false }
func (op *gatherConcat) CallsExtern() bool    { return false }
func (op *gatherConcat) OverwritesInput() int { return -1 }
func (op *gatherConcat) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "GatherConcat#%d", op.id)
}
func (op *gatherConcat) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
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
	if !ok || x.Dims() != 2 {
		return nil, fmt.Errorf("pretext: gather rows: input is %T %v, expected a dense [rows, dim] tensor", vs[0], vs[0].Shape())
	}
	r, d := x.Shape()[0], x.Shape()[1]
	if err := op.checkRows(r); err != nil {
		return nil, err
	}
	y := reuse(&op.buf, x.Dtype(), false, op.m, op.k*d)
	switch x.Dtype() {
	case tensor.Float32:
		gatherKernel(x.Float32s(), y.Float32s(), op.idx.Rows, d)
	case tensor.Float64:
		gatherKernel(x.Float64s(), y.Float64s(), op.idx.Rows, d)
	default:
		return nil, fmt.Errorf("pretext: gather rows: dtype %v, expected float32 or float64", x.Dtype())
	}
	return y, nil
}

func (op *gatherConcat) DiffWRT(int) []bool { return []bool{true} }
func (op *gatherConcat) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	n, err := G.ApplyOp(&scatterRows{fwd: op, shape: in[0].Shape().Clone()}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{n}, nil
}

// scatterRows is gatherConcat's gradient: dy [M, K*D] -> dx [R, D].
type scatterRows struct {
	fwd   *gatherConcat
	shape tensor.Shape
	buf   *tensor.Dense
}

func (op *scatterRows) Arity() int { return 1 }
func (op *scatterRows) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 2, Of: a})
}
func (op *scatterRows) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.shape.Clone(), nil
}
func (op *scatterRows) ReturnsPtr() bool     { return false }
func (op *scatterRows) CallsExtern() bool    { return false }
func (op *scatterRows) OverwritesInput() int { return -1 }
func (op *scatterRows) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "ScatterRows#%d", op.fwd.id)
}
func (op *scatterRows) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
func (op *scatterRows) String() string { return "ScatterRows" }

func (op *scatterRows) Do(vs ...G.Value) (G.Value, error) {
	dy, ok := vs[0].(*tensor.Dense)
	r, d := op.shape[0], op.shape[1]
	if !ok || dy.Dims() != 2 || dy.Shape()[0] != op.fwd.m || dy.Shape()[1] != op.fwd.k*d {
		return nil, fmt.Errorf("pretext: gather rows gradient: got %T %v, expected [%d, %d]", vs[0], vs[0].Shape(), op.fwd.m, op.fwd.k*d)
	}
	if err := op.fwd.checkRows(r); err != nil {
		return nil, err
	}
	dx := reuse(&op.buf, dy.Dtype(), true, r, d)
	switch dy.Dtype() {
	case tensor.Float32:
		scatterKernel(dy.Float32s(), dx.Float32s(), op.fwd.idx.Rows, d)
	case tensor.Float64:
		scatterKernel(dy.Float64s(), dx.Float64s(), op.fwd.idx.Rows, d)
	default:
		return nil, fmt.Errorf("pretext: gather rows gradient: dtype %v, expected float32 or float64", dy.Dtype())
	}
	return dx, nil
}
