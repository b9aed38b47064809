//go:build purego || nodnnl || !cgo

package ops

import "gorgonia.org/tensor"

// ConvBackend names the float32 convolution kernels in use: im2col and the
// single-precision GEMM named by Backend (this build has no oneDNN).
const ConvBackend = "im2col+" + Backend

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
