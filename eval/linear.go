package eval

import (
	"fmt"
	"math"
)

// Linear is a linear classifier on standardised features:
// scores = W * Std(x) + B. Both logistic regression (LogReg) and the
// one-vs-rest SVM (SVM) are Linear models; they differ in the loss they were
// fitted with.
type Linear struct {
	Dim     int           `json:"dim"`
	Classes int           `json:"classes"`
	Std     *Standardizer `json:"standardizer"`
	// W holds the weights [Classes, Dim] acting on standardised features.
	W []float32 `json:"weights"`
	// B holds the biases [Classes].
	B []float32 `json:"bias"`

	workers int
}

// rowLoss is the loss of one row of a linear model: given the row's logits z
// ([k], without bias), the biases ([k]) and its label y, it returns the
// row's loss and writes the loss's gradient with respect to z into g ([k]).
type rowLoss func(z []float32, bias []float64, y int, g []float64) float64

// Rows per chunk: one kernel call's worth, small enough for L2.
const lrChunk = 256

// Row groups: each is summed by one goroutine in a fixed order, and the
// groups are then summed in order, so the result does not depend on the
// number of workers.
const lrGroups = 16

// linObjective evaluates mean(loss) + (l2/2)*||W||^2 and its gradient for a
// linear model on standardised features. theta is [W (k*d, row-major), B (k)];
// the bias is not penalised.
type linObjective struct {
	x       []float32
	y       []int
	n, d, k int
	kp      int // k rounded up to a multiple of 4 (gemmTN's tile)
	l2      float64
	workers int
	loss    rowLoss

	groups  [][2]int    // row ranges
	wf      []float32   // [k, d] float32 weights
	gAcc    [][]float64 // per group [k*d]
	bAcc    [][]float64 // per group [k]
	lossAcc []float64   // per group
	scratch []lrScratch // per worker
}

type lrScratch struct {
	z []float32 // [lrChunk, kp] logits
	r []float32 // [lrChunk, kp] loss gradients w.r.t. the logits; columns >= k stay 0
	g []float32 // [kp, d] chunk gradient
	p []float64 // [k] one row's gradient
}

func newLinObjective(x []float32, n, d int, y []int, k int, l2 float64, workers int, loss rowLoss) *linObjective {
	o := &linObjective{x: x, y: y, n: n, d: d, k: k, kp: (k + 3) &^ 3, l2: l2, workers: workers, loss: loss}
	chunks := (n + lrChunk - 1) / lrChunk
	ng := min(lrGroups, chunks)
	for g := 0; g < ng; g++ {
		lo := g * chunks / ng * lrChunk
		hi := min(n, (g+1)*chunks/ng*lrChunk)
		o.groups = append(o.groups, [2]int{lo, hi})
	}
	o.wf = make([]float32, k*d)
	o.gAcc = make([][]float64, ng)
	o.bAcc = make([][]float64, ng)
	for g := range o.gAcc {
		o.gAcc[g] = make([]float64, k*d)
		o.bAcc[g] = make([]float64, k)
	}
	o.lossAcc = make([]float64, ng)
	o.scratch = make([]lrScratch, min(workers, ng))
	for w := range o.scratch {
		o.scratch[w] = lrScratch{
			z: make([]float32, lrChunk*o.kp),
			r: make([]float32, lrChunk*o.kp),
			g: make([]float32, o.kp*d),
			p: make([]float64, k),
		}
	}
	return o
}

// minimize runs L-BFGS from init (or zero when init is nil) and returns the
// fitted model, carrying std, with the optimiser's report.
func (o *linObjective) minimize(init *Linear, maxIter int, tol float64, std *Standardizer) (Linear, lbfgsResult) {
	k, d := o.k, o.d
	theta0 := make([]float64, k*d+k)
	if init != nil {
		for i, v := range init.W {
			theta0[i] = float64(v)
		}
		for c, v := range init.B {
			theta0[k*d+c] = float64(v)
		}
	}
	res := minimizeLBFGS(o.eval, theta0, maxIter, tol, 10)
	m := Linear{Dim: d, Classes: k, Std: std, W: make([]float32, k*d), B: make([]float32, k), workers: o.workers}
	for i := range m.W {
		m.W[i] = float32(res.x[i])
	}
	for c := range m.B {
		m.B[c] = float32(res.x[k*d+c])
	}
	return m, res
}

// eval returns the objective at theta and writes its gradient into grad.
func (o *linObjective) eval(theta, grad []float64) float64 {
	k, d := o.k, o.d
	for i := range o.wf {
		o.wf[i] = float32(theta[i])
	}
	bias := theta[k*d:]
	parallelFor(len(o.groups), len(o.scratch), func(w, g int) {
		o.group(&o.scratch[w], g, bias)
	})

	inv := 1 / float64(o.n)
	var loss float64
	clear(grad)
	for g := range o.groups {
		loss += o.lossAcc[g]
		axpy(1, o.gAcc[g], grad[:k*d])
		axpy(1, o.bAcc[g], grad[k*d:])
	}
	scale(inv, grad)
	loss *= inv
	var ww float64
	for i, v := range theta[:k*d] {
		ww += v * v
		grad[i] += o.l2 * v
	}
	return loss + 0.5*o.l2*ww
}

// group accumulates the unscaled loss and gradient sums of row group g.
func (o *linObjective) group(s *lrScratch, g int, bias []float64) {
	k, kp, d := o.k, o.kp, o.d
	gAcc, bAcc := o.gAcc[g], o.bAcc[g]
	clear(gAcc)
	clear(bAcc)
	var loss float64
	p := s.p
	for lo := o.groups[g][0]; lo < o.groups[g][1]; lo += lrChunk {
		rows := min(lrChunk, o.groups[g][1]-lo)
		xc := o.x[lo*d : (lo+rows)*d]
		gemmNT(rows, k, d, xc, d, o.wf, d, s.z, kp)
		for i := 0; i < rows; i++ {
			loss += o.loss(s.z[i*kp:i*kp+k], bias, o.y[lo+i], p)
			r := s.r[i*kp : i*kp+k]
			for c, v := range p {
				r[c] = float32(v)
				bAcc[c] += v
			}
		}
		clear(s.g)
		gemmTN(kp, d, rows, s.r, kp, xc, d, s.g, d)
		for i, v := range s.g[:k*d] {
			gAcc[i] += float64(v)
		}
	}
	o.lossAcc[g] = loss
}

// Scores returns the scores W * Std(x) + B, [n, Classes], for raw features
// x [n, Dim].
func (m *Linear) Scores(x []float32, n int) ([]float32, error) {
	if err := checkMatrix("eval: linear model: scores: features", x, n, m.Dim); err != nil {
		return nil, err
	}
	if m.Std == nil || m.Std.Dim() != m.Dim || len(m.W) != m.Classes*m.Dim || len(m.B) != m.Classes {
		return nil, fmt.Errorf("eval: linear model is malformed: dim %d, classes %d, %d weights, %d biases", m.Dim, m.Classes, len(m.W), len(m.B))
	}
	return m.scores(x, n, true), nil
}

// scores computes scores for checked features, standardising them first when
// raw is true.
func (m *Linear) scores(x []float32, n int, raw bool) []float32 {
	d, k := m.Dim, m.Classes
	out := make([]float32, n*k)
	chunks := (n + lrChunk - 1) / lrChunk
	workers := min(defaultWorkers(m.workers), chunks)
	bufs := make([][]float32, workers)
	parallelFor(chunks, workers, func(w, c int) {
		lo := c * lrChunk
		rows := min(lrChunk, n-lo)
		xc := x[lo*d : (lo+rows)*d]
		if raw {
			if bufs[w] == nil {
				bufs[w] = make([]float32, lrChunk*d)
			}
			m.Std.transformRows(bufs[w][:rows*d], xc)
			xc = bufs[w][:rows*d]
		}
		oc := out[lo*k : (lo+rows)*k]
		gemmNT(rows, k, d, xc, d, m.W, d, oc, k)
		for i := 0; i < rows; i++ {
			for c := 0; c < k; c++ {
				oc[i*k+c] += m.B[c]
			}
		}
	})
	return out
}

// Predict returns the class with the highest score for each row of x
// ([n, Dim]); ties go to the lower class index.
func (m *Linear) Predict(x []float32, n int) ([]int, error) {
	s, err := m.Scores(x, n)
	if err != nil {
		return nil, err
	}
	return argmaxRows(s, m.Classes), nil
}

// argmaxRows is argmax of every row of s ([*, k]).
func argmaxRows[T float32 | float64](s []T, k int) []int {
	pred := make([]int, len(s)/k)
	for i := range pred {
		pred[i] = argmax(s[i*k : (i+1)*k])
	}
	return pred
}

// Accuracy returns the top-`top` accuracy of the model on x ([n, Dim]) with
// labels y (see TopKAccuracy).
func (m *Linear) Accuracy(x []float32, n int, y []int, top int) (float64, error) {
	s, err := m.Scores(x, n)
	if err != nil {
		return 0, err
	}
	return TopKAccuracy(s, n, m.Classes, y, top)
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
