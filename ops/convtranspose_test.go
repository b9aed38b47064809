package ops

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ctGeom is one transposed-convolution test geometry.
type ctGeom struct{ n, cin, cout, h, w, k, s, p, op int }

func (c ctGeom) oh() int { return (c.h-1)*c.s - 2*c.p + c.k + c.op }
func (c ctGeom) ow() int { return (c.w-1)*c.s - 2*c.p + c.k + c.op }

var ctGeoms = []ctGeom{
	{2, 2, 3, 3, 4, 3, 1, 0, 0}, // ONNX's default attributes
	{2, 3, 2, 4, 3, 3, 2, 1, 1}, // 3x3, stride 2, pad 1, output pad 1: exact doubling
	{2, 2, 3, 4, 4, 4, 2, 1, 0}, // DCGAN / context-encoder decoder layer
	{1, 2, 2, 3, 3, 5, 2, 2, 1},
	{2, 3, 2, 3, 3, 1, 1, 0, 0}, // 1x1: the direct (no col2im) path
	{1, 2, 2, 2, 3, 3, 3, 1, 2}, // stride 3, output pad 2
	{1, 1, 2, 3, 3, 2, 2, 0, 0}, // non-overlapping 2x2 windows
	{1, 2, 2, 5, 4, 1, 1, 1, 0}, // padding larger than the kernel crops the border
}

// convTransposeRef is the plain scatter loop of the ONNX ConvTranspose
// definition: every input cell adds x * w[ci, co] into the K x K window at
// (i*s - p, j*s - p) of the output, cells outside dropped.
func convTransposeRef(c ctGeom, x, w []float64) []float64 {
	OH, OW := c.oh(), c.ow()
	y := make([]float64, c.n*c.cout*OH*OW)
	for n := 0; n < c.n; n++ {
		for ci := 0; ci < c.cin; ci++ {
			for i := 0; i < c.h; i++ {
				for j := 0; j < c.w; j++ {
					v := x[((n*c.cin+ci)*c.h+i)*c.w+j]
					for co := 0; co < c.cout; co++ {
						for ky := 0; ky < c.k; ky++ {
							oy := i*c.s - c.p + ky
							if oy < 0 || oy >= OH {
								continue
							}
							for kx := 0; kx < c.k; kx++ {
								ox := j*c.s - c.p + kx
								if ox < 0 || ox >= OW {
									continue
								}
								y[((n*c.cout+co)*OH+oy)*OW+ox] += v * w[((ci*c.cout+co)*c.k+ky)*c.k+kx]
							}
						}
					}
				}
			}
		}
	}
	return y
}

// convTransposeRefGrads gives dL/dx and dL/dw of the scatter loop above for
// an output gradient dy, by gathering over the same index map.
func convTransposeRefGrads(c ctGeom, x, w, dy []float64) (dx, dw []float64) {
	OH, OW := c.oh(), c.ow()
	dx = make([]float64, len(x))
	dw = make([]float64, len(w))
	for n := 0; n < c.n; n++ {
		for ci := 0; ci < c.cin; ci++ {
			for i := 0; i < c.h; i++ {
				for j := 0; j < c.w; j++ {
					xi := ((n*c.cin+ci)*c.h+i)*c.w + j
					for co := 0; co < c.cout; co++ {
						for ky := 0; ky < c.k; ky++ {
							for kx := 0; kx < c.k; kx++ {
								oy, ox := i*c.s-c.p+ky, j*c.s-c.p+kx
								if oy < 0 || oy >= OH || ox < 0 || ox >= OW {
									continue
								}
								g := dy[((n*c.cout+co)*OH+oy)*OW+ox]
								wi := ((ci*c.cout+co)*c.k+ky)*c.k + kx
								dx[xi] += g * w[wi]
								dw[wi] += g * x[xi]
							}
						}
					}
				}
			}
		}
	}
	return dx, dw
}

func to32(d *tensor.Dense) *tensor.Dense {
	v := make([]float32, len(d.Float64s()))
	for i, x := range d.Float64s() {
		v[i] = float32(x)
	}
	return tensor.New(tensor.WithShape(d.Shape()...), tensor.WithBacking(v))
}

func floats(t *testing.T, v G.Value) []float64 {
	t.Helper()
	switch d := v.Data().(type) {
	case []float32:
		out := make([]float64, len(d))
		for i, x := range d {
			out[i] = float64(x)
		}
		return out
	case []float64:
		return append([]float64(nil), d...)
	}
	t.Fatalf("unexpected data %T", v.Data())
	return nil
}

// maxRelErr is max |got - want| over max |want| (1 when want is all zero).
func maxRelErr(got, want []float64) float64 {
	var scale, maxd float64
	for i := range want {
		scale = math.Max(scale, math.Abs(want[i]))
		maxd = math.Max(maxd, math.Abs(got[i]-want[i]))
	}
	return maxd / math.Max(scale, 1e-300)
}

// The forward pass and both gradient passes, in float64 and in float32 (the
// build's conv kernels: oneDNN by default, OpenBLAS with -tags nodnnl, pure
// Go with -tags purego), agree with the scatter loop. Each op instance runs
// twice on different inputs so that a stale reused output buffer shows.
func TestConvTranspose2DMatchesScatterLoop(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	geoms := append([]ctGeom{{2, 32, 16, 8, 8, 4, 2, 1, 0}, {3, 16, 8, 7, 5, 3, 2, 1, 1}}, ctGeoms...)
	for _, c := range geoms {
		fwd := &convTranspose{base: newBase("ct"), g: ConvGeom{c.k, c.s, c.p}, outPad: c.op}
		gx := &convTransposeGradX{base: newBase("ctx"), g: fwd.g, xShape: tensor.Shape{c.n, c.cin, c.h, c.w}}
		gw := &convTransposeGradW{base: newBase("ctw"), g: fwd.g, wShape: tensor.Shape{c.cin, c.cout, c.k, c.k}}
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			for rep := 0; rep < 2; rep++ {
				x, w := randDense(rng, c.n, c.cin, c.h, c.w), randDense(rng, c.cin, c.cout, c.k, c.k)
				dy := randDense(rng, c.n, c.cout, c.oh(), c.ow())
				wantY := convTransposeRef(c, x.Float64s(), w.Float64s())
				wantDx, wantDw := convTransposeRefGrads(c, x.Float64s(), w.Float64s(), dy.Float64s())
				tol := 1e-12
				if dt == tensor.Float32 {
					x, w, dy, tol = to32(x), to32(w), to32(dy), 1e-4
				}
				name := fmt.Sprintf("%+v %v run %d", c, dt, rep)
				y, err := fwd.Do(x, w)
				if err != nil {
					t.Fatalf("%s: forward: %v", name, err)
				}
				if s := y.Shape(); !s.Eq(tensor.Shape{c.n, c.cout, c.oh(), c.ow()}) {
					t.Fatalf("%s: output shape %v", name, s)
				}
				dx, err := gx.Do(w, dy)
				if err != nil {
					t.Fatalf("%s: grad x: %v", name, err)
				}
				dw, err := gw.Do(x, dy)
				if err != nil {
					t.Fatalf("%s: grad w: %v", name, err)
				}
				for _, r := range []struct {
					what      string
					got, want []float64
				}{{"y", floats(t, y), wantY}, {"dx", floats(t, dx), wantDx}, {"dw", floats(t, dw), wantDw}} {
					if e := maxRelErr(r.got, r.want); e > tol {
						t.Errorf("%s: %s differs from the scatter loop by %.3g relative (tolerance %g)", name, r.what, e, tol)
					}
				}
			}
		}
	}
}

func TestConvTranspose2DGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	for _, c := range ctGeoms {
		x, w := randDense(rng, c.n, c.cin, c.h, c.w), randDense(rng, c.cin, c.cout, c.k, c.k)
		gradCheck(t, fmt.Sprintf("conv transpose %+v", c), []*tensor.Dense{x, w}, func(n []*G.Node) (*G.Node, error) {
			return ConvTranspose2D(n[0], n[1], c.s, c.p, c.op)
		})
	}
	c := ctGeoms[1]
	x, w, b := randDense(rng, c.n, c.cin, c.h, c.w), randDense(rng, c.cin, c.cout, c.k, c.k), randDense(rng, c.cout)
	gradCheck(t, "conv transpose + bias", []*tensor.Dense{x, w, b}, func(n []*G.Node) (*G.Node, error) {
		return ConvTranspose2DBias(n[0], n[1], n[2], c.s, c.p, c.op)
	})
}

// A decoder-style composition: ReLU between two transposed convolutions,
// the second fed by two consumers of the first's output.
func TestConvTranspose2DCompositionGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	x, w1, w2 := randDense(rng, 1, 2, 2, 2), randDense(rng, 2, 2, 4, 4), randDense(rng, 2, 1, 3, 3)
	gradCheck(t, "conv transpose stack", []*tensor.Dense{x, w1, w2}, func(n []*G.Node) (*G.Node, error) {
		h, err := ConvTranspose2D(n[0], n[1], 2, 1, 0)
		if err != nil {
			return nil, err
		}
		if h, err = ReLU(h); err != nil {
			return nil, err
		}
		return ConvTranspose2D(h, n[2], 2, 1, 1)
	})
}

// ConvTranspose2D(., w) is the adjoint of Conv2D(., w) for the same stride
// and pad: <Conv2D(y, w), x> = <y, ConvTranspose2D(x, w)> for every
// outputPad that maps back onto x's size.
func TestConvTranspose2DIsAdjointOfConv2D(t *testing.T) {
	rng := rand.New(rand.NewSource(14))
	for _, c := range ctGeoms {
		x, w := randDense(rng, c.n, c.cin, c.h, c.w), randDense(rng, c.cin, c.cout, c.k, c.k)
		y := randDense(rng, c.n, c.cout, c.oh(), c.ow())
		g := G.NewGraph()
		xn := G.NewTensor(g, tensor.Float64, 4, G.WithShape(x.Shape()...), G.WithValue(x))
		wn := G.NewTensor(g, tensor.Float64, 4, G.WithShape(w.Shape()...), G.WithValue(w))
		yn := G.NewTensor(g, tensor.Float64, 4, G.WithShape(y.Shape()...), G.WithValue(y))
		ct, err := ConvTranspose2D(xn, wn, c.s, c.p, c.op)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		cv, err := Conv2D(yn, wn, c.s, c.p)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		m := G.NewTapeMachine(g)
		if err := m.RunAll(); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if !cv.Shape().Eq(x.Shape()) {
			t.Fatalf("%+v: Conv2D maps the transposed output back to %v, expected %v", c, cv.Shape(), x.Shape())
		}
		var lhs, rhs, scale float64
		for i, v := range cv.Value().Data().([]float64) {
			lhs += v * x.Float64s()[i]
			scale += math.Abs(v * x.Float64s()[i])
		}
		for i, v := range ct.Value().Data().([]float64) {
			rhs += v * y.Float64s()[i]
		}
		m.Close()
		if math.Abs(lhs-rhs) > 1e-12*scale {
			t.Errorf("%+v: <conv(y), x> = %.15g, <y, convT(x)> = %.15g", c, lhs, rhs)
		}
	}
}

// A float32 graph run twice with new input values gives the new result
// (output buffers are reused between runs, not stale).
func TestConvTranspose2DGraphReuse(t *testing.T) {
	rng := rand.New(rand.NewSource(15))
	c := ctGeom{2, 8, 4, 5, 5, 4, 2, 1, 0}
	x, w := to32(randDense(rng, c.n, c.cin, c.h, c.w)), to32(randDense(rng, c.cin, c.cout, c.k, c.k))
	g := G.NewGraph()
	xn, wn := constNode(g, x, "x"), constNode(g, w, "w")
	y, err := ConvTranspose2D(xn, wn, c.s, c.p, c.op)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	for rep := 0; rep < 3; rep++ {
		for i := range x.Float32s() {
			x.Float32s()[i] = float32(rng.NormFloat64())
		}
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		want := convTransposeRef(c, floats(t, x), floats(t, w))
		if e := maxRelErr(floats(t, y.Value()), want); e > 1e-4 {
			t.Fatalf("run %d: relative error %.3g", rep, e)
		}
	}
}

func TestConvTranspose2DErrors(t *testing.T) {
	for _, tc := range []struct {
		name         string
		xs, ws       []int
		s, p, outPad int
	}{
		{"output pad equal to stride", []int{1, 2, 3, 3}, []int{2, 1, 3, 3}, 2, 1, 2},
		{"negative output pad", []int{1, 2, 3, 3}, []int{2, 1, 3, 3}, 2, 1, -1},
		{"channel mismatch", []int{1, 3, 3, 3}, []int{2, 1, 3, 3}, 1, 0, 0},
		{"non-square kernel", []int{1, 2, 3, 3}, []int{2, 1, 3, 2}, 1, 0, 0},
		{"zero stride", []int{1, 2, 3, 3}, []int{2, 1, 3, 3}, 0, 0, 0},
		{"negative pad", []int{1, 2, 3, 3}, []int{2, 1, 3, 3}, 1, -1, 0},
		{"empty output", []int{1, 2, 1, 1}, []int{2, 1, 1, 1}, 1, 1, 0},
		{"rank 3", []int{2, 3, 3}, []int{2, 1, 3, 3}, 1, 0, 0},
	} {
		g := G.NewGraph()
		x := G.NewTensor(g, tensor.Float64, len(tc.xs), G.WithShape(tc.xs...), G.WithName("x"))
		w := G.NewTensor(g, tensor.Float64, len(tc.ws), G.WithShape(tc.ws...), G.WithName("w"))
		if _, err := ConvTranspose2D(x, w, tc.s, tc.p, tc.outPad); err == nil {
			t.Errorf("%s: expected an error", tc.name)
		}
	}
	if got := ConvTransposeOut(16, ConvGeom{4, 2, 1}, 0); got != 32 {
		t.Errorf("ConvTransposeOut(16, k4 s2 p1) = %d, expected 32", got)
	}
	if got := ConvTransposeOut(16, ConvGeom{3, 2, 1}, 1); got != 32 {
		t.Errorf("ConvTransposeOut(16, k3 s2 p1, output pad 1) = %d, expected 32", got)
	}
}
