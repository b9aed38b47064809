// Package dense trains and scores frozen-feature dense probes: a per-pixel
// linear segmentation head and a CenterNet-style detection head (Zhou et
// al. 2019, "Objects as Points") on stage feature maps [C, h, w] of a
// frozen backbone, in plain Go (heads small enough that no autodiff is
// needed: each gradient is written out and checked against finite
// differences in the tests). It imports no training stack.
package dense

import (
	"fmt"
	"math"
	"math/rand"
)

// Maps is a stack of feature maps [N, C, H, W] in C order.
type Maps struct {
	N, C, H, W int
	Data       []float32
}

// At returns map i, [C, H, W].
func (m *Maps) At(i int) []float32 {
	n := m.C * m.H * m.W
	return m.Data[i*n : (i+1)*n]
}

// Check reports a shape that does not match the data.
func (m *Maps) Check(what string) error {
	if m.N < 0 || m.C <= 0 || m.H <= 0 || m.W <= 0 || len(m.Data) != m.N*m.C*m.H*m.W {
		return fmt.Errorf("dense: %s: maps [%d, %d, %d, %d] with %d values", what, m.N, m.C, m.H, m.W, len(m.Data))
	}
	return nil
}

// Standardize computes per-channel mean and standard deviation over every
// position of the maps in rows (train statistics; std floored at 1e-6).
func Standardize(m *Maps, rows []int) (mean, std []float32) {
	mean, std = make([]float32, m.C), make([]float32, m.C)
	hw := m.H * m.W
	for c := 0; c < m.C; c++ {
		var s, s2 float64
		for _, i := range rows {
			for _, v := range m.At(i)[c*hw : (c+1)*hw] {
				s += float64(v)
				s2 += float64(v) * float64(v)
			}
		}
		n := float64(len(rows) * hw)
		mu := s / n
		mean[c] = float32(mu)
		std[c] = float32(math.Max(math.Sqrt(math.Max(s2/n-mu*mu, 0)), 1e-6))
	}
	return mean, std
}

// Apply standardises every map in place with mean and std.
func Apply(m *Maps, mean, std []float32) {
	hw := m.H * m.W
	for i := 0; i < m.N; i++ {
		x := m.At(i)
		for c := 0; c < m.C; c++ {
			mu, inv := mean[c], 1/std[c]
			for k := c * hw; k < (c+1)*hw; k++ {
				x[k] = (x[k] - mu) * inv
			}
		}
	}
}

// Taps are bilinear interpolation taps from a grid of In cells to one of
// Out cells along one axis, as PyTorch's interpolate(mode="bilinear",
// align_corners=False): output cell o reads input cells I0[o] and I0[o]+D[o]
// (D is 0 or 1) with weights 1-F[o] and F[o].
type Taps struct {
	I0, D []int
	F     []float32
}

// NewTaps builds the taps from in cells to out cells.
func NewTaps(in, out int) Taps {
	t := Taps{I0: make([]int, out), D: make([]int, out), F: make([]float32, out)}
	scale := float64(in) / float64(out)
	for o := 0; o < out; o++ {
		src := math.Max((float64(o)+0.5)*scale-0.5, 0)
		i0 := int(src)
		if i0 > in-1 {
			i0 = in - 1
		}
		t.I0[o] = i0
		if i0 < in-1 {
			t.D[o] = 1
		}
		t.F[o] = float32(src - float64(i0))
		if t.D[o] == 0 {
			t.F[o] = 0
		}
	}
	return t
}

// Upsample resamples k planes [k, h, w] to [k, oh, ow] bilinearly.
func Upsample(x []float32, k, h, w, oh, ow int) []float32 {
	ty, tx := NewTaps(h, oh), NewTaps(w, ow)
	out := make([]float32, k*oh*ow)
	for c := 0; c < k; c++ {
		p := x[c*h*w : (c+1)*h*w]
		o := out[c*oh*ow : (c+1)*oh*ow]
		for y := 0; y < oh; y++ {
			r0, r1, fy := ty.I0[y]*w, (ty.I0[y]+ty.D[y])*w, ty.F[y]
			for xx := 0; xx < ow; xx++ {
				c0, c1, fx := tx.I0[xx], tx.I0[xx]+tx.D[xx], tx.F[xx]
				top := p[r0+c0]*(1-fx) + p[r0+c1]*fx
				bot := p[r1+c0]*(1-fx) + p[r1+c1]*fx
				o[y*ow+xx] = top*(1-fy) + bot*fy
			}
		}
	}
	return out
}

// adam is the Adam optimiser (Kingma & Ba 2015) on one flat parameter
// vector, with decoupled nothing: the caller's gradient includes its L2.
type adam struct {
	lr, b1, b2, eps float64
	m, v            []float64
	t               int
}

func newAdam(n int, lr float64) *adam {
	return &adam{lr: lr, b1: 0.9, b2: 0.999, eps: 1e-8, m: make([]float64, n), v: make([]float64, n)}
}

func (a *adam) step(x []float32, g []float64) {
	a.t++
	c1 := 1 - math.Pow(a.b1, float64(a.t))
	c2 := 1 - math.Pow(a.b2, float64(a.t))
	for i, gi := range g {
		a.m[i] = a.b1*a.m[i] + (1-a.b1)*gi
		a.v[i] = a.b2*a.v[i] + (1-a.b2)*gi*gi
		x[i] -= float32(a.lr * (a.m[i] / c1) / (math.Sqrt(a.v[i]/c2) + a.eps))
	}
}

// Bootstrap resamples n test items with replacement reps times (seeded)
// and returns the 2.5% and 97.5% percentiles of stat over the resamples.
func Bootstrap(n, reps int, seed int64, stat func(idx []int) float64) [2]float64 {
	if n == 0 || reps <= 0 {
		return [2]float64{math.NaN(), math.NaN()}
	}
	rng := rand.New(rand.NewSource(seed))
	vals := make([]float64, 0, reps)
	idx := make([]int, n)
	for r := 0; r < reps; r++ {
		for i := range idx {
			idx[i] = rng.Intn(n)
		}
		if v := stat(idx); !math.IsNaN(v) {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return [2]float64{math.NaN(), math.NaN()}
	}
	sortFloats(vals)
	q := func(p float64) float64 { return vals[int(math.Round(p*float64(len(vals)-1)))] }
	return [2]float64{q(0.025), q(0.975)}
}
