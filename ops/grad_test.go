package ops

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// weightedSum is a test-only op: sum(x .* r) for a fixed random r, so that
// the gradient reaching the op under test is r itself (not all ones, which
// would hide transposition and indexing mistakes).
type weightedSum struct {
	base
	r    []float64
	rank int
}

func (op *weightedSum) Arity() int    { return 1 }
func (op *weightedSum) Type() hm.Type { return fnType(op.rank, 0) }
func (op *weightedSum) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}
func (op *weightedSum) Do(vs ...G.Value) (G.Value, error) {
	x := vs[0].(*tensor.Dense).Float64s()
	var s float64
	for i, v := range x {
		s += v * op.r[i]
	}
	return G.NewF64(s), nil
}
func (op *weightedSum) DiffWRT(int) []bool { return []bool{true} }
func (op *weightedSum) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	n, err := G.ApplyOp(&weightedSumGrad{base: newBase("wsGrad"), fwd: op, shape: in[0].Shape().Clone()}, grad)
	return G.Nodes{n}, err
}

type weightedSumGrad struct {
	base
	fwd   *weightedSum
	shape tensor.Shape
}

func (op *weightedSumGrad) Arity() int    { return 1 }
func (op *weightedSumGrad) Type() hm.Type { return fnType(0, op.fwd.rank) }
func (op *weightedSumGrad) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.shape.Clone(), nil
}
func (op *weightedSumGrad) Do(vs ...G.Value) (G.Value, error) {
	seed, err := ScalarValue("ws grad", vs[0])
	if err != nil {
		return nil, err
	}
	d := newDense(tensor.Float64, op.shape...)
	for i, r := range op.fwd.r {
		d.Float64s()[i] = r * seed
	}
	return d, nil
}

func randDense(rng *rand.Rand, shape ...int) *tensor.Dense {
	d := newDense(tensor.Float64, shape...)
	for i := range d.Float64s() {
		d.Float64s()[i] = rng.NormFloat64()
	}
	return d
}

// gradCheck builds loss = weightedSum(build(inputs)) (or build's scalar
// output itself), differentiates it with gorgonia.Grad, and compares every
// input's gradient with central finite differences in float64.
func gradCheck(t *testing.T, name string, inputs []*tensor.Dense, build func(xs []*G.Node) (*G.Node, error)) {
	t.Helper()
	rng := rand.New(rand.NewSource(7))
	g := G.NewGraph()
	nodes := make([]*G.Node, len(inputs))
	for i, in := range inputs {
		nodes[i] = G.NewTensor(g, tensor.Float64, in.Dims(), G.WithShape(in.Shape()...), G.WithValue(in), G.WithName(fmt.Sprintf("in%d", i)))
	}
	y, err := build(nodes)
	if err != nil {
		t.Fatalf("%s: build: %v", name, err)
	}
	loss := y
	if !y.IsScalar() {
		r := make([]float64, y.Shape().TotalSize())
		for i := range r {
			r[i] = rng.NormFloat64()
		}
		if loss, err = G.ApplyOp(&weightedSum{base: newBase("ws"), r: r, rank: y.Dims()}, y); err != nil {
			t.Fatalf("%s: loss: %v", name, err)
		}
	}
	grads, err := G.Grad(loss, nodes...)
	if err != nil {
		t.Fatalf("%s: grad: %v", name, err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	run := func() float64 {
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatalf("%s: run: %v", name, err)
		}
		v, err := ScalarValue(name, loss.Value())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	run()
	analytic := make([][]float64, len(grads))
	for i, gn := range grads {
		analytic[i] = append([]float64(nil), gn.Value().Data().([]float64)...)
	}
	const h = 1e-5
	for i, in := range inputs {
		data := in.Float64s()
		for j := range data {
			orig := data[j]
			data[j] = orig + h
			fp := run()
			data[j] = orig - h
			fm := run()
			data[j] = orig
			num := (fp - fm) / (2 * h)
			got := analytic[i][j]
			if math.Abs(num-got) > 1e-6+1e-5*math.Abs(num) {
				t.Fatalf("%s: d/d input %d [%d]: analytic %.8g, finite difference %.8g", name, i, j, got, num)
			}
		}
	}
}

func TestConv2DGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, tc := range []struct{ c, o, h, w, k, s, p int }{
		{2, 3, 5, 5, 3, 1, 1},
		{2, 3, 6, 5, 3, 2, 1},
		{3, 2, 4, 4, 1, 1, 0}, // direct path, no im2col
		{2, 2, 5, 5, 1, 2, 0},
		{1, 2, 7, 7, 5, 2, 2},
	} {
		x, w := randDense(rng, 2, tc.c, tc.h, tc.w), randDense(rng, tc.o, tc.c, tc.k, tc.k)
		gradCheck(t, fmt.Sprintf("conv %+v", tc), []*tensor.Dense{x, w}, func(n []*G.Node) (*G.Node, error) {
			return Conv2D(n[0], n[1], tc.s, tc.p)
		})
	}
}

func TestBatchNormGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, training := range []bool{true, false} {
		x := randDense(rng, 3, 2, 3, 2)
		gamma, beta := randDense(rng, 2), randDense(rng, 2)
		st := &BNState{Mean: []float32{0.1, -0.2}, Var: []float32{1.5, 0.7}, Momentum: 0.1, Eps: 1e-5, Mode: &Mode{Training: training}}
		gradCheck(t, fmt.Sprintf("batchnorm training=%v", training), []*tensor.Dense{x, gamma, beta}, func(n []*G.Node) (*G.Node, error) {
			return BatchNorm(n[0], n[1], n[2], st)
		})
	}
}

func TestPoolingAndReLUGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	x := randDense(rng, 2, 2, 5, 5)
	gradCheck(t, "maxpool 3/2/1", []*tensor.Dense{x}, func(n []*G.Node) (*G.Node, error) { return MaxPool2D(n[0], 3, 2, 1) })
	gradCheck(t, "maxpool 2/2/0", []*tensor.Dense{randDense(rng, 1, 2, 4, 4)}, func(n []*G.Node) (*G.Node, error) { return MaxPool2D(n[0], 2, 2, 0) })
	gradCheck(t, "global average pool", []*tensor.Dense{randDense(rng, 2, 3, 3, 2)}, func(n []*G.Node) (*G.Node, error) { return GlobalAvgPool(n[0]) })
	gradCheck(t, "relu", []*tensor.Dense{randDense(rng, 2, 3, 2, 2)}, func(n []*G.Node) (*G.Node, error) { return ReLU(n[0]) })
}

func TestLinearAndCrossEntropyGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	x, w, b := randDense(rng, 4, 5), randDense(rng, 3, 5), randDense(rng, 3)
	gradCheck(t, "linear", []*tensor.Dense{x, w, b}, func(n []*G.Node) (*G.Node, error) { return Linear(n[0], n[1], n[2]) })
	labels := &Labels{Y: []int{2, 0, 1, 2}}
	gradCheck(t, "linear+softmax CE", []*tensor.Dense{x, w, b}, func(n []*G.Node) (*G.Node, error) {
		y, err := Linear(n[0], n[1], n[2])
		if err != nil {
			return nil, err
		}
		return SoftmaxCrossEntropy(y, labels)
	})
}

// A residual block: gradients through two consumers of one node are summed
// by Gorgonia's own Add; check the composition end to end.
func TestResidualCompositionGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	x, w1, w2 := randDense(rng, 2, 2, 4, 4), randDense(rng, 2, 2, 3, 3), randDense(rng, 2, 2, 3, 3)
	gamma, beta := randDense(rng, 2), randDense(rng, 2)
	st := &BNState{Mean: make([]float32, 2), Var: []float32{1, 1}, Momentum: 0.1, Eps: 1e-5, Mode: &Mode{Training: true}}
	gradCheck(t, "residual", []*tensor.Dense{x, w1, w2, gamma, beta}, func(n []*G.Node) (*G.Node, error) {
		h, err := Conv2D(n[0], n[1], 1, 1)
		if err != nil {
			return nil, err
		}
		if h, err = BatchNorm(h, n[3], n[4], st); err != nil {
			return nil, err
		}
		if h, err = ReLU(h); err != nil {
			return nil, err
		}
		if h, err = Conv2D(h, n[2], 1, 1); err != nil {
			return nil, err
		}
		if h, err = G.Add(h, n[0]); err != nil {
			return nil, err
		}
		return GlobalAvgPool(h)
	})
}

func TestSoftmaxCrossEntropyValueAndPredictions(t *testing.T) {
	g := G.NewGraph()
	x := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float64{1, 2, 3, 0, 0, 0}))
	n := G.NewTensor(g, tensor.Float64, 2, G.WithShape(2, 3), G.WithValue(x))
	labels := &Labels{Y: []int{0, 1}}
	loss, err := SoftmaxCrossEntropy(n, labels)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	// Closed form: row 0: log(e+e^2+e^3) - 1; row 1: log 3.
	want := (math.Log(math.E+math.Exp(2)+math.Exp(3)) - 1 + math.Log(3)) / 2
	got, _ := ScalarValue("ce", loss.Value())
	if math.Abs(got-want) > 1e-12 {
		t.Fatalf("loss %v, closed form %v", got, want)
	}
	if labels.Pred[0] != 2 || labels.Pred[1] != 0 {
		t.Fatalf("predictions %v, expected [2 0] (first maximum on ties)", labels.Pred)
	}
	// Row 0: target 0 has the lowest score, two classes above it; row 1:
	// all tie, none strictly above.
	if labels.Rank[0] != 2 || labels.Rank[1] != 0 {
		t.Fatalf("ranks %v, expected [2 0]", labels.Rank)
	}
	labels.Y = []int{0, 3}
	m.Reset()
	if err := m.RunAll(); err == nil {
		t.Fatal("expected an out-of-range label error")
	}
}

func TestSoftmaxGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	for _, axis := range []int{0, 1, -1} {
		for _, log := range []bool{false, true} {
			x := randDense(rng, 2, 3, 4)
			gradCheck(t, fmt.Sprintf("softmax axis %d log %v", axis, log), []*tensor.Dense{x}, func(n []*G.Node) (*G.Node, error) {
				if log {
					return LogSoftmax(n[0], axis)
				}
				return Softmax(n[0], axis)
			})
		}
	}
}

func TestGeometryTooSmall(t *testing.T) {
	// h 2, kernel 3, stride 2, pad 0: (2-3)/2+1 truncates to 1 in Go.
	if err := (ConvGeom{3, 2, 0}).check("conv", 2, 2); err == nil {
		t.Fatal("expected an error for a 2x2 input and a 3x3 kernel without padding")
	}
	if err := (ConvGeom{3, 2, 1}).check("conv", 2, 2); err != nil {
		t.Fatalf("padded 2x2 input fits a 3x3 kernel: %v", err)
	}
}

// The float32 ReLU kernels (bit masks) agree with the plain definition,
// including -0, +0, tiny and negative values.
func TestReLUFloat32Kernels(t *testing.T) {
	x := []float32{-2, -0.0, 0, 1e-40, -1e-40, 3.5, float32(math.Inf(1)), float32(math.Inf(-1))}
	x[1] = float32(math.Copysign(0, -1))
	y := make([]float32, len(x))
	reluKernel(x, y)
	for i, v := range x {
		want := float32(0)
		if v > 0 {
			want = v
		}
		if y[i] != want || math.Signbit(float64(y[i])) {
			t.Fatalf("relu(%v) = %v, expected %v", v, y[i], want)
		}
	}
	dy := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	dx := make([]float32, len(x))
	reluGradKernel(y, dy, dx)
	for i := range y {
		want := float32(0)
		if y[i] > 0 {
			want = dy[i]
		}
		if dx[i] != want {
			t.Fatalf("relu grad at y=%v: %v, expected %v", y[i], dx[i], want)
		}
	}
}

// The float32 batch-norm backward pass agrees with float64 even when the
// activations sit far from zero (x = 100 + noise), where folding the mean
// into a constant would cancel.
func TestBatchNormFloat32MatchesFloat64(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	x64 := randDense(rng, 4, 3, 5, 5)
	for i := range x64.Float64s() {
		x64.Float64s()[i] += 100
	}
	g64, b64, dy64 := randDense(rng, 3), randDense(rng, 3), randDense(rng, 4, 3, 5, 5)
	to32 := func(d *tensor.Dense) *tensor.Dense {
		v := make([]float32, len(d.Float64s()))
		for i, x := range d.Float64s() {
			v[i] = float32(x)
		}
		return tensor.New(tensor.WithShape(d.Shape()...), tensor.WithBacking(v))
	}
	run := func(dt tensor.Dtype, x, g, b, dy *tensor.Dense) []float64 {
		st := &BNState{Mean: make([]float32, 3), Var: []float32{1, 1, 1}, Momentum: 0.1, Eps: 1e-5, Mode: &Mode{Training: true}}
		fwd := &batchNorm{base: newBase("bn"), st: st}
		if _, err := fwd.Do(x, g, b); err != nil {
			t.Fatal(err)
		}
		dx, err := (&bnGrad{base: newBase("bng"), fwd: fwd, which: 0}).Do(x, g, dy)
		if err != nil {
			t.Fatal(err)
		}
		out := []float64{}
		switch d := dx.(*tensor.Dense).Data().(type) {
		case []float32:
			for _, v := range d {
				out = append(out, float64(v))
			}
		case []float64:
			out = d
		}
		return out
	}
	want := run(tensor.Float64, x64, g64, b64, dy64)
	got := run(tensor.Float32, to32(x64), to32(g64), to32(b64), to32(dy64))
	var scale, maxd float64
	for i := range want {
		scale = math.Max(scale, math.Abs(want[i]))
		maxd = math.Max(maxd, math.Abs(got[i]-want[i]))
	}
	if maxd > 1e-4*scale {
		t.Fatalf("float32 dx differs from float64 by %g (scale %g)", maxd, scale)
	}
}

func TestConvBiasGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	x, w, b := randDense(rng, 2, 2, 5, 4), randDense(rng, 3, 2, 3, 3), randDense(rng, 3)
	gradCheck(t, "conv+bias", []*tensor.Dense{x, w, b}, func(n []*G.Node) (*G.Node, error) {
		return Conv2DBias(n[0], n[1], n[2], 2, 1)
	})
}
