package ops

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ToLayout puts element (n, c, h, w) where the NChw16c formula says and
// converts back exactly.
func TestToLayoutIndexing(t *testing.T) {
	N, C, H, W := 2, 32, 3, 5
	x := make([]float64, N*C*H*W)
	for i := range x {
		x[i] = float64(i)
	}
	g := G.NewGraph()
	in := G.NewTensor(g, tensor.Float64, 4, G.WithShape(N, C, H, W), G.WithValue(tensor.New(tensor.WithShape(N, C, H, W), tensor.WithBacking(x))))
	blk, err := ToLayout(in, NCHW, NChw16c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ToLayout(blk, NChw16c, NCHW)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	b := blk.Value().Data().([]float64)
	for n := 0; n < N; n++ {
		for c := 0; c < C; c++ {
			for h := 0; h < H; h++ {
				for w := 0; w < W; w++ {
					want := x[((n*C+c)*H+h)*W+w]
					if got := b[(((n*C/16+c/16)*H+h)*W+w)*16+c%16]; got != want {
						t.Fatalf("(%d,%d,%d,%d): blocked holds %v, expected %v", n, c, h, w, got, want)
					}
				}
			}
		}
	}
	for i, v := range back.Value().Data().([]float64) {
		if v != x[i] {
			t.Fatalf("round trip differs at %d: %v vs %v", i, v, x[i])
		}
	}
	if _, err := ToLayout(G.NewTensor(g, tensor.Float64, 4, G.WithShape(1, 3, 2, 2)), NCHW, NChw16c); err == nil {
		t.Error("3 channels converted to nChw16c without an error")
	}
}

// ToLayout puts element (n, c, h, w) where the NHWC formula says, from
// NCHW and from nChw16c, and back to NCHW exactly.
func TestToLayoutNHWC(t *testing.T) {
	N, C, H, W := 2, 32, 3, 5
	x := make([]float32, N*C*H*W)
	for i := range x {
		x[i] = float32(i)
	}
	g := G.NewGraph()
	in := G.NewTensor(g, tensor.Float32, 4, G.WithShape(N, C, H, W), G.WithValue(tensor.New(tensor.WithShape(N, C, H, W), tensor.WithBacking(x))))
	var nodes []*G.Node
	for _, step := range [][2]Layout{{NCHW, NHWC}, {NHWC, NChw16c}, {NChw16c, NHWC}, {NHWC, NCHW}} {
		from := in
		if len(nodes) > 0 {
			from = nodes[len(nodes)-1]
		}
		n, err := ToLayout(from, step[0], step[1])
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2} {
		v := nodes[i].Value().Data().([]float32)
		for n := 0; n < N; n++ {
			for c := 0; c < C; c++ {
				for h := 0; h < H; h++ {
					for w := 0; w < W; w++ {
						if got, want := v[((n*H+h)*W+w)*C+c], x[((n*C+c)*H+h)*W+w]; got != want {
							t.Fatalf("step %d (%d,%d,%d,%d): nhwc holds %v, expected %v", i, n, c, h, w, got, want)
						}
					}
				}
			}
		}
	}
	for i, v := range nodes[3].Value().Data().([]float32) {
		if v != x[i] {
			t.Fatalf("round trip differs at %d: %v vs %v", i, v, x[i])
		}
	}
}

// bnRun builds x -> [to lay] -> BatchNormLayout -> [to NCHW] and a loss
// sum(y .* r), runs it and returns y, dx, dgamma, dbeta and the running
// statistics.
func bnRun(t *testing.T, x, gamma, beta, r []float32, shape tensor.Shape, st *BNState, lay Layout, relu bool) [6][]float32 {
	t.Helper()
	g := G.NewGraph()
	mk := func(name string, v []float32, s ...int) *G.Node {
		return G.NewTensor(g, tensor.Float32, len(s), G.WithShape(s...), G.WithName(name),
			G.WithValue(tensor.New(tensor.WithShape(s...), tensor.WithBacking(append([]float32(nil), v...)))))
	}
	C := shape[1]
	xn, gn, bn, rn := mk("x", x, shape...), mk("g", gamma, C), mk("b", beta, C), mk("r", r, shape...)
	xi, err := ToLayout(xn, NCHW, lay)
	if err != nil {
		t.Fatal(err)
	}
	bnf := BatchNormLayout
	if relu {
		bnf = BatchNormReLULayout
	}
	y, err := bnf(xi, gn, bn, st, lay)
	if err != nil {
		t.Fatal(err)
	}
	if y, err = ToLayout(y, lay, NCHW); err != nil {
		t.Fatal(err)
	}
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(y, rn))))
	if _, err := G.Grad(loss, xn, gn, bn); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	var res [6][]float32
	res[0] = append([]float32(nil), y.Value().Data().([]float32)...)
	for i, n := range []*G.Node{xn, gn, bn} {
		gv, err := n.Grad()
		if err != nil {
			t.Fatal(err)
		}
		res[i+1] = append([]float32(nil), gv.Data().([]float32)...)
	}
	res[4], res[5] = append([]float32(nil), st.Mean...), append([]float32(nil), st.Var...)
	return res
}

// oneDNN's batch norm on nChw16c computes what the Go kernels compute on
// NCHW: output, the three gradients and the running statistics, in
// training and in inference mode, alone and with the ReLU fused into it
// (against batch norm then ReLU).
func TestBatchNormBlockedMatchesPlain(t *testing.T) {
	if !BlockedLayout(tensor.Float32) {
		t.Skip("this build has no blocked layout (it needs oneDNN)")
	}
	checkBNBlockedMatchesPlain(t)
}

func checkBNBlockedMatchesPlain(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	shape := tensor.Shape{3, 32, 5, 4}
	rnd := func(n int, mean, sd float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(mean + sd*rng.NormFloat64())
		}
		return v
	}
	x, r := rnd(shape.TotalSize(), 2, 3), rnd(shape.TotalSize(), 0, 1)
	gamma, beta := rnd(32, 1, 0.3), rnd(32, 0, 0.3)
	mean0, var0 := rnd(32, 0, 1), rnd(32, 0, 0.1)
	for i := range var0 {
		var0[i] = 0.5 + float32(math.Abs(float64(var0[i])))
	}
	names := []string{"y", "dx", "dgamma", "dbeta", "running mean", "running var"}
	for _, c := range []struct{ training, relu bool }{{true, false}, {false, false}, {true, true}, {false, true}} {
		training := c.training
		var res [2][6][]float32
		for i, lay := range []Layout{NCHW, NChw16c} {
			st := &BNState{Mean: append([]float32(nil), mean0...), Var: append([]float32(nil), var0...), Momentum: 0.1, Eps: 1e-5, Mode: &Mode{Training: training}}
			res[i] = bnRun(t, x, gamma, beta, r, shape, st, lay, c.relu)
		}
		if c.relu {
			zeros := 0
			for _, v := range res[0][0] {
				if v == 0 {
					zeros++
				}
			}
			if zeros == 0 || zeros == len(res[0][0]) {
				t.Fatalf("relu case: %d of %d outputs are zero; the test data must exercise both sides", zeros, len(res[0][0]))
			}
		}
		for k, name := range names {
			var d, sc float64
			for i, v := range res[0][k] {
				d = math.Max(d, math.Abs(float64(res[1][k][i]-v)))
				sc = math.Max(sc, math.Abs(float64(v)))
			}
			if d > 1e-4*math.Max(sc, 1e-2) {
				t.Errorf("training %v relu %v: %s: nChw16c vs NCHW max difference %g (scale %g)", training, c.relu, name, d, sc)
			}
		}
	}
}

// Conv2DFirst gives the weights the gradient Conv2D gives them, builds no
// backward-data pass, and refuses a gradient with respect to its input.
func TestConv2DFirstSkipsInputGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	x, w := make([]float64, 2*3*5*5), make([]float64, 4*3*3*3)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	dw := func(first bool) ([]float64, *G.ExprGraph, *G.Node) {
		g := G.NewGraph()
		xn := G.NewTensor(g, tensor.Float64, 4, G.WithShape(2, 3, 5, 5), G.WithName("x"), G.WithValue(tensor.New(tensor.WithShape(2, 3, 5, 5), tensor.WithBacking(append([]float64(nil), x...)))))
		wn := G.NewTensor(g, tensor.Float64, 4, G.WithShape(4, 3, 3, 3), G.WithName("w"), G.WithValue(tensor.New(tensor.WithShape(4, 3, 3, 3), tensor.WithBacking(append([]float64(nil), w...)))))
		var y *G.Node
		var err error
		if first {
			y, err = Conv2DFirst(xn, wn, 2, 1, NCHW)
		} else {
			y, err = Conv2D(xn, wn, 2, 1)
		}
		if err != nil {
			t.Fatal(err)
		}
		loss := G.Must(G.Sum(G.Must(G.Square(y))))
		if _, err := G.Grad(loss, wn); err != nil {
			t.Fatal(err)
		}
		m := G.NewTapeMachine(g)
		defer m.Close()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		gv, _ := wn.Grad()
		return append([]float64(nil), gv.Data().([]float64)...), g, loss
	}
	want, _, _ := dw(false)
	got, g, loss := dw(true)
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9*math.Max(1, math.Abs(want[i])) {
			t.Fatalf("dw[%d] = %v, Conv2D gives %v", i, got[i], want[i])
		}
	}
	for _, n := range g.AllNodes() {
		if n.Op() != nil && n.Op().String() == "Conv2DBwdData" {
			t.Fatal("Conv2DFirst built a backward-data pass")
		}
	}
	if _, err := G.Grad(loss, g.ByName("x")[0]); err == nil {
		t.Error("a gradient with respect to Conv2DFirst's input was built without an error")
	}
}

// Max pooling on nChw16c picks the same maxima and routes the gradient to
// the same (first maximal) cells as on NCHW, ties included.
func TestMaxPoolBlockedMatchesPlain(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	shape := tensor.Shape{2, 32, 7, 6}
	x, r := make([]float64, shape.TotalSize()), make([]float64, 2*32*4*3)
	for i := range x {
		x[i] = float64(rng.Intn(3)) // many ties
	}
	for i := range r {
		r[i] = rng.NormFloat64()
	}
	run := func(lay Layout) ([]float64, []float64) {
		g := G.NewGraph()
		xn := G.NewTensor(g, tensor.Float64, 4, G.WithShape(shape...), G.WithName("x"), G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float64(nil), x...)))))
		xi := G.Must(ToLayout(xn, NCHW, lay))
		y := G.Must(ToLayout(G.Must(MaxPool2DLayout(xi, 3, 2, 1, lay)), lay, NCHW))
		rn := G.NewTensor(g, tensor.Float64, 4, G.WithShape(y.Shape()...), G.WithValue(tensor.New(tensor.WithShape(y.Shape()...), tensor.WithBacking(r))))
		if _, err := G.Grad(G.Must(G.Sum(G.Must(G.HadamardProd(y, rn)))), xn); err != nil {
			t.Fatal(err)
		}
		m := G.NewTapeMachine(g)
		defer m.Close()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		dx, _ := xn.Grad()
		return append([]float64(nil), y.Value().Data().([]float64)...), append([]float64(nil), dx.Data().([]float64)...)
	}
	y0, dx0 := run(NCHW)
	y1, dx1 := run(NChw16c)
	for i := range y0 {
		if y0[i] != y1[i] {
			t.Fatalf("y[%d]: nChw16c %v, NCHW %v", i, y1[i], y0[i])
		}
	}
	for i := range dx0 {
		if math.Abs(dx0[i]-dx1[i]) > 1e-12 {
			t.Fatalf("dx[%d]: nChw16c %v, NCHW %v", i, dx1[i], dx0[i])
		}
	}
}

// With BatchStats outside training, batch norm computes what training mode
// computes (output and gradients) but leaves the running statistics as
// they were, on both layouts.
func TestBatchNormBatchStats(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	shape := tensor.Shape{4, 16, 3, 3}
	rnd := func(n int, mean, sd float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(mean + sd*rng.NormFloat64())
		}
		return v
	}
	x, r := rnd(shape.TotalSize(), 1, 2), rnd(shape.TotalSize(), 0, 1)
	gamma, beta := rnd(16, 1, 0.3), rnd(16, 0, 0.3)
	mean0, var0 := rnd(16, 0, 1), rnd(16, 2, 0.1)
	lays := []Layout{NCHW}
	if BlockedLayout(tensor.Float32) {
		lays = append(lays, NChw16c)
	}
	for _, lay := range lays {
		for _, relu := range []bool{false, true} {
			st := func(m Mode) *BNState {
				return &BNState{Mean: append([]float32(nil), mean0...), Var: append([]float32(nil), var0...), Momentum: 0.1, Eps: 1e-5, Mode: &m}
			}
			train := bnRun(t, x, gamma, beta, r, shape, st(Mode{Training: true}), lay, relu)
			eval := bnRun(t, x, gamma, beta, r, shape, st(Mode{BatchStats: true}), lay, relu)
			for k, name := range []string{"y", "dx", "dgamma", "dbeta"} {
				for i, v := range train[k] {
					if math.Abs(float64(eval[k][i]-v)) > 1e-5*math.Max(1, math.Abs(float64(v))) {
						t.Fatalf("layout %v relu %v: %s[%d] = %v with batch statistics, %v in training", lay, relu, name, i, eval[k][i], v)
					}
				}
			}
			for c := range mean0 {
				if eval[4][c] != mean0[c] || eval[5][c] != var0[c] {
					t.Fatalf("layout %v: running statistics of channel %d moved to %v/%v from %v/%v", lay, c, eval[4][c], eval[5][c], mean0[c], var0[c])
				}
				if train[4][c] == mean0[c] {
					t.Fatalf("layout %v: training left the running mean of channel %d unchanged: the check is vacuous", lay, c)
				}
			}
		}
	}
}
