//go:build purego || nodnnl || !cgo

package ops

import (
	"fmt"

	"gorgonia.org/tensor"
)

// BlockedLayout reports whether activations can be kept in the blocked
// layout NChw16c between ops: never in this build (it needs oneDNN).
func BlockedLayout(tensor.Dtype) bool { return false }

// ActivationLayout is the layout models keep activations in: NCHW in this
// build.
func ActivationLayout(tensor.Dtype) Layout { return NCHW }

func errNoBlocked(what string) error {
	return fmt.Errorf("ops: %s: the blocked layout NChw16c needs the oneDNN build (this one is %s)", what, ConvBackend)
}

// convL runs a convolution pass; this build has plain NCHW only.
func convL(_ *dnnlState, pass int, in0, in1, out []float32, xs tensor.Shape, O int, g ConvGeom, lay [2]Layout) error {
	if lay != [2]Layout{NCHW, NCHW} {
		return errNoBlocked("conv2d")
	}
	switch pass {
	case passForward:
		return conv32Forward(in0, in1, out, xs, O, g)
	case passBackwardData:
		return conv32BackwardData(in1, in0, out, xs, O, g)
	default:
		return conv32BackwardWeight(in0, in1, out, xs, O, g)
	}
}

func bnWorkspace(_ *dnnlState, xs tensor.Shape, eps float64, l Layout, relu bool) (int, error) {
	return 0, errNoBlocked("batchnorm")
}

func bnForward32(_ *dnnlState, x, gamma, beta, mean, variance, y []float32, xs tensor.Shape, eps float64, l Layout, training, relu bool, ws []byte) error {
	return errNoBlocked("batchnorm")
}

func bnBackward32(_ *dnnlState, x, dy, gamma, beta, mean, variance, dx, dgamma, dbeta []float32, xs tensor.Shape, eps float64, l Layout, training, relu bool, ws []byte) error {
	return errNoBlocked("batchnorm")
}

// ConvBackend names the float32 convolution kernels in use: im2col and the
// single-precision GEMM named by Backend (this build has no oneDNN).
const ConvBackend = "im2col+" + Backend

// convOverwrites: the im2col backward-data pass accumulates into its
// output (col2im), which must be cleared first.
const convOverwrites = false

// Convolution passes (numbered as in the oneDNN build).
const (
	passForward         = 0
	passBackwardData    = 1
	passBackwardWeights = 2
)

func conv32Forward(x, w, y []float32, xs tensor.Shape, O int, g ConvGeom) error {
	convForward(x, w, y, xs, O, g)
	return nil
}

func conv32BackwardData(w, dy, dx []float32, xs tensor.Shape, O int, g ConvGeom) error {
	convBackwardData(w, dy, dx, xs, O, g)
	return nil
}

func conv32BackwardWeight(x, dy, dw []float32, xs tensor.Shape, O int, g ConvGeom) error {
	convBackwardWeight(x, dy, dw, xs, O, g)
	return nil
}

// CloseDNNL frees oneDNN's cached primitives in builds that have them; in
// this build there is nothing to free.
func CloseDNNL() error { return nil }

// dnnlConvImpl names the kernels a convolution pass runs on.
func dnnlConvImpl(pass int, xs tensor.Shape, O int, g ConvGeom) (string, error) {
	return ConvBackend, nil
}

// dnnlState is empty in this build: streams have nothing to run.
type dnnlState struct{}

func newStreamState(int) *dnnlState { return &dnnlState{} }

func (*dnnlState) close() error { return nil }

// SetPrecision sets the convolutions' arithmetic; this build has float32
// only (bfloat16 needs oneDNN).
func SetPrecision(p Precision) error {
	if p != Float32 {
		return fmt.Errorf("ops: precision %v needs the oneDNN build (this one is %s)", p, ConvBackend)
	}
	return nil
}

// ConvPrecision is the convolutions' arithmetic: float32 in this build.
func ConvPrecision() Precision { return Float32 }

// ConvEngine names the convolution library and precision in use.
func ConvEngine() (string, error) { return ConvBackend + ", float32", nil }

// OneDNN3Version says that this build has no oneDNN 3 (nor oneDNN).
func OneDNN3Version() (string, error) {
	return "", fmt.Errorf("ops: onednn 3: this build has no oneDNN (its convolutions are %s)", ConvBackend)
}
