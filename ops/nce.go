package ops

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// NCEVariant selects the loss MemoryNCE computes.
type NCEVariant int

const (
	// NCESoftmax is the loss of PIRL as the source lecture writes it
	// (Misra & van der Maaten 2019, eqs. 3-4, with the normaliser summed
	// over the drawn negatives). For an embedding b with positive a and
	// negatives n_1..n_K, with z_0 = a.b/tau, z_k = b.n_k/tau and
	// h_j = exp(z_j) / (exp(z_0) + sum_k exp(z_k)),
	//   L = -log h_0 - sum_k log(1 - h_k).
	NCESoftmax NCEVariant = iota
	// NCEUniform is NCE against a uniform noise distribution over the N
	// rows of the memory bank, as NPID (Wu et al. 2018, eqs. 5-6) and
	// VISSL's nce_loss_with_memory compute it: P_j = exp(z_j)/Z with the
	// normalising constant Z estimated once, from the first batch, as
	// mean(exp(z)) * N, and with c = K/N,
	//   L = -log(P_0/(P_0 + c)) - sum_k log(c/(P_k + c)).
	NCEUniform
)

// String names the variant as the configs spell it.
func (v NCEVariant) String() string {
	switch v {
	case NCESoftmax:
		return "softmax"
	case NCEUniform:
		return "uniform"
	}
	return fmt.Sprintf("NCEVariant(%d)", int(v))
}

// NCEMemory is the per-step constant side of MemoryNCE: the memory bank,
// each row's positive and negatives, and what the forward pass records.
// The caller fills Pos and Neg before every run (as ops.Labels for
// SoftmaxCrossEntropy); the op only reads Bank, Pos and Neg.
type NCEMemory struct {
	// Bank is the memory bank, Rows x Dim float32 values row-major; its
	// rows are unit vectors, so dot products are cosine similarities.
	Bank []float32
	Rows int
	Dim  int
	// Pos holds each batch row's positive (its own bank entry m_I), [B, Dim].
	Pos []float32
	// FreshPos, when it has B entries, marks the rows whose positive is
	// instead the row's embedding in the last input (PIRL's f(v_I)),
	// copied into Pos at the start of each forward pass and a constant
	// from then on, like a bank entry (no gradient flows through it): the
	// positive of an image whose bank entry has never been written.
	FreshPos []bool
	// Neg holds each batch row's K negatives as bank row indices, [B, K];
	// with SharedNeg, one set of K negatives for every row, [K]. The
	// shared form computes scores and gradients as matrix products over
	// K gathered rows instead of B*K random reads of the bank.
	Neg       []int
	K         int
	SharedNeg bool
	// Tau is the temperature (PIRL and NPID: 0.07).
	Tau     float64
	Variant NCEVariant
	// Z is NCEUniform's normalising constant. While Z <= 0 a forward pass
	// estimates it from its first input's scores (rounded to float32
	// precision); it keeps the estimate only when EstimateZ is set
	// (training), so that inference passes never fix it.
	Z         float64
	EstimateZ bool

	// Acc[t] is, after a forward pass, the fraction of rows of input t
	// whose positive scores above all of that row's negatives.
	Acc []float64
	// Seen[t] is a float32 copy of input t's embeddings [B, Dim] from the
	// last forward pass, so that callers can update a memory bank without
	// reading graph memory after the run (Gorgonia may reuse it).
	Seen [][]float32
}

func (m *NCEMemory) check(B, D int) error {
	switch {
	case m.Dim != D:
		return fmt.Errorf("ops: memory nce: embeddings have %d columns, memory dim is %d", D, m.Dim)
	case m.Rows < 1 || len(m.Bank) != m.Rows*m.Dim:
		return fmt.Errorf("ops: memory nce: bank has %d values, expected %d rows x %d", len(m.Bank), m.Rows, m.Dim)
	case m.K < 1 || (!m.SharedNeg && len(m.Neg) != B*m.K):
		return fmt.Errorf("ops: memory nce: %d negative indices for %d rows x %d negatives (need K >= 1)", len(m.Neg), B, m.K)
	case m.SharedNeg && len(m.Neg) != m.K:
		return fmt.Errorf("ops: memory nce: %d shared negative indices, expected K = %d", len(m.Neg), m.K)
	case len(m.Pos) != B*D:
		return fmt.Errorf("ops: memory nce: %d positive values, expected %d rows x %d", len(m.Pos), B, D)
	case !(m.Tau > 0):
		return fmt.Errorf("ops: memory nce: temperature must be > 0, got %g", m.Tau)
	case m.Variant != NCESoftmax && m.Variant != NCEUniform:
		return fmt.Errorf("ops: memory nce: unknown variant %d", int(m.Variant))
	}
	for i, j := range m.Neg {
		if j < 0 || j >= m.Rows {
			return fmt.Errorf("ops: memory nce: negative %d of row %d is bank row %d, outside [0, %d)", i%m.K, i/m.K, j, m.Rows)
		}
	}
	return nil
}

// negRows returns the bank rows of row i's negatives (for per-row Neg).
func (m *NCEMemory) negRows(i int) []int { return m.Neg[i*m.K : (i+1)*m.K] }

// MemoryNCE is the contrastive loss of a batch of embeddings against a
// memory bank (PIRL, Misra & van der Maaten 2019, Sec. 3.2; NPID, Wu et
// al. 2018): for inputs e_1..e_T, each [B, D] with unit rows, and weights
// w_t, it is sum_t w_t * mean_i L(e_t[i]), with L the mem.Variant loss of
// row i against its positive mem.Pos[i] and its negatives mem.Neg[i]
// (constants: no gradient flows into the bank). The positive and the
// negatives are shared by all inputs, as in PIRL's
// L = lambda L_NCE(m_I, g(v_It)) + (1 - lambda) L_NCE(m_I, f(v_I)).
//
// Scores and losses are computed in float64 whatever the input dtype; the
// output is a scalar of the inputs' dtype.
func MemoryNCE(embs []*G.Node, weights []float64, mem *NCEMemory) (*G.Node, error) {
	if len(embs) == 0 || len(embs) != len(weights) {
		return nil, fmt.Errorf("ops: memory nce: %d inputs and %d weights (need the same number, at least one)", len(embs), len(weights))
	}
	for i, e := range embs {
		if e.Dims() != 2 || !e.Shape().Eq(embs[0].Shape()) {
			return nil, fmt.Errorf("ops: memory nce: input %d has shape %v, expected [B, D] like input 0 (%v)", i, e.Shape(), embs[0].Shape())
		}
	}
	op := &memoryNCE{base: newBase("MemoryNCE"), n: len(embs), weights: append([]float64(nil), weights...), mem: mem}
	return G.ApplyOp(op, embs...)
}

type memoryNCE struct {
	base
	n       int
	weights []float64
	mem     *NCEMemory
	// coef[t] holds dL/dz [B, K+1] of input t from the last forward pass
	// (unweighted, per row); the gradient ops, which run after the forward
	// pass (they take its output as an input), turn it into dL/de.
	coef [][]float64
	z    []float64 // scratch: scores [B, K+1] of one input
	// With SharedNeg: the K gathered negative rows [K, D] (in the inputs'
	// dtype) for the gradient ops, and a [B, K] scratch.
	neg32 []float32
	neg64 []float64
	s32   []float32
	s64   []float64
}

func (op *memoryNCE) Arity() int { return op.n }
func (op *memoryNCE) Type() hm.Type {
	r := make([]int, op.n+1)
	for i := 0; i < op.n; i++ {
		r[i] = 2
	}
	return fnType(r...)
}
func (op *memoryNCE) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}

// nceScores writes z[i*(K+1)+j] for rows of e [B, D]: the positive's score
// at j = 0 and the negatives' at j = 1..K, all divided by tau. With shared
// negatives neg holds their K gathered rows [K, D] and scratch [B, K]
// receives e*neg^T.
func nceScores[T Float](e []T, m *NCEMemory, z []float64, B int, neg, scratch []T) {
	D, K := m.Dim, m.K
	inv := 1 / m.Tau
	if m.SharedNeg {
		gemm(false, true, B, K, D, 1, e, D, neg, D, 0, scratch, K)
	}
	parallelFor(B, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			row := e[i*D : (i+1)*D]
			z[i*(K+1)] = dot64(row, m.Pos[i*D:(i+1)*D]) * inv
			if m.SharedNeg {
				for k, v := range scratch[i*K : (i+1)*K] {
					z[i*(K+1)+1+k] = float64(v) * inv
				}
				continue
			}
			for k, j := range m.negRows(i) {
				z[i*(K+1)+1+k] = dot64(row, m.Bank[j*D:(j+1)*D]) * inv
			}
		}
	})
}

// gatherShared copies the shared negatives' bank rows into op.neg32 or
// op.neg64 ([K, D]) and sizes the [B, K] scratch.
func (op *memoryNCE) gatherShared(dt tensor.Dtype, B int) {
	m := op.mem
	D, K := m.Dim, m.K
	if dt == tensor.Float32 {
		op.neg32 = grow(op.neg32, K*D)
		op.s32 = grow(op.s32, B*K)
		for k, j := range m.Neg {
			copy(op.neg32[k*D:(k+1)*D], m.Bank[j*D:(j+1)*D])
		}
		return
	}
	op.neg64 = grow(op.neg64, K*D)
	op.s64 = grow(op.s64, B*K)
	for k, j := range m.Neg {
		for d, v := range m.Bank[j*D : (j+1)*D] {
			op.neg64[k*D+d] = float64(v)
		}
	}
}

// grow returns s with length n, reallocated only when too small.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// dot64 is the dot product of a and b accumulated in float64 (four
// partial sums, summed in a fixed order).
func dot64[T Float](a []T, b []float32) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += float64(a[i]) * float64(b[i])
		s1 += float64(a[i+1]) * float64(b[i+1])
		s2 += float64(a[i+2]) * float64(b[i+2])
		s3 += float64(a[i+3]) * float64(b[i+3])
	}
	for ; i < len(a); i++ {
		s0 += float64(a[i]) * float64(b[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// softplus is log(1 + exp(x)) without overflow.
func softplus(x float64) float64 { return math.Max(x, 0) + math.Log1p(math.Exp(-math.Abs(x))) }

// sigmoid is 1/(1 + exp(-x)) without overflow.
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// nceRow computes one row's loss and writes dL/dz into c (same length as
// z: positive first, then the K negatives). logZ and logC are
// NCEUniform's log Z and log(K/N).
func nceRow(v NCEVariant, z, c []float64, logZ, logC float64) float64 {
	if v == NCEUniform {
		loss := softplus(logC - (z[0] - logZ))
		c[0] = -sigmoid(logC - (z[0] - logZ))
		for k := 1; k < len(z); k++ {
			lp := z[k] - logZ
			loss += softplus(lp - logC)
			c[k] = sigmoid(lp - logC)
		}
		return loss
	}
	mx := z[0]
	for _, v := range z[1:] {
		mx = math.Max(mx, v)
	}
	var s float64
	for j, v := range z {
		c[j] = math.Exp(v - mx) // e_j for now
		s += c[j]
	}
	loss := math.Log(s) - (z[0] - mx) // -log h_0
	p0 := c[0] / s
	var odds float64 // sum_k p_k / (1 - p_k)
	for k := 1; k < len(z); k++ {
		p := c[k] / s
		loss -= math.Log1p(-p)
		odds += p / (1 - p)
		c[k] = p
	}
	c[0] = p0 - 1 - p0*odds
	for k := 1; k < len(z); k++ {
		p := c[k]
		c[k] = p + p/(1-p) - p*odds
	}
	return loss
}

func (op *memoryNCE) Do(vs ...G.Value) (G.Value, error) {
	ds := make([]*tensor.Dense, op.n)
	for i := range ds {
		d, err := dense("memory nce", i, vs[i])
		if err != nil {
			return nil, err
		}
		if err := checkRank("memory nce", i, d, 2); err != nil {
			return nil, err
		}
		ds[i] = d
	}
	dt, err := dtypeOf("memory nce", ds...)
	if err != nil {
		return nil, err
	}
	B, D := ds[0].Shape()[0], ds[0].Shape()[1]
	m := op.mem
	if err := m.check(B, D); err != nil {
		return nil, err
	}
	K1 := m.K + 1
	if len(op.z) != B*K1 {
		op.z = make([]float64, B*K1)
	}
	if len(op.coef) != op.n {
		op.coef = make([][]float64, op.n)
	}
	if len(m.Acc) != op.n {
		m.Acc = make([]float64, op.n)
	}
	if len(m.Seen) != op.n {
		m.Seen = make([][]float32, op.n)
	}
	if len(m.FreshPos) == B {
		last := ds[op.n-1]
		for i, fresh := range m.FreshPos {
			if !fresh {
				continue
			}
			dst := m.Pos[i*D : (i+1)*D]
			switch dt {
			case tensor.Float32:
				copy(dst, last.Float32s()[i*D:(i+1)*D])
			default:
				for j, v := range last.Float64s()[i*D : (i+1)*D] {
					dst[j] = float32(v)
				}
			}
		}
	}
	if m.SharedNeg {
		op.gatherShared(dt, B)
	}
	var total, zc, logZ float64
	for t, d := range ds {
		switch dt {
		case tensor.Float32:
			nceScores(d.Float32s(), m, op.z, B, op.neg32, op.s32)
			m.Seen[t] = append(m.Seen[t][:0], d.Float32s()...)
		default:
			nceScores(d.Float64s(), m, op.z, B, op.neg64, op.s64)
			m.Seen[t] = m.Seen[t][:0]
			for _, v := range d.Float64s() {
				m.Seen[t] = append(m.Seen[t], float32(v))
			}
		}
		var logC float64
		if m.Variant == NCEUniform {
			if t == 0 {
				zc = m.Z
				if !(zc > 0) { // estimate from the first input, as VISSL does
					var s float64
					for _, v := range op.z {
						s += math.Exp(v)
					}
					// Rounded to float32, so that a float32 checkpoint
					// restores it exactly.
					zc = float64(float32(s / float64(len(op.z)) * float64(m.Rows)))
					if m.EstimateZ {
						m.Z = zc
					}
				}
			}
			logZ, logC = math.Log(zc), math.Log(float64(m.K)/float64(m.Rows))
		}
		if len(op.coef[t]) != B*K1 {
			op.coef[t] = make([]float64, B*K1)
		}
		c := op.coef[t]
		losses := make([]float64, B)
		correct := make([]bool, B)
		parallelFor(B, func(_, lo, hi int) {
			for i := lo; i < hi; i++ {
				zi := op.z[i*K1 : (i+1)*K1]
				losses[i] = nceRow(m.Variant, zi, c[i*K1:(i+1)*K1], logZ, logC)
				correct[i] = true
				for _, v := range zi[1:] {
					if v >= zi[0] {
						correct[i] = false
						break
					}
				}
			}
		})
		var sum float64
		hits := 0
		for i := range losses {
			sum += losses[i]
			if correct[i] {
				hits++
			}
		}
		m.Acc[t] = float64(hits) / float64(B)
		total += op.weights[t] * sum / float64(B)
	}
	if dt == tensor.Float32 {
		return G.NewF32(float32(total)), nil
	}
	return G.NewF64(total), nil
}

func (op *memoryNCE) DiffWRT(int) []bool {
	d := make([]bool, op.n)
	for i := range d {
		d[i] = true
	}
	return d
}

func (op *memoryNCE) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	res := make(G.Nodes, op.n)
	for t := range in {
		n, err := G.ApplyOp(&memoryNCEGrad{base: newBase(fmt.Sprintf("MemoryNCEGrad%d", t)), fwd: op, t: t}, in[t], out, grad)
		if err != nil {
			return nil, err
		}
		res[t] = n
	}
	return res, nil
}

// memoryNCEGrad computes dL/de_t from (e_t, loss, seed), using the dL/dz
// coefficients its forward op recorded:
// dL/de_t[i] = seed * w_t / (B tau) * (c_i0 Pos[i] + sum_k c_ik Bank[Neg[i,k]]).
type memoryNCEGrad struct {
	base
	fwd *memoryNCE
	t   int
}

func (op *memoryNCEGrad) Arity() int    { return 3 }
func (op *memoryNCEGrad) Type() hm.Type { return fnType(2, 0, 0, 2) }
func (op *memoryNCEGrad) InferShape(ns ...G.DimSizer) (tensor.Shape, error) {
	return ns[0].(tensor.Shape).Clone(), nil
}

func nceGradKernel[T Float](m *NCEMemory, c []float64, scale float64, dx []T, B int, neg, scratch []T) {
	D, K := m.Dim, m.K
	if m.SharedNeg {
		// dx = scale * (c[:, 1:] * neg + c[:, 0] pos)
		for i := 0; i < B; i++ {
			for k := 0; k < K; k++ {
				scratch[i*K+k] = T(c[i*(K+1)+1+k] * scale)
			}
		}
		gemm(false, false, B, D, K, 1, scratch, K, neg, D, 0, dx, D)
		for i := 0; i < B; i++ {
			w := c[i*(K+1)] * scale
			for d, v := range m.Pos[i*D : (i+1)*D] {
				dx[i*D+d] += T(w * float64(v))
			}
		}
		return
	}
	parallelFor(B, func(_, lo, hi int) {
		acc := make([]float64, D)
		for i := lo; i < hi; i++ {
			ci := c[i*(K+1) : (i+1)*(K+1)]
			pos := m.Pos[i*D : (i+1)*D]
			for d := range acc {
				acc[d] = ci[0] * float64(pos[d])
			}
			for k, j := range m.negRows(i) {
				w := ci[k+1]
				row := m.Bank[j*D : (j+1)*D]
				for d, v := range row {
					acc[d] += w * float64(v)
				}
			}
			for d, v := range acc {
				dx[i*D+d] = T(v * scale)
			}
		}
	})
}

func (op *memoryNCEGrad) Do(vs ...G.Value) (G.Value, error) {
	e, err := dense("memory nce grad", 0, vs[0])
	if err != nil {
		return nil, err
	}
	seed, err := ScalarValue("memory nce grad", vs[2])
	if err != nil {
		return nil, err
	}
	B, D := e.Shape()[0], e.Shape()[1]
	m := op.fwd.mem
	if op.t >= len(op.fwd.coef) || len(op.fwd.coef[op.t]) != B*(m.K+1) {
		return nil, fmt.Errorf("ops: memory nce grad: no coefficients for input %d from a forward pass over %d rows", op.t, B)
	}
	scale := seed * op.fwd.weights[op.t] / (float64(B) * m.Tau)
	dx := op.output(e.Dtype(), false, B, D)
	switch e.Dtype() {
	case tensor.Float32:
		nceGradKernel(m, op.fwd.coef[op.t], scale, dx.Float32s(), B, op.fwd.neg32, op.fwd.s32)
	case tensor.Float64:
		nceGradKernel(m, op.fwd.coef[op.t], scale, dx.Float64s(), B, op.fwd.neg64, op.fwd.s64)
	default:
		return nil, fmt.Errorf("ops: memory nce grad: dtype %v, expected float32 or float64", e.Dtype())
	}
	return dx, nil
}
