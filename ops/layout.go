package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Layout is how a 4-D activation [N, C, H, W] lies in memory. A node's
// shape is always the logical [N, C, H, W]; its layout is a property of
// the ops that produce and consume it, chosen when the graph is built
// (see models.Backbone).
type Layout uint8

const (
	// NCHW is the plain row-major layout: (n, c, h, w) at ((n*C+c)*H+h)*W+w.
	NCHW Layout = iota
	// NChw16c is oneDNN's blocked layout for AVX-512 kernels: channels in
	// blocks of 16, innermost, so (n, c, h, w) is at
	// (((n*C/16 + c/16)*H + h)*W + w)*16 + c%16. C must be a multiple of
	// 16. Convolutions, batch norm and pooling run on it without the
	// reorders that NCHW costs around every oneDNN call; element-wise ops
	// (ReLU, residual add) do not care.
	NChw16c
	// NHWC is channels-last: (n, c, h, w) at ((n*H+h)*W+w)*C+c, any C.
	// oneDNN's bfloat16 kernels read and write it without reorders (on
	// AMX, oneDNN 3 picks it for them), so models.Backbone keeps
	// activations in it when the convolutions run in bfloat16.
	NHWC
)

// Block is the channel block of NChw16c.
const Block = 16

func (l Layout) String() string {
	switch l {
	case NChw16c:
		return "nChw16c"
	case NHWC:
		return "nhwc"
	}
	return "nchw"
}

// plane returns where channel c of image n starts and the distance
// between its consecutive pixels, for C channels of HW pixels.
func (l Layout) plane(n, c, C, HW int) (start, stride int) {
	switch l {
	case NChw16c:
		return (n*(C/Block)+c/Block)*HW*Block + c%Block, Block
	case NHWC:
		return n*HW*C + c, C
	}
	return (n*C + c) * HW, 1
}

func (l Layout) check(op string, c int) error {
	if l == NChw16c && c%Block != 0 {
		return fmt.Errorf("ops: %s: %d channels cannot be in layout %v (needs a multiple of %d)", op, c, l, Block)
	}
	if l > NHWC {
		return fmt.Errorf("ops: %s: unknown layout %d", op, l)
	}
	return nil
}

// ToLayout converts x [N, C, H, W] from layout from to layout to (a copy;
// the gradient converts back). Converting to the same layout returns x.
func ToLayout(x *G.Node, from, to Layout) (*G.Node, error) {
	if x.Dims() != 4 {
		return nil, fmt.Errorf("ops: to layout: x has shape %v, expected rank 4", x.Shape())
	}
	if from == to {
		return x, nil
	}
	for _, l := range []Layout{from, to} {
		if err := l.check("to layout", x.Shape()[1]); err != nil {
			return nil, err
		}
	}
	return G.ApplyOp(&relayout{base: newBase("To" + to.String()), from: from, to: to}, x)
}

type relayout struct {
	base
	from, to Layout
}

func (op *relayout) Arity() int    { return 1 }
func (op *relayout) Type() hm.Type { return fnType(4, 4) }
func (op *relayout) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	return ns[0].(tensor.Shape).Clone(), nil
}

// relayoutKernel copies x into y, from NCHW to NChw16c or back.
func relayoutKernel[T Float](x, y []T, N, C, HW int, to Layout) {
	parallelFor(N*C/Block, func(_, lo, hi int) {
		for nb := lo; nb < hi; nb++ {
			n, cb := nb/(C/Block), nb%(C/Block)
			blk := nb * HW * Block // the block in nChw16c
			pl := (n*C + cb*Block) * HW
			for ci := 0; ci < Block; ci++ {
				p := pl + ci*HW
				if to == NChw16c {
					for i := 0; i < HW; i++ {
						y[blk+i*Block+ci] = x[p+i]
					}
				} else {
					for i := 0; i < HW; i++ {
						y[p+i] = x[blk+i*Block+ci]
					}
				}
			}
		}
	})
}

func (op *relayout) Do(vs ...G.Value) (G.Value, error) {
	x, err := dense(op.name, 0, vs[0])
	if err != nil {
		return nil, err
	}
	if err := checkRank(op.name, 0, x, 4); err != nil {
		return nil, err
	}
	dt, err := dtypeOf(op.name, x)
	if err != nil {
		return nil, err
	}
	N, C, H, W := shape4(x.Shape())
	if err := op.to.check(op.name, C); err != nil {
		return nil, err
	}
	y := op.output(dt, false, N, C, H, W)
	// NCHW <-> nChw16c has a kernel of its own; every other pair copies
	// plane by plane.
	blockedPair := op.from == NCHW && op.to == NChw16c || op.from == NChw16c && op.to == NCHW
	switch {
	case dt == tensor.Float32 && blockedPair:
		relayoutKernel(x.Float32s(), y.Float32s(), N, C, H*W, op.to)
	case dt == tensor.Float32:
		relayoutPlanes(x.Float32s(), y.Float32s(), N, C, H*W, op.from, op.to)
	case blockedPair:
		relayoutKernel(x.Float64s(), y.Float64s(), N, C, H*W, op.to)
	default:
		relayoutPlanes(x.Float64s(), y.Float64s(), N, C, H*W, op.from, op.to)
	}
	return y, nil
}

// relayoutPlanes copies x in layout from into y in layout to, one channel
// plane at a time.
func relayoutPlanes[T Float](x, y []T, N, C, HW int, from, to Layout) {
	parallelFor(N*C, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			xo, xs := from.plane(i/C, i%C, C, HW)
			yo, ys := to.plane(i/C, i%C, C, HW)
			for p := 0; p < HW; p++ {
				y[yo+p*ys] = x[xo+p*xs]
			}
		}
	})
}

func (op *relayout) DiffWRT(int) []bool { return []bool{true} }
func (op *relayout) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&relayout{base: newBase("To" + op.from.String()), from: op.to, to: op.from}, grad)
	return G.Nodes{dx}, err
}
