package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// MaxPool2D takes the maximum over kernel x kernel windows of x [N, C, H, W]
// with the given stride and padding (padded cells never win, as in ONNX
// MaxPool). The gradient goes to the first maximal cell of each window.
func MaxPool2D(x *G.Node, kernel, stride, pad int) (*G.Node, error) {
	return MaxPool2DLayout(x, kernel, stride, pad, NCHW)
}

// MaxPool2DLayout is MaxPool2D on x (and its result and gradients) in
// layout lay.
func MaxPool2DLayout(x *G.Node, kernel, stride, pad int, lay Layout) (*G.Node, error) {
	if x.Dims() != 4 {
		return nil, fmt.Errorf("ops: maxpool: x has shape %v, expected rank 4", x.Shape())
	}
	if pad >= kernel {
		return nil, fmt.Errorf("ops: maxpool: padding %d must be smaller than kernel %d", pad, kernel)
	}
	if err := lay.check("maxpool", x.Shape()[1]); err != nil {
		return nil, err
	}
	return G.ApplyOp(&maxPool{base: newBase("MaxPool2D"), g: ConvGeom{kernel, stride, pad}, lay: lay}, x)
}

type maxPool struct {
	base
	g   ConvGeom
	lay Layout
}

func (op *maxPool) Arity() int    { return 1 }
func (op *maxPool) Type() hm.Type { return fnType(4, 4) }
func (op *maxPool) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	xs := ns[0].(tensor.Shape)
	if len(xs) != 4 {
		return nil, fmt.Errorf("ops: maxpool: shape %v, expected rank 4", xs)
	}
	if err := op.g.check("maxpool", xs[2], xs[3]); err != nil {
		return nil, err
	}
	return tensor.Shape{xs[0], xs[1], op.g.Out(xs[2]), op.g.Out(xs[3])}, nil
}

// maxPoolKernel computes the forward pass (dy == nil) or scatters dy into
// dx at each window's first maximum.
func maxPoolKernel[T Float](x, y, dy, dx []T, xs tensor.Shape, g ConvGeom, lay Layout) {
	N, C, H, W := shape4(xs)
	OH, OW := g.Out(H), g.Out(W)
	if lay == NChw16c {
		maxPoolBlocked(x, y, dy, dx, N, C, H, W, g)
		return
	}
	parallelFor(N*C, func(_, lo, hi int) {
		for bc := lo; bc < hi; bc++ {
			xo, s := lay.plane(bc/C, bc%C, C, H*W)
			yo, _ := lay.plane(bc/C, bc%C, C, OH*OW)
			for oy := 0; oy < OH; oy++ {
				for ox := 0; ox < OW; ox++ {
					best, arg := T(0), -1
					for ky := 0; ky < g.Kernel; ky++ {
						iy := oy*g.Stride - g.Pad + ky
						if iy < 0 || iy >= H {
							continue
						}
						for kx := 0; kx < g.Kernel; kx++ {
							ix := ox*g.Stride - g.Pad + kx
							if ix < 0 || ix >= W {
								continue
							}
							if v := x[xo+(iy*W+ix)*s]; arg < 0 || v > best {
								best, arg = v, iy*W+ix
							}
						}
					}
					o := yo + (oy*OW+ox)*s
					if dy == nil {
						y[o] = best
					} else {
						dx[xo+arg*s] += dy[o]
					}
				}
			}
		}
	})
}

// maxPoolBlocked is maxPoolKernel for NChw16c: the 16 channels of a block
// are contiguous, so each window is scanned once for all of them.
func maxPoolBlocked[T Float](x, y, dy, dx []T, N, C, H, W int, g ConvGeom) {
	OH, OW := g.Out(H), g.Out(W)
	parallelFor(N*C/Block, func(_, lo, hi int) {
		var best [Block]T
		var arg [Block]int
		for nb := lo; nb < hi; nb++ {
			xo, yo := nb*H*W*Block, nb*OH*OW*Block
			for oy := 0; oy < OH; oy++ {
				for ox := 0; ox < OW; ox++ {
					first := true
					for ky := 0; ky < g.Kernel; ky++ {
						iy := oy*g.Stride - g.Pad + ky
						if iy < 0 || iy >= H {
							continue
						}
						for kx := 0; kx < g.Kernel; kx++ {
							ix := ox*g.Stride - g.Pad + kx
							if ix < 0 || ix >= W {
								continue
							}
							p := xo + (iy*W+ix)*Block
							xs := (*[Block]T)(x[p : p+Block])
							switch {
							case first:
								best, first = *xs, false
								for ci := range arg {
									arg[ci] = p + ci
								}
							case dy == nil: // forward: the maxima only
								for ci, v := range xs {
									best[ci] = max(best[ci], v)
								}
							default:
								for ci, v := range xs {
									if v > best[ci] {
										best[ci], arg[ci] = v, p+ci
									}
								}
							}
						}
					}
					o := yo + (oy*OW+ox)*Block
					if dy == nil {
						copy(y[o:o+Block], best[:])
						continue
					}
					for ci, a := range arg {
						dx[a] += dy[o+ci]
					}
				}
			}
		}
	})
}

func (op *maxPool) Do(vs ...G.Value) (G.Value, error) {
	x, err := dense("maxpool", 0, vs[0])
	if err != nil {
		return nil, err
	}
	s, err := op.InferShape(x.Shape())
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("maxpool", x)
	if err != nil {
		return nil, err
	}
	y := op.output(dt, false, s...)
	switch dt {
	case tensor.Float32:
		maxPoolKernel(x.Float32s(), y.Float32s(), nil, nil, x.Shape(), op.g, op.lay)
	default:
		maxPoolKernel(x.Float64s(), y.Float64s(), nil, nil, x.Shape(), op.g, op.lay)
	}
	return y, nil
}

func (op *maxPool) DiffWRT(int) []bool { return []bool{true} }
func (op *maxPool) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&maxPoolGrad{base: newBase("MaxPool2DGrad"), g: op.g, lay: op.lay}, in[0], grad)
	return G.Nodes{dx}, err
}

type maxPoolGrad struct {
	base
	g   ConvGeom
	lay Layout
}

func (op *maxPoolGrad) Arity() int    { return 2 }
func (op *maxPoolGrad) Type() hm.Type { return fnType(4, 4, 4) }
func (op *maxPoolGrad) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	return ns[0].(tensor.Shape).Clone(), nil
}
func (op *maxPoolGrad) Do(vs ...G.Value) (G.Value, error) {
	x, err := dense("maxpool grad", 0, vs[0])
	if err != nil {
		return nil, err
	}
	dy, err := dense("maxpool grad", 1, vs[1])
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("maxpool grad", x, dy)
	if err != nil {
		return nil, err
	}
	dx := op.output(dt, true, x.Shape()...)
	switch dt {
	case tensor.Float32:
		maxPoolKernel(x.Float32s(), nil, dy.Float32s(), dx.Float32s(), x.Shape(), op.g, op.lay)
	default:
		maxPoolKernel(x.Float64s(), nil, dy.Float64s(), dx.Float64s(), x.Shape(), op.g, op.lay)
	}
	return dx, nil
}

// GlobalAvgPool averages each channel of x [N, C, H, W] over its H*W cells
// and flattens: the result is [N, C]. Unlike Gorgonia's stock
// GlobalAveragePool2D it has a gradient: dx = dy/(H*W) broadcast.
func GlobalAvgPool(x *G.Node) (*G.Node, error) {
	return GlobalAvgPoolLayout(x, NCHW)
}

// GlobalAvgPoolLayout is GlobalAvgPool on x (and its gradient) in layout
// lay; the result [N, C] is the same in every layout.
func GlobalAvgPoolLayout(x *G.Node, lay Layout) (*G.Node, error) {
	if x.Dims() != 4 {
		return nil, fmt.Errorf("ops: global average pool: x has shape %v, expected rank 4", x.Shape())
	}
	if err := lay.check("global average pool", x.Shape()[1]); err != nil {
		return nil, err
	}
	return G.ApplyOp(&gap{base: newBase("GlobalAvgPool"), lay: lay}, x)
}

type gap struct {
	base
	lay Layout
}

func (op *gap) Arity() int    { return 1 }
func (op *gap) Type() hm.Type { return fnType(4, 2) }
func (op *gap) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	xs := ns[0].(tensor.Shape)
	if len(xs) != 4 {
		return nil, fmt.Errorf("ops: global average pool: shape %v, expected rank 4", xs)
	}
	return tensor.Shape{xs[0], xs[1]}, nil
}

func gapKernel[T Float](x, y []T, N, C, HW int, lay Layout) {
	for i := 0; i < N*C; i++ {
		o, st := lay.plane(i/C, i%C, C, HW)
		var s float64
		for j := 0; j < HW; j++ {
			s += float64(x[o+j*st])
		}
		y[i] = T(s / float64(HW))
	}
}

func gapGradKernel[T Float](dy, dx []T, N, C, HW int, lay Layout) {
	for i := 0; i < N*C; i++ {
		o, st := lay.plane(i/C, i%C, C, HW)
		g := dy[i] / T(HW)
		for j := 0; j < HW; j++ {
			dx[o+j*st] = g
		}
	}
}

func (op *gap) Do(vs ...G.Value) (G.Value, error) {
	x, err := dense("global average pool", 0, vs[0])
	if err != nil {
		return nil, err
	}
	if err := checkRank("global average pool", 0, x, 4); err != nil {
		return nil, err
	}
	dt, err := dtypeOf("global average pool", x)
	if err != nil {
		return nil, err
	}
	N, C, H, W := shape4(x.Shape())
	y := op.output(dt, false, N, C)
	switch dt {
	case tensor.Float32:
		gapKernel(x.Float32s(), y.Float32s(), N, C, H*W, op.lay)
	default:
		gapKernel(x.Float64s(), y.Float64s(), N, C, H*W, op.lay)
	}
	return y, nil
}

func (op *gap) DiffWRT(int) []bool { return []bool{true} }
func (op *gap) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&gapGrad{base: newBase("GlobalAvgPoolGrad"), xShape: in[0].Shape().Clone(), lay: op.lay}, grad)
	return G.Nodes{dx}, err
}

type gapGrad struct {
	base
	xShape tensor.Shape
	lay    Layout
}

func (op *gapGrad) Arity() int    { return 1 }
func (op *gapGrad) Type() hm.Type { return fnType(2, 4) }
func (op *gapGrad) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.xShape.Clone(), nil
}
func (op *gapGrad) Do(vs ...G.Value) (G.Value, error) {
	dy, err := dense("global average pool grad", 0, vs[0])
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("global average pool grad", dy)
	if err != nil {
		return nil, err
	}
	N, C, H, W := shape4(op.xShape)
	dx := op.output(dt, false, op.xShape...)
	switch dt {
	case tensor.Float32:
		gapGradKernel(dy.Float32s(), dx.Float32s(), N, C, H*W, op.lay)
	default:
		gapGradKernel(dy.Float64s(), dx.Float64s(), N, C, H*W, op.lay)
	}
	return dx, nil
}
