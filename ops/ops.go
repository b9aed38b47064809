// Package ops holds the Gorgonia operations that selfsup's networks are
// built from: 2-D convolution, batch normalisation, max and global average
// pooling, ReLU, linear layers and softmax cross-entropy, each with its
// gradient as further ops so that gorgonia.Grad can differentiate graphs
// made of them.
//
// Stock Gorgonia v0.9.18 has silently wrong multi-axis reductions, an
// average pool that divides by the wrong count and a global average pool
// without gradient (see design.md); the ops here replace them. Every op
// works on float32 and float64 tensors in [batch, channels, height, width]
// layout (NCHW); float64 exists so that gradient tests against central
// finite differences are precise.
//
// ops knows no architecture and no task.
package ops

import (
	"fmt"
	"hash"
	"hash/fnv"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Float is the element type kernels are generic over.
type Float interface{ float32 | float64 }

var opSeq atomic.Uint64

// base carries what every op here shares: a name for printing and a unique
// id that goes into the hash, so that Gorgonia never merges two op
// instances (some hold per-instance state such as running statistics).
type base struct {
	name string
	id   uint64
	// buf is the op's output from the previous run, reused when the next
	// run's output has the same dtype and shape: after the first training
	// step the ops allocate nothing. An op instance belongs to one graph
	// node and runs once per pass, so by the next pass the old value is dead.
	buf *tensor.Dense
	// strm is the Stream the op's oneDNN calls run on (nil: the default),
	// the one being built on when the op was made (OnStream).
	strm *dnnlState
}

// output returns a dense tensor for this run's result: the previous
// buffer when it fits (zeroed when zero is set, for kernels that
// accumulate), else a fresh zeroed one.
func (b *base) output(dt tensor.Dtype, zero bool, shape ...int) *tensor.Dense {
	return Reuse(&b.buf, dt, zero, shape...)
}

// Reuse returns *buf when it has dtype dt and the given shape (zeroed
// when zero is set), else a fresh zeroed tensor that it stores in *buf:
// an op's output buffer, for ops (here and in other packages) whose
// instance runs once per pass, so that its previous output is dead by
// the next.
func Reuse(buf **tensor.Dense, dt tensor.Dtype, zero bool, shape ...int) *tensor.Dense {
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
	*buf = newDense(dt, shape...)
	return *buf
}

func newBase(name string) base { return base{name: name, id: opSeq.Add(1), strm: building()} }

func (b base) ReturnsPtr() bool     { return false }
func (b base) CallsExtern() bool    { return false }
func (b base) OverwritesInput() int { return -1 }
func (b base) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "%s#%d", b.name, b.id)
}
func (b base) Hashcode() uint32 {
	h := fnv.New32a()
	b.WriteHash(h)
	return h.Sum32()
}
func (b base) String() string { return b.name }

// fnType builds the Hindley-Milner type of an op whose inputs and output
// are tensors of the given ranks over one element type; rank 0 is a scalar.
func fnType(ranks ...int) hm.Type {
	a := hm.TypeVariable('a')
	ts := make([]hm.Type, len(ranks))
	for i, r := range ranks {
		if r == 0 {
			ts[i] = a
		} else {
			ts[i] = G.TensorType{Dims: r, Of: a}
		}
	}
	return hm.NewFnType(ts...)
}

// dense returns v as a *tensor.Dense or an error naming the op and input.
func dense(op string, i int, v G.Value) (*tensor.Dense, error) {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("ops: %s: input %d is %T, expected a dense tensor", op, i, v)
	}
	return d, nil
}

// ScalarValue reads a scalar (a loss, or the gradient seed a loss op's
// backward pass receives), whatever form Gorgonia gives it in (a float or
// a one-value slice); op names the op in the error.
func ScalarValue(op string, v G.Value) (float64, error) {
	switch x := v.Data().(type) {
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	case []float32:
		if len(x) == 1 {
			return float64(x[0]), nil
		}
	case []float64:
		if len(x) == 1 {
			return x[0], nil
		}
	}
	return 0, fmt.Errorf("ops: %s: expected a scalar, got %T", op, v.Data())
}

// newLike allocates a zeroed dense tensor of dtype dt and the given shape.
func newDense(dt tensor.Dtype, shape ...int) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.Of(dt))
}

func checkRank(op string, i int, d *tensor.Dense, rank int) error {
	if d.Dims() != rank {
		return fmt.Errorf("ops: %s: input %d has shape %v, expected rank %d", op, i, d.Shape(), rank)
	}
	return nil
}

// shape4 returns the four dims of an NCHW shape.
func shape4(s tensor.Shape) (int, int, int, int) { return s[0], s[1], s[2], s[3] }

// parallelFor runs f(lo, hi) over [0, n) split into at most GOMAXPROCS
// contiguous chunks. The split depends only on n and GOMAXPROCS, so
// reductions done per chunk and summed in chunk order are deterministic.
func parallelFor(n int, f func(worker, lo, hi int)) {
	w := Workers(n)
	if w <= 1 {
		f(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for k := 0; k < w; k++ {
		lo, hi := k*n/w, (k+1)*n/w
		wg.Add(1)
		go func(k, lo, hi int) {
			defer wg.Done()
			f(k, lo, hi)
		}(k, lo, hi)
	}
	wg.Wait()
}

// ParallelFor splits [0, n) into Workers(n) chunks and runs f on each at
// once (worker is the chunk's index), for element-wise work outside ops.
func ParallelFor(n int, f func(worker, lo, hi int)) { parallelFor(n, f) }

// Workers is the number of chunks parallelFor uses for n items: one per
// core (GOMAXPROCS) at most, and 1 inside Concurrently.
func Workers(n int) int {
	if concurrent.Load() > 0 {
		return 1
	}
	w := runtime.GOMAXPROCS(0)
	if w > n {
		w = n
	}
	if w < 1 {
		w = 1
	}
	return w
}

// dtypeOf checks that all inputs share one float dtype.
func dtypeOf(op string, ds ...*tensor.Dense) (tensor.Dtype, error) {
	dt := ds[0].Dtype()
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return dt, fmt.Errorf("ops: %s: dtype %v, expected float32 or float64", op, dt)
	}
	for i, d := range ds[1:] {
		if d.Dtype() != dt {
			return dt, fmt.Errorf("ops: %s: input %d has dtype %v, input 0 has %v", op, i+1, d.Dtype(), dt)
		}
	}
	return dt, nil
}
