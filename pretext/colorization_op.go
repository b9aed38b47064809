package pretext

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"sync/atomic"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
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

var colorSeq atomic.Uint64

// colorCE is the class-rebalanced multinomial cross-entropy of Zhang,
// Isola & Efros, "Colorful Image Colorization" (ECCV 2016), eq. 2 and 3,
// averaged over pixels: for logits x [N, Q, H, W] (Q bins; pixel p =
// (n, y, x)) with ŷ_p = softmax over q of x[n, :, y, x],
//
//	L = −(1/P) Σ_p W_p Σ_k Z[p,k] log ŷ_p(Idx[p,k])
//
// and dL/dx[n,q,y,x] = (W_p / P) (ŷ_p(q) − Σ_k Z[p,k] [Idx[p,k] = q]).
// Works on float32 and float64 (sums in float64).
type colorCE struct {
	id uint64
	st *colorTarget
}

// colorLoss applies colorCE to logits [N, Q, H, W] against st.
func colorLoss(logits *G.Node, st *colorTarget) (*G.Node, error) {
	if logits.Dims() != 4 {
		return nil, fmt.Errorf("pretext: colorization loss: logits %v, expected [N, Q, H, W]", logits.Shape())
	}
	return G.ApplyOp(&colorCE{id: colorSeq.Add(1), st: st}, logits)
}

func (op *colorCE) Arity() int { return 1 }
func (op *colorCE) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 4, Of: a}, a)
}
func (op *colorCE) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }
func (op *colorCE) ReturnsPtr() bool                               { return false }
func (op *colorCE) CallsExtern() bool                              { return false }
func (op *colorCE) OverwritesInput() int                           { return -1 }
func (op *colorCE) WriteHash(h hash.Hash)                          { fmt.Fprintf(h, "ColorCE#%d", op.id) }
func (op *colorCE) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
func (op *colorCE) String() string { return "ColorCE" }

// check verifies the logits against the target buffers and returns N, Q
// and H*W.
func (op *colorCE) check(x *tensor.Dense) (n, q, hw int, err error) {
	s := x.Shape()
	if x.Dims() != 4 {
		return 0, 0, 0, fmt.Errorf("pretext: colorization loss: logits %v, expected [N, Q, H, W]", s)
	}
	n, q, hw = s[0], s[1], s[2]*s[3]
	st, p := op.st, n*hw
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

func (op *colorCE) Do(vs ...G.Value) (G.Value, error) {
	x, ok := vs[0].(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("pretext: colorization loss: logits are %T, expected a dense tensor", vs[0])
	}
	n, q, hw, err := op.check(x)
	if err != nil {
		return nil, err
	}
	switch x.Dtype() {
	case tensor.Float32:
		return G.NewF32(float32(colorForward(x.Float32s(), op.st, n, q, hw))), nil
	case tensor.Float64:
		return G.NewF64(colorForward(x.Float64s(), op.st, n, q, hw)), nil
	}
	return nil, fmt.Errorf("pretext: colorization loss: dtype %v, expected float32 or float64", x.Dtype())
}

func (op *colorCE) DiffWRT(int) []bool { return []bool{true} }
func (op *colorCE) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&colorCEGrad{fwd: op}, in[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// colorCEGrad computes dL/dx [N, Q, H, W] from (x, dL).
type colorCEGrad struct {
	fwd *colorCE
	buf *tensor.Dense
}

func (op *colorCEGrad) Arity() int { return 2 }
func (op *colorCEGrad) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 4, Of: a}, a, G.TensorType{Dims: 4, Of: a})
}
func (op *colorCEGrad) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	s, ok := ns[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("pretext: colorization loss gradient: input shape %v", ns[0])
	}
	return s.Clone(), nil
}
func (op *colorCEGrad) ReturnsPtr() bool      { return false }
func (op *colorCEGrad) CallsExtern() bool     { return false }
func (op *colorCEGrad) OverwritesInput() int  { return -1 }
func (op *colorCEGrad) WriteHash(h hash.Hash) { fmt.Fprintf(h, "ColorCEGrad#%d", op.fwd.id) }
func (op *colorCEGrad) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
func (op *colorCEGrad) String() string { return "ColorCEGrad" }

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

func (op *colorCEGrad) Do(vs ...G.Value) (G.Value, error) {
	x, ok := vs[0].(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("pretext: colorization loss gradient: logits are %T, expected a dense tensor", vs[0])
	}
	seed, err := gradSeed("colorization loss gradient", vs[1])
	if err != nil {
		return nil, err
	}
	n, q, hw, err := op.fwd.check(x)
	if err != nil {
		return nil, err
	}
	dx := reuse(&op.buf, x.Dtype(), false, x.Shape()...)
	switch x.Dtype() {
	case tensor.Float32:
		colorBackward(x.Float32s(), dx.Float32s(), op.fwd.st, n, q, hw, seed)
	case tensor.Float64:
		colorBackward(x.Float64s(), dx.Float64s(), op.fwd.st, n, q, hw, seed)
	default:
		return nil, fmt.Errorf("pretext: colorization loss gradient: dtype %v, expected float32 or float64", x.Dtype())
	}
	return dx, nil
}
