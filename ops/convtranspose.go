package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ConvTransposeOut returns the output size of a transposed convolution
// along one axis: (in-1)*stride - 2*pad + kernel + outputPad, as in ONNX
// ConvTranspose with dilation 1.
func ConvTransposeOut(in int, g ConvGeom, outputPad int) int {
	return (in-1)*g.Stride - 2*g.Pad + g.Kernel + outputPad
}

// ConvTranspose2D applies a 2-D transposed convolution without bias, with
// ONNX ConvTranspose semantics (one group, dilation 1, square kernel,
// symmetric pads): x [N, Cin, H, W] with weights w [Cin, Cout, K, K] (ONNX's
// weight layout: input channels first) gives y [N, Cout, OH, OW] with
//
//	OH = (H-1)*stride - 2*pad + K + outputPad   (OW likewise)
//	y[n, co, i*stride - pad + ky, j*stride - pad + kx] += x[n, ci, i, j] * w[ci, co, ky, kx]
//
// summed over ci, i, j, ky, kx, cells falling outside [0, OH) x [0, OW)
// dropped. outputPad (0 <= outputPad < stride) adds rows and columns at the
// bottom and right, choosing among the output sizes that a stride-s
// convolution maps back onto H x W. The gradient is defined for x and w.
//
// The forward pass is the backward-data pass of the ordinary convolution
// Conv2D(y, w, stride, pad) whose input has y's shape and whose weights are
// w read as [O = Cin, C = Cout, K, K]; dL/dx is that convolution's forward
// pass on dL/dy and dL/dw its backward-weights pass with dL/dy as input and
// x as output gradient. The float32 path therefore runs on the same kernels
// as Conv2D (oneDNN by default, im2col + OpenBLAS with -tags nodnnl, pure Go
// with -tags purego).
//
// Stride-2 transposed convolutions (K 4, pad 1, or K 3, pad 1, outputPad 1)
// are the upsampling layers of the DCGAN generator (Radford et al. 2016,
// "Unsupervised representation learning with deep convolutional generative
// adversarial networks", section 3) and of the context encoder's decoder
// for inpainting (Pathak et al. 2016, "Context encoders: feature learning by
// inpainting", section 3.1).
func ConvTranspose2D(x, w *G.Node, stride, pad, outputPad int) (*G.Node, error) {
	if x.Dims() != 4 || w.Dims() != 4 {
		return nil, fmt.Errorf("ops: conv transpose: x %v and w %v must both be rank 4", x.Shape(), w.Shape())
	}
	ws := w.Shape()
	if ws[2] != ws[3] {
		return nil, fmt.Errorf("ops: conv transpose: kernel %v must be square", ws)
	}
	op := &convTranspose{base: newBase("ConvTranspose2D"), g: ConvGeom{ws[2], stride, pad}, outPad: outputPad}
	if _, err := op.InferShape(x.Shape(), ws); err != nil {
		return nil, err
	}
	return G.ApplyOp(op, x, w)
}

// ConvTranspose2DBias is ConvTranspose2D followed by ChannelBias with
// b [Cout]: ONNX ConvTranspose with its optional bias input.
func ConvTranspose2DBias(x, w, b *G.Node, stride, pad, outputPad int) (*G.Node, error) {
	y, err := ConvTranspose2D(x, w, stride, pad, outputPad)
	if err != nil {
		return nil, err
	}
	return ChannelBias(y, b)
}

type convTranspose struct {
	base
	g      ConvGeom
	outPad int
}

func (op *convTranspose) Arity() int    { return 2 }
func (op *convTranspose) Type() hm.Type { return fnType(4, 4, 4) }
func (op *convTranspose) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	xs, ws := ns[0].(tensor.Shape), ns[1].(tensor.Shape)
	if len(xs) != 4 || len(ws) != 4 {
		return nil, fmt.Errorf("ops: conv transpose: shapes %v, %v must be rank 4", xs, ws)
	}
	if xs[1] != ws[0] {
		return nil, fmt.Errorf("ops: conv transpose: input has %d channels, weights [Cin, Cout, K, K] %v expect %d", xs[1], ws, ws[0])
	}
	g := op.g
	if g.Kernel < 1 || g.Stride < 1 || g.Pad < 0 {
		return nil, fmt.Errorf("ops: conv transpose: invalid geometry kernel %d stride %d pad %d", g.Kernel, g.Stride, g.Pad)
	}
	if op.outPad < 0 || op.outPad >= g.Stride {
		return nil, fmt.Errorf("ops: conv transpose: output padding %d, expected 0 <= output padding < stride %d", op.outPad, g.Stride)
	}
	oh, ow := ConvTransposeOut(xs[2], g, op.outPad), ConvTransposeOut(xs[3], g, op.outPad)
	if xs[2] < 1 || xs[3] < 1 || oh < 1 || ow < 1 {
		return nil, fmt.Errorf("ops: conv transpose: input %dx%d with kernel %d stride %d pad %d gives output %dx%d, expected at least 1x1",
			xs[2], xs[3], g.Kernel, g.Stride, g.Pad, oh, ow)
	}
	return tensor.Shape{xs[0], ws[1], oh, ow}, nil
}

func (op *convTranspose) Do(vs ...G.Value) (G.Value, error) {
	x, err := dense("conv transpose", 0, vs[0])
	if err != nil {
		return nil, err
	}
	w, err := dense("conv transpose", 1, vs[1])
	if err != nil {
		return nil, err
	}
	ys, err := op.InferShape(x.Shape(), w.Shape())
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("conv transpose", x, w)
	if err != nil {
		return nil, err
	}
	// The im2col backward-data kernel accumulates: zero the output
	// (oneDNN's overwrites it).
	y := op.output(dt, dt != tensor.Float32 || !convOverwrites, ys...)
	cin := w.Shape()[0]
	switch dt {
	case tensor.Float32:
		if err := convL(op.strm, passBackwardData, x.Float32s(), w.Float32s(), y.Float32s(), ys, cin, op.g, plainLayouts); err != nil {
			return nil, fmt.Errorf("ops: conv transpose: x %v w %v: %w", x.Shape(), w.Shape(), err)
		}
	default:
		convBackwardData(w.Float64s(), x.Float64s(), y.Float64s(), ys, cin, op.g)
	}
	return y, nil
}

func (op *convTranspose) DiffWRT(int) []bool { return []bool{true, true} }

func (op *convTranspose) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&convTransposeGradX{base: newBase("ConvTranspose2DGradX"), g: op.g, xShape: in[0].Shape().Clone()}, in[1], grad)
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(&convTransposeGradW{base: newBase("ConvTranspose2DGradW"), g: op.g, wShape: in[1].Shape().Clone()}, in[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw}, nil
}

// convTransposeGradX computes dL/dx [N, Cin, H, W] from (w, dy): the
// ordinary convolution of dy [N, Cout, OH, OW] with w as [Cin, Cout, K, K].
type convTransposeGradX struct {
	base
	g      ConvGeom
	xShape tensor.Shape
}

func (op *convTransposeGradX) Arity() int    { return 2 }
func (op *convTransposeGradX) Type() hm.Type { return fnType(4, 4, 4) }
func (op *convTransposeGradX) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.xShape.Clone(), nil
}
func (op *convTransposeGradX) Do(vs ...G.Value) (G.Value, error) {
	w, err := dense("conv transpose grad x", 0, vs[0])
	if err != nil {
		return nil, err
	}
	dy, err := dense("conv transpose grad x", 1, vs[1])
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("conv transpose grad x", w, dy)
	if err != nil {
		return nil, err
	}
	if err := checkRank("conv transpose grad x", 1, dy, 4); err != nil {
		return nil, err
	}
	if got := op.g.Out(dy.Shape()[2]); got != op.xShape[2] {
		return nil, fmt.Errorf("ops: conv transpose grad x: dy %v maps to height %d, expected %d", dy.Shape(), got, op.xShape[2])
	}
	dx := op.output(dt, false, op.xShape...)
	cin := w.Shape()[0]
	switch dt {
	case tensor.Float32:
		if err := convL(op.strm, passForward, dy.Float32s(), w.Float32s(), dx.Float32s(), dy.Shape(), cin, op.g, plainLayouts); err != nil {
			return nil, fmt.Errorf("ops: conv transpose grad x: dy %v w %v: %w", dy.Shape(), w.Shape(), err)
		}
	default:
		convForward(dy.Float64s(), w.Float64s(), dx.Float64s(), dy.Shape(), cin, op.g)
	}
	return dx, nil
}

// convTransposeGradW computes dL/dw [Cin, Cout, K, K] from (x, dy): the
// ordinary convolution's backward-weights pass with dy [N, Cout, OH, OW] as
// its input and x [N, Cin, H, W] as its output gradient.
type convTransposeGradW struct {
	base
	g      ConvGeom
	wShape tensor.Shape
}

func (op *convTransposeGradW) Arity() int    { return 2 }
func (op *convTransposeGradW) Type() hm.Type { return fnType(4, 4, 4) }
func (op *convTransposeGradW) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.wShape.Clone(), nil
}
func (op *convTransposeGradW) Do(vs ...G.Value) (G.Value, error) {
	x, err := dense("conv transpose grad w", 0, vs[0])
	if err != nil {
		return nil, err
	}
	dy, err := dense("conv transpose grad w", 1, vs[1])
	if err != nil {
		return nil, err
	}
	dt, err := dtypeOf("conv transpose grad w", x, dy)
	if err != nil {
		return nil, err
	}
	if err := checkRank("conv transpose grad w", 1, dy, 4); err != nil {
		return nil, err
	}
	if got := op.g.Out(dy.Shape()[2]); got != x.Shape()[2] {
		return nil, fmt.Errorf("ops: conv transpose grad w: dy %v maps to height %d, x %v has %d", dy.Shape(), got, x.Shape(), x.Shape()[2])
	}
	dw := op.output(dt, false, op.wShape...)
	cin := op.wShape[0]
	switch dt {
	case tensor.Float32:
		if err := convL(op.strm, passBackwardWeights, dy.Float32s(), x.Float32s(), dw.Float32s(), dy.Shape(), cin, op.g, plainLayouts); err != nil {
			return nil, fmt.Errorf("ops: conv transpose grad w: x %v dy %v: %w", x.Shape(), dy.Shape(), err)
		}
	default:
		convBackwardWeight(dy.Float64s(), x.Float64s(), dw.Float64s(), dy.Shape(), cin, op.g)
	}
	return dw, nil
}
