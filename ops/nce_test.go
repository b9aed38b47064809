package ops

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// unitRows returns n random unit vectors of dimension d, row-major.
func unitRows(rng *rand.Rand, n, d int) []float32 {
	out := make([]float32, n*d)
	for i := 0; i < n; i++ {
		var s float64
		row := make([]float64, d)
		for j := range row {
			row[j] = rng.NormFloat64()
			s += row[j] * row[j]
		}
		for j := range row {
			out[i*d+j] = float32(row[j] / math.Sqrt(s))
		}
	}
	return out
}

func randomMemory(rng *rand.Rand, B, D, K, rows int, v NCEVariant, tau float64, shared bool) *NCEMemory {
	m := &NCEMemory{Bank: unitRows(rng, rows, D), Rows: rows, Dim: D, Pos: unitRows(rng, B, D), K: K, Tau: tau, Variant: v, SharedNeg: shared}
	n := B * K
	if shared {
		n = K
	}
	for i := 0; i < n; i++ {
		m.Neg = append(m.Neg, rng.Intn(rows))
	}
	return m
}

// rowNeg is row i's negatives, shared or not.
func rowNeg(m *NCEMemory, i int) []int {
	if m.SharedNeg {
		return m.Neg
	}
	return m.Neg[i*m.K : (i+1)*m.K]
}

// cosine is s(a, b) = a.b / (|a| |b|) in float64.
func cosine(a []float64, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += a[i] * float64(b[i])
		aa += a[i] * a[i]
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

// refLNCE is the lecture's L_NCE(a, b) for one embedding b (raw, not
// normalised) with positive a = m.Pos[i] and negatives D_N = m.Neg[i],
// written as plainly as the slides: h(a, b) = exp(s(a,b)/tau) /
// (exp(s(a,b)/tau) + sum_{I'} exp(s(b, m_I')/tau)), and h(b, m_I') with the
// same denominator.
func refLNCE(b []float64, m *NCEMemory, i int) float64 {
	pos := math.Exp(cosine(b, m.Pos[i*m.Dim:(i+1)*m.Dim]) / m.Tau)
	negs := make([]float64, m.K)
	den := pos
	for k, j := range rowNeg(m, i) {
		negs[k] = math.Exp(cosine(b, m.Bank[j*m.Dim:(j+1)*m.Dim]) / m.Tau)
		den += negs[k]
	}
	loss := -math.Log(pos / den)
	for _, e := range negs {
		loss -= math.Log(1 - e/den)
	}
	return loss
}

// refUniformNCE is NPID's / VISSL's NCECriterion for one row, given Z.
func refUniformNCE(b []float64, m *NCEMemory, i int, Z float64) float64 {
	pn := 1 / float64(m.Rows)
	k := float64(m.K)
	p0 := math.Exp(cosine(b, m.Pos[i*m.Dim:(i+1)*m.Dim])/m.Tau) / Z
	loss := -math.Log(p0 / (p0 + k*pn))
	for _, j := range rowNeg(m, i) {
		p := math.Exp(cosine(b, m.Bank[j*m.Dim:(j+1)*m.Dim])/m.Tau) / Z
		loss -= math.Log(k * pn / (p + k*pn))
	}
	return loss
}

// runNCE builds L2Normalize on each input then MemoryNCE and runs it once.
func runNCE(t *testing.T, inputs []*tensor.Dense, weights []float64, m *NCEMemory) float64 {
	t.Helper()
	g := G.NewGraph()
	var embs []*G.Node
	for i, in := range inputs {
		n := G.NewTensor(g, in.Dtype(), 2, G.WithShape(in.Shape()...), G.WithValue(in), G.WithName(fmt.Sprintf("e%d", i)))
		e, err := L2Normalize(n)
		if err != nil {
			t.Fatal(err)
		}
		embs = append(embs, e)
	}
	loss, err := MemoryNCE(embs, weights, m)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	v, err := ScalarValue("nce", loss.Value())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func rows64(d *tensor.Dense, i int) []float64 {
	D := d.Shape()[1]
	return d.Float64s()[i*D : (i+1)*D]
}

// The op against the plain reference on random inputs: PIRL's
// lambda L_NCE(m_I, g) + (1-lambda) L_NCE(m_I, f), averaged over the batch.
func TestMemoryNCEMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(21))
	const B, D, K, rows = 5, 8, 7, 20
	for _, tc := range []struct {
		v      NCEVariant
		shared bool
	}{{NCESoftmax, false}, {NCEUniform, false}, {NCESoftmax, true}, {NCEUniform, true}} {
		v := tc.v
		m := randomMemory(rng, B, D, K, rows, v, 0.07, tc.shared)
		m.Z = 0.5 + 100*rng.Float64()
		gIn, fIn := randDense(rng, B, D), randDense(rng, B, D)
		const lambda = 0.3
		got := runNCE(t, []*tensor.Dense{gIn, fIn}, []float64{lambda, 1 - lambda}, m)
		var want float64
		for i := 0; i < B; i++ {
			if v == NCESoftmax {
				want += lambda*refLNCE(rows64(gIn, i), m, i) + (1-lambda)*refLNCE(rows64(fIn, i), m, i)
			} else {
				want += lambda*refUniformNCE(rows64(gIn, i), m, i, m.Z) + (1-lambda)*refUniformNCE(rows64(fIn, i), m, i, m.Z)
			}
		}
		want /= B
		// The bank rows are unit vectors only to float32 precision (the
		// reference divides by their norms, the op takes dot products).
		if math.Abs(got-want) > 1e-6*math.Abs(want) {
			t.Fatalf("%v: loss %.15g, reference %.15g", v, got, want)
		}
		// Seen holds the normalised embeddings, Acc the fraction of rows
		// whose positive beats every negative.
		for ti, in := range []*tensor.Dense{gIn, fIn} {
			hits := 0
			for i := 0; i < B; i++ {
				r := rows64(in, i)
				var nrm float64
				for _, x := range r {
					nrm += x * x
				}
				for d := 0; d < D; d++ {
					if w := r[d] / math.Sqrt(nrm); math.Abs(float64(m.Seen[ti][i*D+d])-w) > 1e-6 {
						t.Fatalf("%v: Seen[%d][%d,%d] = %v, expected %v", v, ti, i, d, m.Seen[ti][i*D+d], w)
					}
				}
				sp, best := cosine(r, m.Pos[i*D:(i+1)*D]), math.Inf(-1)
				for _, j := range rowNeg(m, i) {
					best = math.Max(best, cosine(r, m.Bank[j*D:(j+1)*D]))
				}
				if sp > best {
					hits++
				}
			}
			if want := float64(hits) / B; m.Acc[ti] != want {
				t.Fatalf("%v: Acc[%d] = %v, expected %v", v, ti, m.Acc[ti], want)
			}
		}
	}
}

// A case with a closed form: b = positive = e1, two negatives orthogonal
// to it (s = 0), tau = 1. Softmax: h_0 = e/(e+2), h_k = 1/(e+2), so
// L = -log(e/(e+2)) - 2 log((e+1)/(e+2)). Uniform with Z estimated from
// the batch: Z = N (e+2)/3 (to float32 precision), P_0 = e/Z, P_k = 1/Z,
// c = K/N = 2/N.
func TestMemoryNCEClosedForm(t *testing.T) {
	e := math.E
	mk := func(v NCEVariant) *NCEMemory {
		return &NCEMemory{
			Bank: []float32{1, 0, 0, 1, 0, -1, 0.6, 0.8}, Rows: 4, Dim: 2,
			Pos: []float32{1, 0}, Neg: []int{1, 2}, K: 2, Tau: 1, Variant: v, EstimateZ: true,
		}
	}
	in := tensor.New(tensor.WithShape(1, 2), tensor.WithBacking([]float64{3, 0}))
	got := runNCE(t, []*tensor.Dense{in}, []float64{1}, mk(NCESoftmax))
	want := -math.Log(e/(e+2)) - 2*math.Log((e+1)/(e+2))
	if math.Abs(got-want) > 1e-14 {
		t.Fatalf("softmax: %.16g, closed form %.16g", got, want)
	}
	m := mk(NCEUniform)
	got = runNCE(t, []*tensor.Dense{in}, []float64{1}, m)
	N := 4.0
	Z := float64(float32(N * (e + 2) / 3)) // kept in float32 precision
	c := 2 / N
	p0, pk := e/Z, 1/Z
	want = -math.Log(p0/(p0+c)) - 2*math.Log(c/(pk+c))
	if m.Z != Z || math.Abs(got-want) > 1e-14 {
		t.Fatalf("uniform: Z %.16g (closed form %.16g), loss %.16g (closed form %.16g)", m.Z, Z, got, want)
	}
	if m.Acc[0] != 1 {
		t.Fatalf("accuracy %v, expected 1", m.Acc[0])
	}
	// Without EstimateZ the estimate is used but not kept.
	m = mk(NCEUniform)
	m.EstimateZ = false
	if got = runNCE(t, []*tensor.Dense{in}, []float64{1}, m); m.Z != 0 || math.Abs(got-want) > 1e-14 {
		t.Fatalf("uniform without EstimateZ: Z %v kept, loss %v (expected %v)", m.Z, got, want)
	}
}

func TestMemoryNCEGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(22))
	const B, D, K, rows = 3, 4, 5, 9
	for _, v := range []NCEVariant{NCESoftmax, NCEUniform} {
		for _, tc := range []struct {
			tau    float64
			shared bool
		}{{1, false}, {0.3, false}, {0.3, true}} {
			tau := tc.tau
			m := randomMemory(rng, B, D, K, rows, v, tau, tc.shared)
			m.EstimateZ = true // fixed by the first run, then constant
			inputs := []*tensor.Dense{randDense(rng, B, D), randDense(rng, B, D)}
			gradCheck(t, fmt.Sprintf("l2norm+memory nce %v tau %g shared %v", v, tau, tc.shared), inputs, func(n []*G.Node) (*G.Node, error) {
				a, err := L2Normalize(n[0])
				if err != nil {
					return nil, err
				}
				b, err := L2Normalize(n[1])
				if err != nil {
					return nil, err
				}
				return MemoryNCE([]*G.Node{a, b}, []float64{0.5, 0.5}, m)
			})
		}
	}
}

// In float32, as training runs it, the loss agrees with float64.
func TestMemoryNCEFloat32(t *testing.T) {
	rng := rand.New(rand.NewSource(23))
	const B, D, K, rows = 4, 16, 32, 50
	for _, shared := range []bool{false, true} {
		m := randomMemory(rng, B, D, K, rows, NCESoftmax, 0.07, shared)
		x := randDense(rng, B, D)
		want := runNCE(t, []*tensor.Dense{x}, []float64{1}, m)
		x32 := tensor.New(tensor.WithShape(B, D), tensor.Of(tensor.Float32))
		for i, v := range x.Float64s() {
			x32.Float32s()[i] = float32(v)
		}
		got := runNCE(t, []*tensor.Dense{x32}, []float64{1}, m)
		if math.Abs(got-want) > 1e-5*math.Abs(want) {
			t.Fatalf("shared %v: float32 loss %v, float64 %v", shared, got, want)
		}
	}
}

func TestMemoryNCEErrors(t *testing.T) {
	rng := rand.New(rand.NewSource(24))
	m := randomMemory(rng, 2, 3, 2, 4, NCESoftmax, 0.1, false)
	m.Neg[3] = 4 // outside the bank
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 2, G.WithShape(2, 3), G.WithValue(randDense(rng, 2, 3)))
	loss, err := MemoryNCE([]*G.Node{x}, []float64{1}, m)
	if err != nil {
		t.Fatal(err)
	}
	_ = loss
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err == nil {
		t.Fatal("expected an error for a negative index outside the bank")
	}
	if _, err := MemoryNCE([]*G.Node{x}, []float64{1, 2}, m); err == nil {
		t.Fatal("expected an error for mismatched weights")
	}
}

// BenchmarkMemoryNCE times forward and backward at PIRL's CIFAR scale:
// batch 64, 128-d, 4096 negatives from a 50,000-row bank, two inputs;
// negatives drawn per row or shared by the batch.
func BenchmarkMemoryNCE(b *testing.B) {
	for _, shared := range []bool{false, true} {
		b.Run(fmt.Sprintf("shared=%v", shared), func(b *testing.B) { benchMemoryNCE(b, shared) })
	}
}

func benchMemoryNCE(b *testing.B, shared bool) {
	rng := rand.New(rand.NewSource(25))
	const B, D, K, rows = 64, 128, 4096, 50000
	m := randomMemory(rng, B, D, K, rows, NCESoftmax, 0.07, shared)
	g := G.NewGraph()
	var embs []*G.Node
	for i := 0; i < 2; i++ {
		x := tensor.New(tensor.WithShape(B, D), tensor.WithBacking(unitRows(rng, B, D)))
		embs = append(embs, G.NewTensor(g, tensor.Float32, 2, G.WithShape(B, D), G.WithValue(x)))
	}
	loss, err := MemoryNCE(embs, []float64{0.5, 0.5}, m)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := G.Grad(loss, embs...); err != nil {
		b.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMemoryNCEFreshPositives: rows marked FreshPos take their positive
// from the last input's (normalised) embedding, as a constant: the loss and
// the gradients equal those of a run whose Pos rows hold those embeddings
// copied by hand.
func TestMemoryNCEFreshPositives(t *testing.T) {
	rng := rand.New(rand.NewSource(23))
	const B, D, K, rows = 3, 6, 5, 11
	for _, v := range []NCEVariant{NCESoftmax, NCEUniform} {
		base := randomMemory(rng, B, D, K, rows, v, 0.2, true)
		base.Z = 3
		inputs := []*tensor.Dense{randDense(rng, B, D), randDense(rng, B, D)}
		fresh := []bool{true, false, true}
		run := func(m *NCEMemory) (float64, [][]float64) {
			g := G.NewGraph()
			var raw, embs []*G.Node
			for i, in := range inputs {
				n := G.NewTensor(g, tensor.Float64, 2, G.WithShape(B, D), G.WithValue(in.Clone().(*tensor.Dense)), G.WithName(fmt.Sprintf("e%d", i)))
				e, err := L2Normalize(n)
				if err != nil {
					t.Fatal(err)
				}
				raw, embs = append(raw, n), append(embs, e)
			}
			loss, err := MemoryNCE(embs, []float64{0.5, 0.5}, m)
			if err != nil {
				t.Fatal(err)
			}
			grads, err := G.Grad(loss, raw...)
			if err != nil {
				t.Fatal(err)
			}
			vm := G.NewTapeMachine(g)
			defer vm.Close()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			l, _ := ScalarValue("nce", loss.Value())
			var gs [][]float64
			for _, gr := range grads {
				gs = append(gs, append([]float64(nil), gr.Value().Data().([]float64)...))
			}
			return l, gs
		}
		m1 := *base
		m1.Pos = append([]float32(nil), base.Pos...)
		m1.FreshPos = fresh
		l1, g1 := run(&m1)
		m2 := *base
		m2.Pos = append([]float32(nil), base.Pos...)
		f := inputs[1].Float64s()
		for i := range fresh {
			if !fresh[i] {
				continue
			}
			var nrm float64
			for _, x := range f[i*D : (i+1)*D] {
				nrm += x * x
			}
			for d := 0; d < D; d++ {
				m2.Pos[i*D+d] = float32(f[i*D+d] / math.Sqrt(nrm))
			}
		}
		l2, g2 := run(&m2)
		if math.Abs(l1-l2) > 1e-6*math.Abs(l2) {
			t.Fatalf("%v: loss with fresh positives %.12g, with the positives copied by hand %.12g", v, l1, l2)
		}
		for k := range g1 {
			for j := range g1[k] {
				if math.Abs(g1[k][j]-g2[k][j]) > 1e-6 {
					t.Fatalf("%v: gradient of input %d [%d] %g vs %g", v, k, j, g1[k][j], g2[k][j])
				}
			}
		}
	}
}
