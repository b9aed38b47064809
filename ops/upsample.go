package ops

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Upsampling modes for Upsample2D.
const (
	// UpsampleNearest repeats every pixel factor x factor times: ONNX Resize
	// with mode nearest, coordinate_transformation_mode asymmetric and
	// nearest_mode floor (for integer factors also half_pixel with
	// round_prefer_floor, Resize's default), PyTorch's mode "nearest".
	UpsampleNearest = "nearest"
	// UpsampleBilinear interpolates between the four nearest input pixels,
	// sampling output pixel o at input coordinate (o + 0.5)/factor - 0.5
	// with edge pixels repeated: ONNX Resize with mode linear and
	// coordinate_transformation_mode half_pixel, PyTorch's mode "bilinear"
	// with align_corners=False.
	UpsampleBilinear = "bilinear"
)

// Upsample2D enlarges x [N, C, H, W] by an integer factor >= 1 in height
// and width, giving [N, C, H*factor, W*factor]; mode is UpsampleNearest or
// UpsampleBilinear. The gradient is defined for x: each output cell's
// gradient flows back to the input cells it was made from, with the same
// weights. It is the fixed alternative to a stride-2 ConvTranspose2D in
// decoders (resize-then-convolve).
func Upsample2D(x *G.Node, factor int, mode string) (*G.Node, error) {
	return Upsample2DHW(x, factor, factor, mode)
}

// Upsample2DHW is Upsample2D with separate integer factors for height (fh)
// and width (fw): x [N, C, H, W] gives [N, C, H*fh, W*fw]. Along each axis,
// output index o of an axis of input size n reads
//
//	nearest:  x[floor(o/f)]
//	bilinear: (1-l)*x[i0] + l*x[i1], s = max(0, (o+0.5)/f - 0.5),
//	          i0 = floor(s), i1 = min(i0+1, n-1), l = s - i0
//
// and the 2-D result is the product of the two axes' weights.
func Upsample2DHW(x *G.Node, fh, fw int, mode string) (*G.Node, error) {
	if x.Dims() != 4 {
		return nil, fmt.Errorf("ops: upsample: x has shape %v, expected rank 4", x.Shape())
	}
	if fh < 1 || fw < 1 {
		return nil, fmt.Errorf("ops: upsample: factors %dx%d, expected integers >= 1", fh, fw)
	}
	if mode != UpsampleNearest && mode != UpsampleBilinear {
		return nil, fmt.Errorf("ops: upsample: mode %q, expected %q or %q", mode, UpsampleNearest, UpsampleBilinear)
	}
	return G.ApplyOp(&upsample{base: newBase("Upsample2D-" + mode), fh: fh, fw: fw, mode: mode}, x)
}

type upsample struct {
	base
	fh, fw int
	mode   string
	// Per-axis interpolation tables, rebuilt when the input size changes.
	ty, tx axisTable
}

func (op *upsample) Arity() int    { return 1 }
func (op *upsample) Type() hm.Type { return fnType(4, 4) }
func (op *upsample) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	xs := ns[0].(tensor.Shape)
	if len(xs) != 4 {
		return nil, fmt.Errorf("ops: upsample: shape %v, expected rank 4", xs)
	}
	return tensor.Shape{xs[0], xs[1], xs[2] * op.fh, xs[3] * op.fw}, nil
}

// axisTable holds, for each output index of one axis, the two input
// indices it reads and their weights (w0 + w1 = 1).
type axisTable struct {
	in     int
	i0, i1 []int
	w0, w1 []float64
}

// build fills t for one axis of input size n and factor f; it keeps t
// when it already fits.
func (t *axisTable) build(n, f int, mode string) {
	if t.in == n && len(t.i0) == n*f {
		return
	}
	m := n * f
	t.in = n
	t.i0, t.i1 = make([]int, m), make([]int, m)
	t.w0, t.w1 = make([]float64, m), make([]float64, m)
	for o := 0; o < m; o++ {
		if mode == UpsampleNearest {
			t.i0[o], t.i1[o], t.w0[o] = o/f, o/f, 1
			continue
		}
		s := math.Max(0, (float64(o)+0.5)/float64(f)-0.5)
		i0 := int(s)
		l := s - float64(i0)
		i1 := min(i0+1, n-1)
		t.i0[o], t.i1[o], t.w0[o], t.w1[o] = i0, i1, 1-l, l
	}
}

// nearestKernel writes y [NC, H*fh, W*fw], each x cell repeated fh x fw.
func nearestKernel[T Float](x, y []T, NC, H, W, fh, fw int) {
	OW := W * fw
	parallelFor(NC, func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			xp, yp := x[p*H*W:(p+1)*H*W], y[p*H*fh*OW:(p+1)*H*fh*OW]
			for iy := 0; iy < H; iy++ {
				row := yp[iy*fh*OW : (iy*fh+1)*OW]
				for ix, v := range xp[iy*W : (iy+1)*W] {
					for k := range row[ix*fw : (ix+1)*fw] {
						row[ix*fw+k] = v
					}
				}
				for r := 1; r < fh; r++ {
					copy(yp[(iy*fh+r)*OW:(iy*fh+r+1)*OW], row)
				}
			}
		}
	})
}

// nearestGradKernel sums each fh x fw block of dy into dx [NC, H, W].
func nearestGradKernel[T Float](dy, dx []T, NC, H, W, fh, fw int) {
	OW := W * fw
	parallelFor(NC, func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			dxp, dyp := dx[p*H*W:(p+1)*H*W], dy[p*H*fh*OW:(p+1)*H*fh*OW]
			for iy := 0; iy < H; iy++ {
				d := dxp[iy*W : (iy+1)*W]
				for r := 0; r < fh; r++ {
					row := dyp[(iy*fh+r)*OW : (iy*fh+r+1)*OW]
					for ix := range d {
						var s T
						for _, v := range row[ix*fw : (ix+1)*fw] {
							s += v
						}
						d[ix] += s
					}
				}
			}
		}
	})
}

// bilinearKernel computes y [NC, OH, OW] from x [NC, H, W] with the axis
// tables (dy == nil), or scatters dy into dx with the same weights.
func bilinearKernel[T Float](x, y, dy, dx []T, NC, H, W int, ty, tx *axisTable) {
	OH, OW := len(ty.i0), len(tx.i0)
	parallelFor(NC, func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			for oy := 0; oy < OH; oy++ {
				wy0, wy1 := T(ty.w0[oy]), T(ty.w1[oy])
				r0, r1 := p*H*W+ty.i0[oy]*W, p*H*W+ty.i1[oy]*W
				o := (p*OH + oy) * OW
				if dy == nil {
					x0, x1, yr := x[r0:r0+W], x[r1:r1+W], y[o:o+OW]
					for ox := range yr {
						a, b, wa, wb := tx.i0[ox], tx.i1[ox], T(tx.w0[ox]), T(tx.w1[ox])
						yr[ox] = wy0*(wa*x0[a]+wb*x0[b]) + wy1*(wa*x1[a]+wb*x1[b])
					}
					continue
				}
				d0, d1, g := dx[r0:r0+W], dx[r1:r1+W], dy[o:o+OW]
				for ox, v := range g {
					a, b, wa, wb := tx.i0[ox], tx.i1[ox], T(tx.w0[ox]), T(tx.w1[ox])
					v0, v1 := wy0*v, wy1*v
					d0[a] += wa * v0
					d0[b] += wb * v0
					d1[a] += wa * v1
					d1[b] += wb * v1
				}
			}
		}
	})
}

func (op *upsample) Do(vs ...G.Value) (G.Value, error) {
	x, err := dense("upsample", 0, vs[0])
	if err != nil {
		return nil, err
	}
	s, err := op.InferShape(x.Shape())
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("upsample", x)
	if err != nil {
		return nil, err
	}
	N, C, H, W := shape4(x.Shape())
	y := op.output(dt, false, s...)
	if op.mode == UpsampleNearest {
		switch dt {
		case tensor.Float32:
			nearestKernel(x.Float32s(), y.Float32s(), N*C, H, W, op.fh, op.fw)
		default:
			nearestKernel(x.Float64s(), y.Float64s(), N*C, H, W, op.fh, op.fw)
		}
		return y, nil
	}
	op.ty.build(H, op.fh, op.mode)
	op.tx.build(W, op.fw, op.mode)
	switch dt {
	case tensor.Float32:
		bilinearKernel(x.Float32s(), y.Float32s(), nil, nil, N*C, H, W, &op.ty, &op.tx)
	default:
		bilinearKernel(x.Float64s(), y.Float64s(), nil, nil, N*C, H, W, &op.ty, &op.tx)
	}
	return y, nil
}

func (op *upsample) DiffWRT(int) []bool { return []bool{true} }
func (op *upsample) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&upsampleGrad{base: newBase("Upsample2DGrad-" + op.mode), fh: op.fh, fw: op.fw, mode: op.mode, xShape: in[0].Shape().Clone()}, grad)
	return G.Nodes{dx}, err
}

// upsampleGrad computes dL/dx [N, C, H, W] from dy [N, C, H*fh, W*fw].
type upsampleGrad struct {
	base
	fh, fw int
	mode   string
	xShape tensor.Shape
	ty, tx axisTable
}

func (op *upsampleGrad) Arity() int    { return 1 }
func (op *upsampleGrad) Type() hm.Type { return fnType(4, 4) }
func (op *upsampleGrad) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.xShape.Clone(), nil
}
func (op *upsampleGrad) Do(vs ...G.Value) (G.Value, error) {
	dy, err := dense("upsample grad", 0, vs[0])
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("upsample grad", dy)
	if err != nil {
		return nil, err
	}
	N, C, H, W := shape4(op.xShape)
	fh, fw := op.fh, op.fw
	if want := (tensor.Shape{N, C, H * fh, W * fw}); !dy.Shape().Eq(want) {
		return nil, fmt.Errorf("ops: upsample grad: dy has shape %v, expected %v", dy.Shape(), want)
	}
	dx := op.output(dt, true, op.xShape...)
	if op.mode == UpsampleNearest {
		switch dt {
		case tensor.Float32:
			nearestGradKernel(dy.Float32s(), dx.Float32s(), N*C, H, W, fh, fw)
		default:
			nearestGradKernel(dy.Float64s(), dx.Float64s(), N*C, H, W, fh, fw)
		}
		return dx, nil
	}
	// The gradient keeps its own tables: it must not depend on the forward
	// op's state.
	op.ty.build(H, fh, op.mode)
	op.tx.build(W, fw, op.mode)
	switch dt {
	case tensor.Float32:
		bilinearKernel(nil, nil, dy.Float32s(), dx.Float32s(), N*C, H, W, &op.ty, &op.tx)
	default:
		bilinearKernel(nil, nil, dy.Float64s(), dx.Float64s(), N*C, H, W, &op.ty, &op.tx)
	}
	return dx, nil
}
