package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ConvGeom is the geometry of a square-kernel 2-D convolution or pooling
// window: kernel size, stride and symmetric zero padding.
type ConvGeom struct {
	Kernel, Stride, Pad int
}

// Out returns the output size for an input of size in.
func (g ConvGeom) Out(in int) int { return (in+2*g.Pad-g.Kernel)/g.Stride + 1 }

func (g ConvGeom) check(op string, h, w int) error {
	if g.Kernel < 1 || g.Stride < 1 || g.Pad < 0 {
		return fmt.Errorf("ops: %s: invalid geometry kernel %d stride %d pad %d", op, g.Kernel, g.Stride, g.Pad)
	}
	// h + 2*pad < kernel must be caught before dividing: Go's division
	// truncates toward zero, so Out would give 1 for, say, h 2, kernel 3,
	// stride 2.
	if h+2*g.Pad < g.Kernel || w+2*g.Pad < g.Kernel || g.Out(h) < 1 || g.Out(w) < 1 {
		return fmt.Errorf("ops: %s: input %dx%d too small for kernel %d stride %d pad %d", op, h, w, g.Kernel, g.Stride, g.Pad)
	}
	return nil
}

// Conv2D applies a 2-D convolution without bias: x [N, C, H, W] with
// weights w [O, C, K, K] gives [N, O, OH, OW], OH = (H + 2*pad - K)/stride + 1.
// Dilation 1, one group. The gradient is defined for x and w.
func Conv2D(x, w *G.Node, stride, pad int) (*G.Node, error) {
	return Conv2DLayout(x, w, stride, pad, NCHW, NCHW)
}

// Conv2DLayout is Conv2D with x (and its gradient) in layout in and the
// result (and its gradient) in layout out; the blocked layout NChw16c
// needs float32 and the oneDNN build (see BlockedLayout). Weights are
// always [O, C, K, K].
func Conv2DLayout(x, w *G.Node, stride, pad int, in, out Layout) (*G.Node, error) {
	if x.Dims() != 4 || w.Dims() != 4 {
		return nil, fmt.Errorf("ops: conv2d: x %v and w %v must both be rank 4", x.Shape(), w.Shape())
	}
	if w.Shape()[2] != w.Shape()[3] {
		return nil, fmt.Errorf("ops: conv2d: kernel %v must be square", w.Shape())
	}
	if err := in.check("conv2d input", x.Shape()[1]); err != nil {
		return nil, err
	}
	if err := out.check("conv2d output", w.Shape()[0]); err != nil {
		return nil, err
	}
	op := &conv2d{base: newBase("Conv2D"), g: ConvGeom{w.Shape()[2], stride, pad}, lay: [2]Layout{in, out}}
	return G.ApplyOp(op, x, w)
}

// Conv2DFirst is Conv2DLayout (x in NCHW) for a network's first layer,
// whose input (the images) needs no gradient: it has none (DiffWRT is
// false for x), which saves the backward-data pass over the images.
func Conv2DFirst(x, w *G.Node, stride, pad int, out Layout) (*G.Node, error) {
	n, err := Conv2DLayout(x, w, stride, pad, NCHW, out)
	if err != nil {
		return nil, err
	}
	n.Op().(*conv2d).noDx = true
	return n, nil
}

type conv2d struct {
	base
	g    ConvGeom
	lay  [2]Layout // of x and y
	noDx bool      // x has no gradient (Conv2DFirst)
}

// conv64 checks that a float64 convolution uses plain layouts (the Go
// kernels know no other).
func conv64(op string, lay [2]Layout) error {
	if lay != plainLayouts {
		return fmt.Errorf("ops: %s: float64 has no %v/%v kernels", op, lay[0], lay[1])
	}
	return nil
}

var plainLayouts = [2]Layout{NCHW, NCHW}

func (op *conv2d) Arity() int    { return 2 }
func (op *conv2d) Type() hm.Type { return fnType(4, 4, 4) }
func (op *conv2d) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	xs, ws := ns[0].(tensor.Shape), ns[1].(tensor.Shape)
	if len(xs) != 4 || len(ws) != 4 {
		return nil, fmt.Errorf("ops: conv2d: shapes %v, %v must be rank 4", xs, ws)
	}
	if xs[1] != ws[1] {
		return nil, fmt.Errorf("ops: conv2d: input has %d channels, weights expect %d", xs[1], ws[1])
	}
	if err := op.g.check("conv2d", xs[2], xs[3]); err != nil {
		return nil, err
	}
	return tensor.Shape{xs[0], ws[0], op.g.Out(xs[2]), op.g.Out(xs[3])}, nil
}

func (op *conv2d) Do(vs ...G.Value) (G.Value, error) {
	x, err := dense("conv2d", 0, vs[0])
	if err != nil {
		return nil, err
	}
	w, err := dense("conv2d", 1, vs[1])
	if err != nil {
		return nil, err
	}
	s, err := op.InferShape(x.Shape(), w.Shape())
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("conv2d", x, w)
	if err != nil {
		return nil, err
	}
	out := op.output(dt, false, s...)
	switch dt {
	case tensor.Float32:
		if err := convL(op.strm, passForward, x.Float32s(), w.Float32s(), out.Float32s(), x.Shape(), w.Shape()[0], op.g, op.lay); err != nil {
			return nil, err
		}
	default:
		if err := conv64("conv2d", op.lay); err != nil {
			return nil, err
		}
		convForward(x.Float64s(), w.Float64s(), out.Float64s(), x.Shape(), w.Shape()[0], op.g)
	}
	return out, nil
}

func (op *conv2d) DiffWRT(int) []bool { return []bool{!op.noDx, true} }

func (op *conv2d) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	var dx *G.Node
	if !op.noDx {
		var err error
		dx, err = G.ApplyOp(&convBwdData{base: newBase("Conv2DBwdData"), g: op.g, xShape: in[0].Shape().Clone(), lay: op.lay}, in[1], grad)
		if err != nil {
			return nil, err
		}
	}
	dw, err := G.ApplyOp(&convBwdWeight{base: newBase("Conv2DBwdWeight"), g: op.g, wShape: in[1].Shape().Clone(), lay: op.lay}, in[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw}, nil
}

// convBwdData computes dL/dx from (w, dy).
type convBwdData struct {
	base
	g      ConvGeom
	xShape tensor.Shape
	lay    [2]Layout
}

func (op *convBwdData) Arity() int    { return 2 }
func (op *convBwdData) Type() hm.Type { return fnType(4, 4, 4) }
func (op *convBwdData) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.xShape.Clone(), nil
}
func (op *convBwdData) Do(vs ...G.Value) (G.Value, error) {
	w, err := dense("conv2d backward data", 0, vs[0])
	if err != nil {
		return nil, err
	}
	dy, err := dense("conv2d backward data", 1, vs[1])
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("conv2d backward data", w, dy)
	if err != nil {
		return nil, err
	}
	// The Go kernels accumulate into dx; oneDNN's overwrite it, and
	// clearing it first would cost a pass over every input gradient.
	dx := op.output(dt, dt != tensor.Float32 || !convOverwrites, op.xShape...)
	switch dt {
	case tensor.Float32:
		if err := convL(op.strm, passBackwardData, dy.Float32s(), w.Float32s(), dx.Float32s(), op.xShape, w.Shape()[0], op.g, op.lay); err != nil {
			return nil, err
		}
	default:
		if err := conv64("conv2d backward data", op.lay); err != nil {
			return nil, err
		}
		convBackwardData(w.Float64s(), dy.Float64s(), dx.Float64s(), op.xShape, w.Shape()[0], op.g)
	}
	return dx, nil
}

// convBwdWeight computes dL/dw from (x, dy).
type convBwdWeight struct {
	base
	g      ConvGeom
	wShape tensor.Shape
	lay    [2]Layout
}

func (op *convBwdWeight) Arity() int    { return 2 }
func (op *convBwdWeight) Type() hm.Type { return fnType(4, 4, 4) }
func (op *convBwdWeight) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.wShape.Clone(), nil
}
func (op *convBwdWeight) Do(vs ...G.Value) (G.Value, error) {
	x, err := dense("conv2d backward weight", 0, vs[0])
	if err != nil {
		return nil, err
	}
	dy, err := dense("conv2d backward weight", 1, vs[1])
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("conv2d backward weight", x, dy)
	if err != nil {
		return nil, err
	}
	dw := op.output(dt, false, op.wShape...)
	switch dt {
	case tensor.Float32:
		if err := convL(op.strm, passBackwardWeights, x.Float32s(), dy.Float32s(), dw.Float32s(), x.Shape(), op.wShape[0], op.g, op.lay); err != nil {
			return nil, err
		}
	default:
		if err := conv64("conv2d backward weight", op.lay); err != nil {
			return nil, err
		}
		convBackwardWeight(x.Float64s(), dy.Float64s(), dw.Float64s(), x.Shape(), op.wShape[0], op.g)
	}
	return dw, nil
}

// direct reports whether the convolution is a plain matrix product per
// image (1x1 kernel, stride 1, no padding), needing no im2col.
func (g ConvGeom) direct() bool { return g.Kernel == 1 && g.Stride == 1 && g.Pad == 0 }

// validRange returns the output columns [lo, hi) whose input column
// ox*stride - pad + kx lies inside [0, W).
func (g ConvGeom) validRange(kx, W, OW int) (int, int) {
	lo, hi := 0, OW
	for lo < OW && lo*g.Stride-g.Pad+kx < 0 {
		lo++
	}
	for hi > lo && (hi-1)*g.Stride-g.Pad+kx >= W {
		hi--
	}
	return lo, hi
}

// im2col unpacks one image [C, H, W] into col [C*K*K, OH*OW].
func im2col[T Float](x []T, C, H, W int, g ConvGeom, col []T) {
	OH, OW := g.Out(H), g.Out(W)
	K := g.Kernel
	for c := 0; c < C; c++ {
		xc := x[c*H*W : (c+1)*H*W]
		for ky := 0; ky < K; ky++ {
			for kx := 0; kx < K; kx++ {
				row := col[((c*K+ky)*K+kx)*OH*OW:][:OH*OW]
				lo, hi := g.validRange(kx, W, OW)
				for oy := 0; oy < OH; oy++ {
					iy := oy*g.Stride - g.Pad + ky
					r := row[oy*OW : (oy+1)*OW]
					if iy < 0 || iy >= H || lo >= hi {
						clear(r)
						continue
					}
					clear(r[:lo])
					clear(r[hi:])
					xr := xc[iy*W : (iy+1)*W]
					if g.Stride == 1 {
						copy(r[lo:hi], xr[lo-g.Pad+kx:])
						continue
					}
					ix := lo*g.Stride - g.Pad + kx
					for ox := lo; ox < hi; ox++ {
						r[ox] = xr[ix]
						ix += g.Stride
					}
				}
			}
		}
	}
}

// col2im adds col [C*K*K, OH*OW] back into one image gradient dx [C, H, W].
func col2im[T Float](col []T, C, H, W int, g ConvGeom, dx []T) {
	OH, OW := g.Out(H), g.Out(W)
	K := g.Kernel
	for c := 0; c < C; c++ {
		xc := dx[c*H*W : (c+1)*H*W]
		for ky := 0; ky < K; ky++ {
			for kx := 0; kx < K; kx++ {
				row := col[((c*K+ky)*K+kx)*OH*OW:][:OH*OW]
				lo, hi := g.validRange(kx, W, OW)
				if lo >= hi {
					continue
				}
				for oy := 0; oy < OH; oy++ {
					iy := oy*g.Stride - g.Pad + ky
					if iy < 0 || iy >= H {
						continue
					}
					r := row[oy*OW+lo : oy*OW+hi]
					xr := xc[iy*W : (iy+1)*W]
					if g.Stride == 1 {
						xs := xr[lo-g.Pad+kx:][:len(r)]
						for i, v := range r {
							xs[i] += v
						}
						continue
					}
					ix := lo*g.Stride - g.Pad + kx
					for _, v := range r {
						xr[ix] += v
						ix += g.Stride
					}
				}
			}
		}
	}
}

func convForward[T Float](x, w, y []T, xs tensor.Shape, O int, g ConvGeom) {
	N, C, H, W := shape4(xs)
	OH, OW := g.Out(H), g.Out(W)
	ckk := C * g.Kernel * g.Kernel
	parallelFor(N, func(_, lo, hi int) {
		var col []T
		if !g.direct() {
			col = make([]T, ckk*OH*OW)
		}
		for b := lo; b < hi; b++ {
			xb := x[b*C*H*W : (b+1)*C*H*W]
			src := xb
			if !g.direct() {
				im2col(xb, C, H, W, g, col)
				src = col
			}
			gemm(false, false, O, OH*OW, ckk, 1, w, ckk, src, OH*OW, 0, y[b*O*OH*OW:(b+1)*O*OH*OW], OH*OW)
		}
	})
}

func convBackwardData[T Float](w, dy, dx []T, xs tensor.Shape, O int, g ConvGeom) {
	N, C, H, W := shape4(xs)
	OH, OW := g.Out(H), g.Out(W)
	ckk := C * g.Kernel * g.Kernel
	parallelFor(N, func(_, lo, hi int) {
		var col []T
		if !g.direct() {
			col = make([]T, ckk*OH*OW)
		}
		for b := lo; b < hi; b++ {
			dxb := dx[b*C*H*W : (b+1)*C*H*W]
			dst := dxb
			if !g.direct() {
				dst = col
			}
			gemm(true, false, ckk, OH*OW, O, 1, w, ckk, dy[b*O*OH*OW:(b+1)*O*OH*OW], OH*OW, 0, dst, OH*OW)
			if !g.direct() {
				col2im(col, C, H, W, g, dxb)
			}
		}
	})
}

func convBackwardWeight[T Float](x, dy, dw []T, xs tensor.Shape, O int, g ConvGeom) {
	N, C, H, W := shape4(xs)
	OH, OW := g.Out(H), g.Out(W)
	ckk := C * g.Kernel * g.Kernel
	parts := make([][]T, Workers(N))
	parallelFor(N, func(k, lo, hi int) {
		var col []T
		if !g.direct() {
			col = make([]T, ckk*OH*OW)
		}
		acc := make([]T, O*ckk)
		for b := lo; b < hi; b++ {
			src := x[b*C*H*W : (b+1)*C*H*W]
			if !g.direct() {
				im2col(src, C, H, W, g, col)
				src = col
			}
			gemm(false, true, O, ckk, OH*OW, 1, dy[b*O*OH*OW:(b+1)*O*OH*OW], OH*OW, src, OH*OW, 1, acc, ckk)
		}
		parts[k] = acc
	})
	copy(dw, parts[0])
	for _, p := range parts[1:] {
		for i, v := range p {
			dw[i] += v
		}
	}
}
