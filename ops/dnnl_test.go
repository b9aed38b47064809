package ops

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"sync"
	"testing"

	"gorgonia.org/tensor"
)

// The float32 convolution kernels of this build (oneDNN by default,
// im2col + GEMM with -tags nodnnl or purego) are checked against the Go
// im2col path in float64, which the finite-difference tests of grad_test.go
// verify, and against the Go float32 path directly.

// convCase is one convolution: x [N, C, H, W], O output channels, K x K
// kernel, stride S, padding P.
type convCase struct {
	name                   string
	N, C, H, W, O, K, S, P int
}

func (c convCase) geom() ConvGeom       { return ConvGeom{c.K, c.S, c.P} }
func (c convCase) xShape() tensor.Shape { return tensor.Shape{c.N, c.C, c.H, c.W} }
func (c convCase) sizes() (xn, wn, yn int) {
	g := c.geom()
	return c.N * c.C * c.H * c.W, c.O * c.C * c.K * c.K, c.N * c.O * g.Out(c.H) * g.Out(c.W)
}

// flops is the multiply-add count times two of one pass.
func (c convCase) flops() float64 {
	g := c.geom()
	return 2 * float64(c.N) * float64(c.O) * float64(g.Out(c.H)*g.Out(c.W)) * float64(c.C*c.K*c.K)
}

// convCases holds resnet18c's and resnet50's convolution shapes (spatial
// size reduced where large, so that the float64 reference stays fast) and
// odd ones: channels that are no multiple of 16, non-square inputs,
// strides that skip input.
var convCases = []convCase{
	{"r18c stem", 2, 3, 32, 32, 64, 3, 1, 1},
	{"r18c l1", 2, 64, 32, 32, 64, 3, 1, 1},
	{"r18c l2 down3x3", 2, 64, 32, 32, 128, 3, 2, 1},
	{"r18c l2 down1x1", 2, 64, 32, 32, 128, 1, 2, 0},
	{"r18c l2", 2, 128, 16, 16, 128, 3, 1, 1},
	{"r18c l3 down3x3", 2, 128, 16, 16, 256, 3, 2, 1},
	{"r18c l3 down1x1", 2, 128, 16, 16, 256, 1, 2, 0},
	{"r18c l3", 2, 256, 8, 8, 256, 3, 1, 1},
	{"r18c l4 down3x3", 2, 256, 8, 8, 512, 3, 2, 1},
	{"r18c l4 down1x1", 2, 256, 8, 8, 512, 1, 2, 0},
	{"r18c l4", 2, 512, 4, 4, 512, 3, 1, 1},
	{"r50 stem 7x7", 1, 3, 48, 40, 64, 7, 2, 3},
	{"r50 reduce", 2, 64, 14, 14, 64, 1, 1, 0},
	{"r50 3x3", 2, 64, 14, 14, 64, 3, 1, 1},
	{"r50 expand", 2, 64, 14, 14, 256, 1, 1, 0},
	{"r50 reduce256", 2, 256, 14, 14, 64, 1, 1, 0},
	{"r50 3x3 s2", 2, 128, 14, 14, 128, 3, 2, 1},
	{"r50 down s2", 2, 256, 14, 14, 512, 1, 2, 0},
	{"r50 l4 reduce", 1, 1024, 7, 7, 256, 1, 1, 0},
	{"r50 l4 expand", 1, 512, 7, 7, 2048, 1, 1, 0},
	{"r50 l4 down", 1, 1024, 14, 14, 2048, 1, 2, 0},
	{"r50 l4 3x3 s2", 1, 512, 14, 14, 512, 3, 2, 1},
	{"odd 3x3 s2 p0", 3, 5, 9, 7, 6, 3, 2, 0},
	{"odd 5x5 p2", 1, 4, 6, 5, 3, 5, 1, 2},
	{"odd 3x3 s3", 2, 3, 5, 5, 7, 3, 3, 1},
	{"odd 1x1 p1", 2, 17, 5, 6, 33, 1, 1, 1},
	{"odd unused rows", 1, 3, 10, 8, 5, 3, 2, 1},
	{"odd kernel = input", 2, 8, 3, 3, 4, 3, 1, 0},
}

func randF32(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// relErr is the largest absolute difference between got and want divided
// by the largest magnitude in want: the normwise relative error, which
// (unlike an elementwise ratio) stays meaningful for outputs near zero.
func relErr[T, U Float](got []T, want []U) float64 {
	var maxDiff, maxRef float64
	for i, w := range want {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got[i])-float64(w)))
		maxRef = math.Max(maxRef, math.Abs(float64(w)))
	}
	if maxRef == 0 {
		return maxDiff
	}
	return maxDiff / maxRef
}

// convPasses holds the three passes of one convolution case.
type convPasses[T Float] struct{ y, dx, dw []T }

func runConv32(t testing.TB, c convCase, x, w, dy []float32) convPasses[float32] {
	t.Helper()
	xn, wn, yn := c.sizes()
	r := convPasses[float32]{make([]float32, yn), make([]float32, xn), make([]float32, wn)}
	if convOverwrites {
		// The passes must overwrite every output element (convBwdData
		// does not clear dx first): start from NaN.
		for _, o := range [][]float32{r.y, r.dx, r.dw} {
			for i := range o {
				o[i] = float32(math.NaN())
			}
		}
	}
	if err := conv32Forward(x, w, r.y, c.xShape(), c.O, c.geom()); err != nil {
		t.Fatalf("%s: forward: %v", c.name, err)
	}
	if err := conv32BackwardData(w, dy, r.dx, c.xShape(), c.O, c.geom()); err != nil {
		t.Fatalf("%s: backward data: %v", c.name, err)
	}
	if err := conv32BackwardWeight(x, dy, r.dw, c.xShape(), c.O, c.geom()); err != nil {
		t.Fatalf("%s: backward weights: %v", c.name, err)
	}
	return r
}

func runConvGo[T Float](c convCase, x, w, dy []T) convPasses[T] {
	xn, wn, yn := c.sizes()
	r := convPasses[T]{make([]T, yn), make([]T, xn), make([]T, wn)}
	convForward(x, w, r.y, c.xShape(), c.O, c.geom())
	convBackwardData(w, dy, r.dx, c.xShape(), c.O, c.geom())
	convBackwardWeight(x, dy, r.dw, c.xShape(), c.O, c.geom())
	return r
}

func TestConv32MatchesGoPath(t *testing.T) { checkConvMatchesGo(t, 1e-4) }

// checkConvMatchesGo checks the three passes of every case in convCases
// against the Go paths (float32 and float64) to a normwise relative error
// of tol, and returns the largest error against float64.
func checkConvMatchesGo(t *testing.T, tol float64) (worst float64) {
	rng := rand.New(rand.NewSource(11))
	t.Logf("float32 convolutions: %s", ConvBackend)
	impls := map[string]int{}
	defer func() { t.Logf("kernels checked (pass: count): %v", impls) }()
	for _, c := range convCases {
		for pass, name := range []string{"forward", "backward data", "backward weights"} {
			if impl, err := dnnlConvImpl(pass, c.xShape(), c.O, c.geom()); err == nil {
				impls[name+": "+strings.Fields(impl)[0]]++
			}
		}
		xn, wn, yn := c.sizes()
		x, w, dy := randF32(rng, xn), randF32(rng, wn), randF32(rng, yn)
		fast := runConv32(t, c, x, w, dy)
		go32 := runConvGo(c, x, w, dy)
		ref := runConvGo(c, toF64(x), toF64(w), toF64(dy))
		for _, p := range []struct {
			pass       string
			fast, go32 []float32
			ref        []float64
		}{
			{"forward", fast.y, go32.y, ref.y},
			{"backward data", fast.dx, go32.dx, ref.dx},
			{"backward weights", fast.dw, go32.dw, ref.dw},
		} {
			if e := relErr(p.fast, p.go32); e > tol {
				t.Errorf("%s %+v: %s: %s vs Go float32 path: relative error %.3g > %g", c.name, c, p.pass, ConvBackend, e, tol)
			}
			e := relErr(p.fast, p.ref)
			if e > tol {
				t.Errorf("%s %+v: %s: %s vs Go float64 path: relative error %.3g > %g", c.name, c, p.pass, ConvBackend, e, tol)
			}
			worst = math.Max(worst, e)
		}
	}
	return worst
}

// TestConv32Direct checks the fast kernels against a direct loop over the
// definition y[n,o,i,j] = sum_{c,ky,kx} x[n,c,i*S-P+ky,j*S-P+kx] w[o,c,ky,kx]
// for one small case, independent of im2col.
func TestConv32Direct(t *testing.T) {
	c := convCase{"direct", 2, 3, 7, 6, 4, 3, 2, 1}
	rng := rand.New(rand.NewSource(12))
	xn, wn, yn := c.sizes()
	x, w, dy := randF32(rng, xn), randF32(rng, wn), randF32(rng, yn)
	got := runConv32(t, c, x, w, dy)
	g := c.geom()
	OH, OW := g.Out(c.H), g.Out(c.W)
	y, dx, dw := make([]float64, yn), make([]float64, xn), make([]float64, wn)
	for n := 0; n < c.N; n++ {
		for o := 0; o < c.O; o++ {
			for i := 0; i < OH; i++ {
				for j := 0; j < OW; j++ {
					yi := ((n*c.O+o)*OH+i)*OW + j
					for ci := 0; ci < c.C; ci++ {
						for ky := 0; ky < c.K; ky++ {
							for kx := 0; kx < c.K; kx++ {
								iy, ix := i*c.S-c.P+ky, j*c.S-c.P+kx
								if iy < 0 || iy >= c.H || ix < 0 || ix >= c.W {
									continue
								}
								xi := ((n*c.C+ci)*c.H+iy)*c.W + ix
								wi := ((o*c.C+ci)*c.K+ky)*c.K + kx
								y[yi] += float64(x[xi]) * float64(w[wi])
								dx[xi] += float64(dy[yi]) * float64(w[wi])
								dw[wi] += float64(dy[yi]) * float64(x[xi])
							}
						}
					}
				}
			}
		}
	}
	for _, p := range []struct {
		pass string
		got  []float32
		want []float64
	}{{"forward", got.y, y}, {"backward data", got.dx, dx}, {"backward weights", got.dw, dw}} {
		if e := relErr(p.got, p.want); e > 1e-5 {
			t.Errorf("%s: relative error %.3g against the direct loop", p.pass, e)
		}
	}
}

// TestConv32Deterministic: the same inputs give bit-identical outputs,
// also after other shapes have used the shared work buffers, and after
// CloseDNNL (twice) has dropped every primitive (training resume relies on
// bit-identical steps).
func TestConv32Deterministic(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	a, b := convCases[2], convCases[7]
	xn, wn, yn := a.sizes()
	x, w, dy := randF32(rng, xn), randF32(rng, wn), randF32(rng, yn)
	first := runConv32(t, a, x, w, dy)
	xn, wn, yn = b.sizes()
	runConv32(t, b, randF32(rng, xn), randF32(rng, wn), randF32(rng, yn))
	again := runConv32(t, a, x, w, dy)
	for i := 0; i < 2; i++ {
		if err := CloseDNNL(); err != nil {
			t.Fatalf("CloseDNNL #%d: %v", i+1, err)
		}
	}
	reopened := runConv32(t, a, x, w, dy)
	for _, r := range []convPasses[float32]{again, reopened} {
		for _, p := range []struct {
			pass      string
			got, want []float32
		}{{"forward", r.y, first.y}, {"backward data", r.dx, first.dx}, {"backward weights", r.dw, first.dw}} {
			for i := range p.want {
				if math.Float32bits(p.got[i]) != math.Float32bits(p.want[i]) {
					t.Fatalf("%s: element %d: %v, first run gave %v", p.pass, i, p.got[i], p.want[i])
				}
			}
		}
	}
}

// TestConv32Concurrent: convolutions called from several goroutines at once
// (serialised onto one oneDNN thread) give the results of serial calls.
func TestConv32Concurrent(t *testing.T) { checkConcurrent(t, func() {}) }

// checkConcurrent computes serial results, then calls switchMode, then
// checks that the same convolutions called from several goroutines at
// once give them bit for bit.
func checkConcurrent(t *testing.T, switchMode func()) {
	rng := rand.New(rand.NewSource(14))
	cases := []convCase{convCases[1], convCases[3], convCases[12], convCases[22]}
	type io struct {
		x, w, dy []float32
		want     convPasses[float32]
	}
	ios := make([]io, len(cases))
	for i, c := range cases {
		xn, wn, yn := c.sizes()
		ios[i] = io{x: randF32(rng, xn), w: randF32(rng, wn), dy: randF32(rng, yn)}
		ios[i].want = runConv32(t, c, ios[i].x, ios[i].w, ios[i].dy)
	}
	switchMode()
	var wg sync.WaitGroup
	errs := make([]error, len(cases)*3)
	for r := 0; r < 3; r++ {
		for i, c := range cases {
			wg.Add(1)
			go func(k int, c convCase, in io) {
				defer wg.Done()
				xn, wn, yn := c.sizes()
				y, dx, dw := make([]float32, yn), make([]float32, xn), make([]float32, wn)
				if err := conv32Forward(in.x, in.w, y, c.xShape(), c.O, c.geom()); err != nil {
					errs[k] = err
					return
				}
				if err := conv32BackwardData(in.w, in.dy, dx, c.xShape(), c.O, c.geom()); err != nil {
					errs[k] = err
					return
				}
				if err := conv32BackwardWeight(in.x, in.dy, dw, c.xShape(), c.O, c.geom()); err != nil {
					errs[k] = err
					return
				}
				for j, p := range [][2][]float32{{y, in.want.y}, {dx, in.want.dx}, {dw, in.want.dw}} {
					for e := range p[1] {
						if p[0][e] != p[1][e] {
							errs[k] = fmt.Errorf("%s pass %d element %d: %v, serial %v", c.name, j, e, p[0][e], p[1][e])
							return
						}
					}
				}
			}(r*len(cases)+i, c, ios[i])
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestConv32WrongSizes: a buffer of the wrong length is an error, not a
// crash or a silent partial result.
func TestConv32WrongSizes(t *testing.T) {
	if ConvBackend != "onednn" {
		t.Skipf("float32 convolutions are %s: the Go kernels trust the op's shape checks", ConvBackend)
	}
	c := convCases[22]
	xn, wn, yn := c.sizes()
	err := conv32Forward(make([]float32, xn), make([]float32, wn), make([]float32, yn-1), c.xShape(), c.O, c.geom())
	if err == nil {
		t.Fatal("forward with a short output buffer: no error")
	}
}

// TestConv2DOpsFloat32 runs the Gorgonia ops' Do (the dispatch in conv.go)
// in float32 and float64 and compares all three passes.
func TestConv2DOpsFloat32(t *testing.T) {
	rng := rand.New(rand.NewSource(15))
	c := convCases[4]
	xn, wn, yn := c.sizes()
	x, w, dy := randF32(rng, xn), randF32(rng, wn), randF32(rng, yn)
	g := c.geom()
	ys := tensor.Shape{c.N, c.O, g.Out(c.H), g.Out(c.W)}
	ws := tensor.Shape{c.O, c.C, c.K, c.K}
	fwd := &conv2d{base: newBase("Conv2D"), g: g}
	bd := &convBwdData{base: newBase("Conv2DBwdData"), g: g, xShape: c.xShape()}
	bw := &convBwdWeight{base: newBase("Conv2DBwdWeight"), g: g, wShape: ws}
	run := func(dt tensor.Dtype, x, w, dy any) [3]*tensor.Dense {
		X := tensor.New(tensor.WithShape(c.xShape()...), tensor.WithBacking(x))
		Wt := tensor.New(tensor.WithShape(ws...), tensor.WithBacking(w))
		DY := tensor.New(tensor.WithShape(ys...), tensor.WithBacking(dy))
		var out [3]*tensor.Dense
		for i, f := range []func() (any, error){
			func() (any, error) { return fwd.Do(X, Wt) },
			func() (any, error) { return bd.Do(Wt, DY) },
			func() (any, error) { return bw.Do(X, DY) },
		} {
			v, err := f()
			if err != nil {
				t.Fatalf("%v pass %d: %v", dt, i, err)
			}
			out[i] = v.(*tensor.Dense)
			if out[i].Dtype() != dt {
				t.Fatalf("pass %d: dtype %v, expected %v", i, out[i].Dtype(), dt)
			}
		}
		return out
	}
	f32 := run(tensor.Float32, x, w, dy)
	f64 := run(tensor.Float64, toF64(x), toF64(w), toF64(dy))
	for i := range f32 {
		if !f32[i].Shape().Eq(f64[i].Shape()) {
			t.Fatalf("pass %d: shape %v vs %v", i, f32[i].Shape(), f64[i].Shape())
		}
		if e := relErr(f32[i].Float32s(), f64[i].Float64s()); e > 1e-4 {
			t.Errorf("pass %d: float32 (%s) vs float64: relative error %.3g", i, ConvBackend, e)
		}
	}
}

// TestConv32Winograd checks the passes for which oneDNN picks Winograd
// kernels (F(4x4, 3x3) on AVX-512 at larger shapes: the convolution
// algorithm is left to oneDNN, and training-size ResNet convolutions get
// them) against the float64 Go path, with the tolerance of the other
// kernels. Where the CPU or build has no Winograd kernel for a case, the
// test says so and checks whatever runs.
func TestConv32Winograd(t *testing.T) {
	const tol = 1e-4
	rng := rand.New(rand.NewSource(13))
	for _, c := range []struct {
		convCase
		passes []int
	}{
		{convCase{"wino fwd/bwd-data", 64, 16, 16, 16, 16, 3, 1, 1}, []int{passForward, passBackwardData}},
		{convCase{"wino bwd-weights", 4, 256, 8, 8, 256, 3, 1, 1}, []int{passBackwardWeights}},
	} {
		xn, wn, yn := c.sizes()
		x, w, dy := randF32(rng, xn), randF32(rng, wn), randF32(rng, yn)
		x64, w64, dy64 := toF64(x), toF64(w), toF64(dy)
		for _, pass := range c.passes {
			impl, err := dnnlConvImpl(pass, c.xShape(), c.O, c.geom())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(impl, "wino") {
				t.Logf("%s pass %d: oneDNN runs %q here, not Winograd", c.name, pass, impl)
			}
			var got []float32
			var ref []float64
			switch pass {
			case passForward:
				got, ref = make([]float32, yn), make([]float64, yn)
				err = conv32Forward(x, w, got, c.xShape(), c.O, c.geom())
				convForward(x64, w64, ref, c.xShape(), c.O, c.geom())
			case passBackwardData:
				got, ref = make([]float32, xn), make([]float64, xn)
				err = conv32BackwardData(w, dy, got, c.xShape(), c.O, c.geom())
				convBackwardData(w64, dy64, ref, c.xShape(), c.O, c.geom())
			default:
				got, ref = make([]float32, wn), make([]float64, wn)
				err = conv32BackwardWeight(x, dy, got, c.xShape(), c.O, c.geom())
				convBackwardWeight(x64, dy64, ref, c.xShape(), c.O, c.geom())
			}
			if err != nil {
				t.Fatal(err)
			}
			if e := relErr(got, ref); e > tol {
				t.Errorf("%s pass %d (%s): relative error %.3g vs the float64 path > %g", c.name, pass, impl, e, tol)
			} else {
				t.Logf("%s pass %d (%s): relative error %.3g", c.name, pass, impl, e)
			}
		}
	}
}
