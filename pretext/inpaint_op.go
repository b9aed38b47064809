package pretext

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/ops"
)

// inpaintTarget is what the masked L2 loss compares a prediction with; the
// task fills the inputs before every step (like ops.Labels) and the forward
// pass writes the statistics. R is the side of the target region; N and C
// come from the prediction.
type inpaintTarget struct {
	// T is the target region [N, C, R, R] (normalised pixel values).
	T []float32
	// W holds the per-pixel loss weights [N, R, R], shared by the channels
	// (0 outside the loss, 1 on the hole, OverlapWeight on the border).
	W []float32
	// Hole is 1 where the input was masked, else 0 [N, R, R]: the pixels the
	// reconstruction statistics are taken over.
	Hole []float32
	// Tol is, per channel, the largest absolute error (in normalised
	// units) that counts as a hit for Hits; nil: Hits stays 0.
	Tol []float64

	// Written by every forward pass, over the hole's values (pixels x
	// channels): the sum of squared errors, the sum of squared targets
	// (the squared error of predicting 0, the dataset mean), their
	// count and the number within Tol.
	SSE, SST float64
	Count    int
	Hits     int
}

// inpaintL2 is the masked reconstruction loss of the context encoder
// (Pathak et al. 2016, eq. 1: L_rec = ||M ⊙ (x − F((1 − M) ⊙ x))||²) with
// per-pixel weights. For a prediction p [N, C, P, P] (P >= R), whose
// central R x R window (offset o = floor((P-R)/2)) is compared with the target t
// [N, C, R, R], the loss is the weighted mean
//
//	L = Σ_{n,c,y,x} w[n,y,x] (p[n,c,y+o,x+o] − t[n,c,y,x])² / (C Σ_{n,y,x} w[n,y,x])
//
// and its gradient dL/dp = 2 w (p − t) / (C Σ w) inside the window, 0
// outside. With weights 1 on the hole and 0 elsewhere L is the mean squared
// error over the hole. It is the kernel of a lossOp; works on float32 and
// float64 (the statistics and the sums are accumulated in float64).
type inpaintL2 struct {
	st *inpaintTarget
	r  int
}

// inpaintLoss applies inpaintL2 to pred [N, C, P, P] against st (region
// side r <= P; the window starts at floor((P-r)/2)).
func inpaintLoss(pred *G.Node, st *inpaintTarget, r int) (*G.Node, error) {
	s := pred.Shape()
	if pred.Dims() != 4 || s[2] != s[3] {
		return nil, fmt.Errorf("pretext: inpaint loss: prediction %v, expected square [N, C, P, P]", s)
	}
	if r < 1 || r > s[2] {
		return nil, fmt.Errorf("pretext: inpaint loss: region side %d does not fit in a %dx%d prediction", r, s[2], s[3])
	}
	return applyLoss(pred, &inpaintL2{st: st, r: r}, "InpaintL2", fmt.Sprintf("InpaintL2[%d]", r), "inpaint loss", "prediction is")
}

// check verifies the prediction and the target buffers; it returns N, C,
// P and the weight sum.
func (k *inpaintL2) check(p *tensor.Dense) (n, c, side int, wsum float64, err error) {
	s := p.Shape()
	if p.Dims() != 4 || s[2] != s[3] || s[2] < k.r {
		return 0, 0, 0, 0, fmt.Errorf("pretext: inpaint loss: prediction %v, expected [N, C, P, P] with P >= %d", s, k.r)
	}
	n, c, side = s[0], s[1], s[2]
	rr := k.r * k.r
	st := k.st
	if len(st.T) != n*c*rr || len(st.W) != n*rr || len(st.Hole) != n*rr {
		return 0, 0, 0, 0, fmt.Errorf("pretext: inpaint loss: target %d, weights %d, hole %d values, expected %d, %d, %d for prediction %v and region %d",
			len(st.T), len(st.W), len(st.Hole), n*c*rr, n*rr, n*rr, s, k.r)
	}
	if st.Tol != nil && len(st.Tol) != c {
		return 0, 0, 0, 0, fmt.Errorf("pretext: inpaint loss: %d tolerances for %d channels", len(st.Tol), c)
	}
	for _, w := range st.W {
		if w < 0 {
			return 0, 0, 0, 0, fmt.Errorf("pretext: inpaint loss: negative weight %v", w)
		}
		wsum += float64(w)
	}
	if wsum == 0 {
		return 0, 0, 0, 0, fmt.Errorf("pretext: inpaint loss: all %d weights are zero", len(st.W))
	}
	return n, c, side, wsum, nil
}

// inpaintForward returns the weighted sum of squared errors and fills the
// statistics of st.
func inpaintForward[T float32 | float64](p []T, st *inpaintTarget, n, c, side, r int) float64 {
	o := (side - r) / 2
	var loss float64
	st.SSE, st.SST, st.Count, st.Hits = 0, 0, 0, 0
	for i := 0; i < n; i++ {
		for ch := 0; ch < c; ch++ {
			for y := 0; y < r; y++ {
				prow := p[((i*c+ch)*side+y+o)*side+o:]
				trow := st.T[((i*c+ch)*r+y)*r:]
				for x := 0; x < r; x++ {
					m := (i*r+y)*r + x
					d := float64(prow[x]) - float64(trow[x])
					loss += float64(st.W[m]) * d * d
					if st.Hole[m] != 0 {
						st.SSE += d * d
						st.SST += float64(trow[x]) * float64(trow[x])
						st.Count++
						if st.Tol != nil && math.Abs(d) <= st.Tol[ch] {
							st.Hits++
						}
					}
				}
			}
		}
	}
	return loss
}

func (k *inpaintL2) forward(what string, p *tensor.Dense) (loss float64, err error) {
	n, c, side, wsum, err := k.check(p)
	if err != nil {
		return 0, err
	}
	norm := float64(c) * wsum
	err = floats(what, p.Dtype(),
		func() { loss = inpaintForward(p.Float32s(), k.st, n, c, side, k.r) / norm },
		func() { loss = inpaintForward(p.Float64s(), k.st, n, c, side, k.r) / norm })
	return loss, err
}

func inpaintBackward[T float32 | float64](p, dp []T, st *inpaintTarget, n, c, side, r int, scale float64) {
	o := (side - r) / 2
	for i := 0; i < n; i++ {
		for ch := 0; ch < c; ch++ {
			for y := 0; y < r; y++ {
				off := ((i*c+ch)*side+y+o)*side + o
				prow, drow := p[off:off+r], dp[off:off+r]
				trow := st.T[((i*c+ch)*r+y)*r:]
				wrow := st.W[(i*r+y)*r:]
				for x := range prow {
					drow[x] = T(scale * float64(wrow[x]) * (float64(prow[x]) - float64(trow[x])))
				}
			}
		}
	}
}

func (k *inpaintL2) backward(what string, p *tensor.Dense, seed float64, buf **tensor.Dense) (*tensor.Dense, error) {
	n, c, side, wsum, err := k.check(p)
	if err != nil {
		return nil, err
	}
	// Cells outside the compared window get no gradient: zero them.
	dp := ops.Reuse(buf, p.Dtype(), side != k.r, p.Shape()...)
	scale := 2 * seed / (float64(c) * wsum)
	err = floats(what, p.Dtype(),
		func() { inpaintBackward(p.Float32s(), dp.Float32s(), k.st, n, c, side, k.r, scale) },
		func() { inpaintBackward(p.Float64s(), dp.Float64s(), k.st, n, c, side, k.r, scale) })
	return dp, err
}
