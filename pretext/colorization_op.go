package pretext

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/ops"
)

// colorTarget is what the colorization loss compares the logits with: the
// soft-encoded ab targets of every pixel of the prediction grid and their
// rebalancing weights. The task fills it before every step (like
// ops.Labels); the forward pass writes the statistics. P is the number of
// pixels (N*H*W of the logits), K the bins per target.
type colorTarget struct {
	K int
	// Idx holds the K bins of every pixel's soft target [P, K], nearest
	// first; Z their weights [P, K] (each row sums to 1).
	Idx []int32
	Z   []float32
	// W is every pixel's rebalancing weight [P]: w of its nearest bin.
	W []float32

	// Written by every forward pass: the pixels whose most probable bin
	// is their nearest (Idx[p*K]), and the number of pixels.
	Hits, Count int
}

// colorCE is the class-rebalanced multinomial cross-entropy of Zhang,
// Isola & Efros, "Colorful Image Colorization" (ECCV 2016), eq. 2 and 3,
// averaged over pixels: for logits x [N, Q, H, W] (Q bins; pixel p =
// (n, y, x)) with ŷ_p = softmax over q of x[n, :, y, x],
//
//	L = −(1/P) Σ_p W_p Σ_k Z[p,k] log ŷ_p(Idx[p,k])
//
// and dL/dx[n,q,y,x] = (W_p / P) (ŷ_p(q) − Σ_k Z[p,k] [Idx[p,k] = q]).
// It is the kernel of a lossOp; works on float32 and float64 (sums in
// float64).
type colorCE struct {
	st *colorTarget
}

// colorLoss applies colorCE to logits [N, Q, H, W] against st.
func colorLoss(logits *G.Node, st *colorTarget) (*G.Node, error) {
	if logits.Dims() != 4 {
		return nil, fmt.Errorf("pretext: colorization loss: logits %v, expected [N, Q, H, W]", logits.Shape())
	}
	return applyLoss(logits, &colorCE{st: st}, "ColorCE", "", "colorization loss", "logits are")
}

// check verifies the logits against the target buffers and returns N, Q
// and H*W.
func (k *colorCE) check(x *tensor.Dense) (n, q, hw int, err error) {
	s := x.Shape()
	if x.Dims() != 4 {
		return 0, 0, 0, fmt.Errorf("pretext: colorization loss: logits %v, expected [N, Q, H, W]", s)
	}
	n, q, hw = s[0], s[1], s[2]*s[3]
	st, p := k.st, n*hw
	if st.K < 1 || len(st.Idx) != p*st.K || len(st.Z) != p*st.K || len(st.W) != p {
		return 0, 0, 0, fmt.Errorf("pretext: colorization loss: %d bins per target, %d indices, %d soft weights, %d pixel weights; expected >= 1, %d, %d, %d for logits %v",
			st.K, len(st.Idx), len(st.Z), len(st.W), p*st.K, p*st.K, p, s)
	}
	for i, b := range st.Idx {
		if b < 0 || int(b) >= q {
			return 0, 0, 0, fmt.Errorf("pretext: colorization loss: target %d (pixel %d) is bin %d, expected [0, %d)", i, i/st.K, b, q)
		}
	}
	return n, q, hw, nil
}

// colorSoftmax writes the softmax over the q bins of pixel j of image i
// into prob [q] and returns the index of the largest logit.
func colorSoftmax[T float32 | float64](x []T, prob []float64, i, j, q, hw int) int {
	base := i*q*hw + j
	best, mx := 0, math.Inf(-1)
	for c := 0; c < q; c++ {
		if v := float64(x[base+c*hw]); v > mx {
			best, mx = c, v
		}
	}
	var sum float64
	for c := 0; c < q; c++ {
		prob[c] = math.Exp(float64(x[base+c*hw]) - mx)
		sum += prob[c]
	}
	for c := range prob {
		prob[c] /= sum
	}
	return best
}

func colorForward[T float32 | float64](x []T, st *colorTarget, n, q, hw int) float64 {
	prob := make([]float64, q)
	var loss float64
	st.Hits, st.Count = 0, n*hw
	for i := 0; i < n; i++ {
		for j := 0; j < hw; j++ {
			p := i*hw + j
			if colorSoftmax(x, prob, i, j, q, hw) == int(st.Idx[p*st.K]) {
				st.Hits++
			}
			var ce float64
			for k := 0; k < st.K; k++ {
				ce -= float64(st.Z[p*st.K+k]) * math.Log(math.Max(prob[st.Idx[p*st.K+k]], 1e-300))
			}
			loss += float64(st.W[p]) * ce
		}
	}
	return loss / float64(n*hw)
}

func (k *colorCE) forward(what string, x *tensor.Dense) (loss float64, err error) {
	n, q, hw, err := k.check(x)
	if err != nil {
		return 0, err
	}
	err = floats(what, x.Dtype(),
		func() { loss = colorForward(x.Float32s(), k.st, n, q, hw) },
		func() { loss = colorForward(x.Float64s(), k.st, n, q, hw) })
	return loss, err
}

func colorBackward[T float32 | float64](x, dx []T, st *colorTarget, n, q, hw int, seed float64) {
	prob := make([]float64, q)
	scale := seed / float64(n*hw)
	for i := 0; i < n; i++ {
		for j := 0; j < hw; j++ {
			p := i*hw + j
			colorSoftmax(x, prob, i, j, q, hw)
			for k := 0; k < st.K; k++ {
				prob[st.Idx[p*st.K+k]] -= float64(st.Z[p*st.K+k])
			}
			w := scale * float64(st.W[p])
			base := i*q*hw + j
			for c := 0; c < q; c++ {
				dx[base+c*hw] = T(w * prob[c])
			}
		}
	}
}

func (k *colorCE) backward(what string, x *tensor.Dense, seed float64, buf **tensor.Dense) (*tensor.Dense, error) {
	n, q, hw, err := k.check(x)
	if err != nil {
		return nil, err
	}
	dx := ops.Reuse(buf, x.Dtype(), false, x.Shape()...)
	err = floats(what, x.Dtype(),
		func() { colorBackward(x.Float32s(), dx.Float32s(), k.st, n, q, hw, seed) },
		func() { colorBackward(x.Float64s(), dx.Float64s(), k.st, n, q, hw, seed) })
	return dx, err
}
