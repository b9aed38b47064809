package pretext

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/ops"
)

// Channels of the synthetic task's prediction [M, 5, G, G].
const (
	synDepth   = 0 // depth / scene.MaxDepth
	synNormal  = 1 // 1-3: the normal (any length; its direction counts)
	synContour = 4 // contour logit
	synOut     = 5
)

// synTarget is what the synthetic loss compares a prediction with: the
// free labels of the first N rows (the rendered scenes; rows after them,
// the real images of domain adaptation, have none) on the G x G grid. The
// task fills it before every step (like ops.Labels); the forward pass
// writes the statistics.
type synTarget struct {
	N int
	// Depth [N, G, G] (normalised), Normal [N, 3, G, G] (unit), Contour
	// [N, G, G] (0 or 1) and ContourW [N, G, G], every pixel's weight in
	// the contour term.
	Depth, Normal, Contour, ContourW []float32
	// WDepth, WNormal and WContour weigh the three terms in the loss.
	WDepth, WNormal, WContour float64

	// Written by every forward pass over the N*G*G pixels: the mean of
	// each term (unweighted by W*), the pixels whose predicted normal is
	// within 22.5° of the truth, and the number of pixels.
	DepthL1, NormalCos, ContourBCE float64
	NormalHits, Pixels             int
}

// cos22 is cos(22.5°): a predicted normal within 22.5° of the truth is a
// hit (the usual normal-estimation threshold).
var cos22 = math.Cos(22.5 * math.Pi / 180)

// normEps2 keeps the normalisation of a predicted normal finite at 0.
const normEps2 = 1e-12

// synLoss is the multi-task loss of Ren & Lee 2018 (section 3.1) on a
// prediction x [M, 5, H, W] whose first N rows have labels: with P =
// N*H*W pixels p, n̂_p = x[1:4]_p / sqrt(|x[1:4]_p|² + 1e-12),
// σ the logistic function,
//
//	L = WDepth   (1/P) Σ_p |x[0]_p − depth_p|                      (L1)
//	  + WNormal  (1/P) Σ_p (1 − n̂_p · normal_p)                    (cosine)
//	  + WContour (1/P) Σ_p w_p BCE(σ(x[4]_p), contour_p)           (weighted BCE)
//
// with BCE(s, y) = −y log s − (1−y) log(1−s), computed from the logit
// without overflow. The gradient is WDepth sign(x0 − depth)/P, WNormal
// −(normal/s − (x·normal) x/s³)/P with s the regularised length,
// WContour w (σ(x4) − contour)/P, and 0 for rows after N. It is the kernel
// of a lossOp; works on float32 and float64 (sums in float64).
type synLoss struct {
	st *synTarget
}

// syntheticLoss applies synLoss to x [M, 5, H, W] against st.
func syntheticLoss(x *G.Node, st *synTarget) (*G.Node, error) {
	if s := x.Shape(); x.Dims() != 4 || s[1] != synOut {
		return nil, fmt.Errorf("pretext: synthetic loss: prediction %v, expected [M, %d, H, W]", s, synOut)
	}
	return applyLoss(x, &synLoss{st: st}, "SynLoss", "", "synthetic loss", "prediction is")
}

// check verifies the prediction against the target buffers and returns
// H*W.
func (k *synLoss) check(x *tensor.Dense) (hw int, err error) {
	s, st := x.Shape(), k.st
	if x.Dims() != 4 || s[1] != synOut {
		return 0, fmt.Errorf("pretext: synthetic loss: prediction %v, expected [M, %d, H, W]", s, synOut)
	}
	hw = s[2] * s[3]
	p := st.N * hw
	switch {
	case st.N < 1 || st.N > s[0]:
		return 0, fmt.Errorf("pretext: synthetic loss: %d labelled rows for a prediction of %d", st.N, s[0])
	case len(st.Depth) != p || len(st.Normal) != 3*p || len(st.Contour) != p || len(st.ContourW) != p:
		return 0, fmt.Errorf("pretext: synthetic loss: %d depth, %d normal, %d contour, %d weight values; expected %d, %d, %d, %d for %d rows of %v",
			len(st.Depth), len(st.Normal), len(st.Contour), len(st.ContourW), p, 3*p, p, p, st.N, s)
	}
	return hw, nil
}

// softplus is log(1 + e^x) without overflow.
func softplus(x float64) float64 { return math.Max(x, 0) + math.Log1p(math.Exp(-math.Abs(x))) }

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// synPixel returns pixel j (of H*W) of row i's normal prediction and its
// regularised length.
func synPixel[T float32 | float64](x []T, i, j, hw int) (n [3]float64, s float64) {
	base := i * synOut * hw
	for c := range n {
		n[c] = float64(x[base+(synNormal+c)*hw+j])
	}
	return n, math.Sqrt(n[0]*n[0] + n[1]*n[1] + n[2]*n[2] + normEps2)
}

func synForward[T float32 | float64](x []T, st *synTarget, hw int) float64 {
	var l1, cosl, bce float64
	hits := 0
	for i := 0; i < st.N; i++ {
		base := i * synOut * hw
		for j := 0; j < hw; j++ {
			p := i*hw + j
			l1 += math.Abs(float64(x[base+synDepth*hw+j]) - float64(st.Depth[p]))
			n, s := synPixel(x, i, j, hw)
			var dot float64
			for c := range n {
				dot += n[c] * float64(st.Normal[(i*3+c)*hw+j])
			}
			cos := dot / s
			cosl += 1 - cos
			if cos >= cos22 {
				hits++
			}
			z, y := float64(x[base+synContour*hw+j]), float64(st.Contour[p])
			bce += float64(st.ContourW[p]) * (softplus(z) - y*z)
		}
	}
	pix := float64(st.N * hw)
	st.DepthL1, st.NormalCos, st.ContourBCE, st.NormalHits, st.Pixels = l1/pix, cosl/pix, bce/pix, hits, st.N*hw
	return st.WDepth*st.DepthL1 + st.WNormal*st.NormalCos + st.WContour*st.ContourBCE
}

func (k *synLoss) forward(what string, x *tensor.Dense) (loss float64, err error) {
	hw, err := k.check(x)
	if err != nil {
		return 0, err
	}
	err = floats(what, x.Dtype(),
		func() { loss = synForward(x.Float32s(), k.st, hw) },
		func() { loss = synForward(x.Float64s(), k.st, hw) })
	return loss, err
}

func synBackward[T float32 | float64](x, dx []T, st *synTarget, hw int, seed float64) {
	scale := seed / float64(st.N*hw)
	wd, wn, wc := scale*st.WDepth, scale*st.WNormal, scale*st.WContour
	for i := 0; i < st.N; i++ {
		base := i * synOut * hw
		for j := 0; j < hw; j++ {
			p := i*hw + j
			d := float64(x[base+synDepth*hw+j]) - float64(st.Depth[p])
			switch {
			case d > 0:
				dx[base+synDepth*hw+j] = T(wd)
			case d < 0:
				dx[base+synDepth*hw+j] = T(-wd)
			default:
				dx[base+synDepth*hw+j] = 0
			}
			n, s := synPixel(x, i, j, hw)
			var t [3]float64
			var dot float64
			for c := range t {
				t[c] = float64(st.Normal[(i*3+c)*hw+j])
				dot += n[c] * t[c]
			}
			for c := range t {
				dx[base+(synNormal+c)*hw+j] = T(-wn * (t[c]/s - dot*n[c]/(s*s*s)))
			}
			z, y := float64(x[base+synContour*hw+j]), float64(st.Contour[p])
			dx[base+synContour*hw+j] = T(wc * float64(st.ContourW[p]) * (sigmoid(z) - y))
		}
	}
}

func (k *synLoss) backward(what string, x *tensor.Dense, seed float64, buf **tensor.Dense) (*tensor.Dense, error) {
	hw, err := k.check(x)
	if err != nil {
		return nil, err
	}
	// Rows after N (real images) get no gradient: zero them.
	dx := ops.Reuse(buf, x.Dtype(), k.st.N < x.Shape()[0], x.Shape()...)
	err = floats(what, x.Dtype(),
		func() { synBackward(x.Float32s(), dx.Float32s(), k.st, hw, seed) },
		func() { synBackward(x.Float64s(), dx.Float64s(), k.st, hw, seed) })
	return dx, err
}
