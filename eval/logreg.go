package eval

import (
	"fmt"
	"math"
)

// LogRegConfig configures TrainLogReg.
type LogRegConfig struct {
	// L2 is the penalty strength lambda in mean cross-entropy +
	// (lambda/2)*||W||^2 (the bias is not penalised). Default 1e-4; 0 is allowed.
	L2 float64 `json:"l2"`
	// MaxIter caps L-BFGS iterations (each costs one or a few passes over the
	// data). Default 100 (as scikit-learn).
	MaxIter int `json:"max_iter"`
	// Tol stops L-BFGS once every gradient entry is at most Tol in absolute
	// value. Default 1e-5.
	Tol float64 `json:"tol"`
	// Workers is the number of goroutines; default GOMAXPROCS. Results do not
	// depend on it.
	Workers int `json:"workers"`
}

// DefaultLogRegConfig returns L2 1e-4, MaxIter 100, Tol 1e-5, Workers 0 (GOMAXPROCS).
func DefaultLogRegConfig() LogRegConfig {
	return LogRegConfig{L2: 1e-4, MaxIter: 100, Tol: 1e-5}
}

// resolve fills zero fields (other than L2) with defaults and checks ranges.
func (c LogRegConfig) resolve() (LogRegConfig, error) {
	def := DefaultLogRegConfig()
	if c.MaxIter <= 0 {
		c.MaxIter = def.MaxIter
	}
	if c.Tol <= 0 {
		c.Tol = def.Tol
	}
	if c.L2 < 0 || math.IsNaN(c.L2) || math.IsInf(c.L2, 0) {
		return c, fmt.Errorf("l2 = %v, want a finite value >= 0", c.L2)
	}
	c.Workers = defaultWorkers(c.Workers)
	return c, nil
}

// LogReg is a multinomial logistic-regression classifier on standardised
// features: scores = W * Std(x) + B.
type LogReg struct {
	Dim     int           `json:"dim"`
	Classes int           `json:"classes"`
	Std     *Standardizer `json:"standardizer"`
	// W holds the weights [Classes, Dim] acting on standardised features.
	W []float32 `json:"weights"`
	// B holds the biases [Classes].
	B []float32 `json:"bias"`

	// How training went.
	L2          float64 `json:"l2"`
	Iterations  int     `json:"iterations"`
	Evaluations int     `json:"evaluations"` // passes over the data
	Loss        float64 `json:"loss"`        // final objective
	GradMax     float64 `json:"grad_max"`    // final max |gradient|
	Stop        string  `json:"stop"`        // one of the Stop* constants

	workers int
}

// TrainLogReg fits multinomial logistic regression to x ([n, d], row-major)
// and labels y in [0, k). It standardises the features (FitStandardizer),
// then minimises mean cross-entropy + (cfg.L2/2)*||W||^2 over W [k, d] and
// B [k] with L-BFGS from zero. Each pass over the data runs in float32
// kernels with float64 softmax and accumulation, spread over cfg.Workers
// goroutines with a fixed reduction order.
func TrainLogReg(x []float32, n, d int, y []int, k int, cfg LogRegConfig) (*LogReg, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, fmt.Errorf("eval: logistic regression: %w", err)
	}
	if err := checkMatrix("eval: logistic regression: features", x, n, d); err != nil {
		return nil, err
	}
	if err := checkLabels("eval: logistic regression", y, n, k); err != nil {
		return nil, err
	}
	std := fitStandardizer(x, n, d, nil)
	xs := make([]float32, n*d)
	std.transformRows(xs, x)
	return trainStandardized(xs, n, d, y, k, cfg, std, nil), nil
}

// trainStandardized fits on already standardised, already checked features,
// starting from init (a model of the same shape) or from zero when init is nil.
func trainStandardized(xs []float32, n, d int, y []int, k int, cfg LogRegConfig, std *Standardizer, init *LogReg) *LogReg {
	obj := newLRObjective(xs, n, d, y, k, cfg.L2, cfg.Workers)
	theta0 := make([]float64, k*d+k)
	if init != nil {
		for i, v := range init.W {
			theta0[i] = float64(v)
		}
		for c, v := range init.B {
			theta0[k*d+c] = float64(v)
		}
	}
	res := minimizeLBFGS(obj.eval, theta0, cfg.MaxIter, cfg.Tol, 10)
	m := &LogReg{
		Dim: d, Classes: k, Std: std,
		W: make([]float32, k*d), B: make([]float32, k),
		L2: cfg.L2, Iterations: res.iters, Evaluations: res.evals,
		Loss: res.f, GradMax: res.gInf, Stop: res.status,
		workers: cfg.Workers,
	}
	for i := range m.W {
		m.W[i] = float32(res.x[i])
	}
	for c := range m.B {
		m.B[c] = float32(res.x[k*d+c])
	}
	return m
}

// Rows per chunk: one kernel call's worth, small enough for L2.
const lrChunk = 256

// Row groups: each is summed by one goroutine in a fixed order, and the
// groups are then summed in order, so the result does not depend on the
// number of workers.
const lrGroups = 16

// lrObjective evaluates mean cross-entropy + (l2/2)*||W||^2 and its gradient
// on standardised features. theta is [W (k*d, row-major), B (k)].
type lrObjective struct {
	x       []float32
	y       []int
	n, d, k int
	kp      int // k rounded up to a multiple of 4 (gemmTN's tile)
	l2      float64
	workers int

	groups  [][2]int    // row ranges
	wf      []float32   // [k, d] float32 weights
	gAcc    [][]float64 // per group [k*d]
	bAcc    [][]float64 // per group [k]
	lossAcc []float64   // per group
	scratch []lrScratch // per worker
}

type lrScratch struct {
	z []float32 // [lrChunk, kp] logits
	r []float32 // [lrChunk, kp] residuals p - onehot; columns >= k stay 0
	g []float32 // [kp, d] chunk gradient
}

func newLRObjective(x []float32, n, d int, y []int, k int, l2 float64, workers int) *lrObjective {
	o := &lrObjective{x: x, y: y, n: n, d: d, k: k, kp: (k + 3) &^ 3, l2: l2, workers: workers}
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
		}
	}
	return o
}

// eval returns the objective at theta and writes its gradient into grad.
func (o *lrObjective) eval(theta, grad []float64) float64 {
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
func (o *lrObjective) group(s *lrScratch, g int, bias []float64) {
	k, kp, d := o.k, o.kp, o.d
	gAcc, bAcc := o.gAcc[g], o.bAcc[g]
	clear(gAcc)
	clear(bAcc)
	var loss float64
	p := make([]float64, k)
	for lo := o.groups[g][0]; lo < o.groups[g][1]; lo += lrChunk {
		rows := min(lrChunk, o.groups[g][1]-lo)
		xc := o.x[lo*d : (lo+rows)*d]
		gemmNT(rows, k, d, xc, d, o.wf, d, s.z, kp)
		for i := 0; i < rows; i++ {
			z := s.z[i*kp : i*kp+k]
			r := s.r[i*kp : i*kp+k]
			zmax := math.Inf(-1)
			for c, v := range z {
				p[c] = float64(v) + bias[c]
				zmax = max(zmax, p[c])
			}
			var sum float64
			for c := range p {
				p[c] = math.Exp(p[c] - zmax)
				sum += p[c]
			}
			yi := o.y[lo+i]
			loss += zmax + math.Log(sum) - (float64(z[yi]) + bias[yi])
			for c := range p {
				p[c] /= sum
			}
			p[yi] -= 1
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

// Scores returns the logits W * Std(x) + B, [n, Classes], for raw features
// x [n, Dim].
func (m *LogReg) Scores(x []float32, n int) ([]float32, error) {
	if err := checkMatrix("eval: logistic regression: scores: features", x, n, m.Dim); err != nil {
		return nil, err
	}
	if m.Std == nil || m.Std.Dim() != m.Dim || len(m.W) != m.Classes*m.Dim || len(m.B) != m.Classes {
		return nil, fmt.Errorf("eval: logistic regression: model is malformed: dim %d, classes %d, %d weights, %d biases", m.Dim, m.Classes, len(m.W), len(m.B))
	}
	return m.scores(x, n, true), nil
}

// scores computes logits for checked features, standardising them first when
// raw is true.
func (m *LogReg) scores(x []float32, n int, raw bool) []float32 {
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
func (m *LogReg) Predict(x []float32, n int) ([]int, error) {
	s, err := m.Scores(x, n)
	if err != nil {
		return nil, err
	}
	pred := make([]int, n)
	for i := range pred {
		pred[i] = argmax(s[i*m.Classes : (i+1)*m.Classes])
	}
	return pred, nil
}

// Accuracy returns the top-`top` accuracy of the model on x ([n, Dim]) with
// labels y (see TopKAccuracy).
func (m *LogReg) Accuracy(x []float32, n int, y []int, top int) (float64, error) {
	s, err := m.Scores(x, n)
	if err != nil {
		return 0, err
	}
	return TopKAccuracy(s, n, m.Classes, y, top)
}
