package ops

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// upsampleRef follows ONNX Resize's reference implementation one output
// cell at a time: nearest reads x[floor(o/f)] (asymmetric, floor); linear
// maps o to the input coordinate (o+0.5)/f - 0.5 (half_pixel), takes its
// floor i and ratio r, and mixes the neighbours i and i+1 of the
// edge-padded input with weights 1-r and r.
func upsampleRef(x []float64, N, C, H, W, fh, fw int, mode string) []float64 {
	OH, OW := H*fh, W*fw
	clampAt := func(i, n int) int { return min(max(i, 0), n-1) }
	type tap struct {
		i int
		w float64
	}
	taps := func(o, f, n int) []tap {
		if mode == UpsampleNearest {
			return []tap{{o / f, 1}}
		}
		s := (float64(o)+0.5)/float64(f) - 0.5
		i := math.Floor(s)
		r := s - i
		return []tap{{clampAt(int(i), n), 1 - r}, {clampAt(int(i)+1, n), r}}
	}
	y := make([]float64, N*C*OH*OW)
	for p := 0; p < N*C; p++ {
		for oy := 0; oy < OH; oy++ {
			for ox := 0; ox < OW; ox++ {
				var v float64
				for _, a := range taps(oy, fh, H) {
					for _, b := range taps(ox, fw, W) {
						v += a.w * b.w * x[(p*H+a.i)*W+b.i]
					}
				}
				y[(p*OH+oy)*OW+ox] = v
			}
		}
	}
	return y
}

type upCase struct{ n, c, h, w, fh, fw int }

var upCases = []upCase{
	{2, 3, 3, 4, 2, 2},
	{1, 2, 4, 3, 3, 3},
	{2, 1, 3, 3, 2, 3},
	{1, 2, 1, 3, 4, 1}, // one input row: every tap hits the edge
	{1, 1, 2, 2, 1, 1}, // identity
	{2, 2, 1, 1, 3, 2}, // one pixel
}

// The op, in float64 and float32, run twice per instance (reused output
// buffers), agrees with the per-cell ONNX reference.
func TestUpsample2DMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(21))
	for _, mode := range []string{UpsampleNearest, UpsampleBilinear} {
		for _, c := range upCases {
			op := &upsample{base: newBase("up"), fh: c.fh, fw: c.fw, mode: mode}
			for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
				for rep := 0; rep < 2; rep++ {
					x := randDense(rng, c.n, c.c, c.h, c.w)
					want := upsampleRef(x.Float64s(), c.n, c.c, c.h, c.w, c.fh, c.fw, mode)
					tol := 1e-14
					if dt == tensor.Float32 {
						x, tol = to32(x), 1e-6
					}
					y, err := op.Do(x)
					if err != nil {
						t.Fatalf("%s %+v: %v", mode, c, err)
					}
					if s := y.Shape(); !s.Eq(tensor.Shape{c.n, c.c, c.h * c.fh, c.w * c.fw}) {
						t.Fatalf("%s %+v: shape %v", mode, c, s)
					}
					if e := maxRelErr(floats(t, y), want); e > tol {
						t.Errorf("%s %+v %v run %d: relative error %.3g (tolerance %g)", mode, c, dt, rep, e, tol)
					}
				}
			}
		}
	}
}

// Bilinear upsampling reproduces a linear ramp a*i + b*j + c exactly at
// each output cell's source coordinate, clamped to [0, n-1] at the border.
func TestUpsample2DBilinearRamp(t *testing.T) {
	const H, W, f = 4, 5, 4
	const a, b, c = 0.75, -1.5, 2.0
	x := newDense(tensor.Float64, 1, 1, H, W)
	for i := 0; i < H; i++ {
		for j := 0; j < W; j++ {
			x.Float64s()[i*W+j] = a*float64(i) + b*float64(j) + c
		}
	}
	y, err := (&upsample{base: newBase("up"), fh: f, fw: f, mode: UpsampleBilinear}).Do(x)
	if err != nil {
		t.Fatal(err)
	}
	src := func(o, n int) float64 { return math.Min(math.Max((float64(o)+0.5)/f-0.5, 0), float64(n-1)) }
	for oy := 0; oy < H*f; oy++ {
		for ox := 0; ox < W*f; ox++ {
			want := a*src(oy, H) + b*src(ox, W) + c
			if got := y.(*tensor.Dense).Float64s()[oy*W*f+ox]; math.Abs(got-want) > 1e-12 {
				t.Fatalf("y[%d, %d] = %v, expected %v", oy, ox, got, want)
			}
		}
	}
}

func TestUpsample2DGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(22))
	for _, mode := range []string{UpsampleNearest, UpsampleBilinear} {
		for _, c := range upCases {
			x := randDense(rng, c.n, c.c, c.h, c.w)
			gradCheck(t, fmt.Sprintf("upsample %s %+v", mode, c), []*tensor.Dense{x}, func(n []*G.Node) (*G.Node, error) {
				return Upsample2DHW(n[0], c.fh, c.fw, mode)
			})
		}
	}
	// Resize-then-convolve, the alternative decoder layer.
	x, w := randDense(rng, 1, 2, 3, 3), randDense(rng, 2, 2, 3, 3)
	gradCheck(t, "bilinear upsample + conv", []*tensor.Dense{x, w}, func(n []*G.Node) (*G.Node, error) {
		h, err := Upsample2D(n[0], 2, UpsampleBilinear)
		if err != nil {
			return nil, err
		}
		return Conv2D(h, n[1], 1, 1)
	})
}

// The gradient op is the adjoint of the reference upsampling:
// <up(x), dy> = <x, grad(dy)> for random x and dy, in float64 and float32,
// each op instance run twice (a stale reused buffer shows).
func TestUpsample2DGradIsAdjoint(t *testing.T) {
	rng := rand.New(rand.NewSource(23))
	for _, mode := range []string{UpsampleNearest, UpsampleBilinear} {
		for _, c := range upCases {
			for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
				op := &upsampleGrad{base: newBase("g"), fh: c.fh, fw: c.fw, mode: mode, xShape: tensor.Shape{c.n, c.c, c.h, c.w}}
				for rep := 0; rep < 2; rep++ {
					x, dy := randDense(rng, c.n, c.c, c.h, c.w), randDense(rng, c.n, c.c, c.h*c.fh, c.w*c.fw)
					var lhs, rhs, scale float64
					for i, v := range upsampleRef(x.Float64s(), c.n, c.c, c.h, c.w, c.fh, c.fw, mode) {
						lhs += v * dy.Float64s()[i]
						scale += math.Abs(v * dy.Float64s()[i])
					}
					in, tol := dy, 1e-12
					if dt == tensor.Float32 {
						in, tol = to32(dy), 1e-6
					}
					dx, err := op.Do(in)
					if err != nil {
						t.Fatal(err)
					}
					for i, v := range floats(t, dx) {
						rhs += v * x.Float64s()[i]
					}
					if math.Abs(lhs-rhs) > tol*scale {
						t.Errorf("%s %+v %v run %d: <up(x), dy> = %.12g, <x, grad(dy)> = %.12g", mode, c, dt, rep, lhs, rhs)
					}
				}
			}
		}
	}
}

func TestUpsample2DErrors(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(1, 2, 3, 3), G.WithName("x"))
	x3 := G.NewTensor(g, tensor.Float64, 3, G.WithShape(2, 3, 3), G.WithName("x3"))
	for _, tc := range []struct {
		name   string
		x      *G.Node
		fh, fw int
		mode   string
	}{
		{"factor 0", x, 0, 0, UpsampleNearest},
		{"negative width factor", x, 2, -1, UpsampleBilinear},
		{"unknown mode", x, 2, 2, "bicubic"},
		{"rank 3", x3, 2, 2, UpsampleNearest},
	} {
		if _, err := Upsample2DHW(tc.x, tc.fh, tc.fw, tc.mode); err == nil {
			t.Errorf("%s: expected an error", tc.name)
		}
	}
	if _, err := Upsample2D(x, 0, UpsampleNearest); err == nil {
		t.Error("Upsample2D factor 0: expected an error")
	}
}
