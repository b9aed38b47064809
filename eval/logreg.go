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
// features: scores = W * Std(x) + B (see Linear), with how its training went.
type LogReg struct {
	Linear

	// How training went.
	L2          float64 `json:"l2"`
	Iterations  int     `json:"iterations"`
	Evaluations int     `json:"evaluations"` // passes over the data
	Loss        float64 `json:"loss"`        // final objective
	GradMax     float64 `json:"grad_max"`    // final max |gradient|
	Stop        string  `json:"stop"`        // one of the Stop* constants
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
func trainStandardized(xs []float32, n, d int, y []int, k int, cfg LogRegConfig, std *Standardizer, init *Linear) *LogReg {
	obj := newLinObjective(xs, n, d, y, k, cfg.L2, cfg.Workers, softmaxCE)
	lin, res := obj.minimize(init, cfg.MaxIter, cfg.Tol, std)
	return &LogReg{
		Linear: lin,
		L2:     cfg.L2, Iterations: res.iters, Evaluations: res.evals,
		Loss: res.f, GradMax: res.gInf, Stop: res.status,
	}
}

// softmaxCE is the multinomial cross-entropy of one row: given logits z
// (without bias), biases and the label y, it returns the loss and writes its
// gradient with respect to the logits, softmax(z + b) - onehot(y), into g.
func softmaxCE(z []float32, bias []float64, y int, g []float64) float64 {
	zmax := math.Inf(-1)
	for c, v := range z {
		g[c] = float64(v) + bias[c]
		zmax = max(zmax, g[c])
	}
	var sum float64
	for c := range g {
		g[c] = math.Exp(g[c] - zmax)
		sum += g[c]
	}
	loss := zmax + math.Log(sum) - (float64(z[y]) + bias[y])
	for c := range g {
		g[c] /= sum
	}
	g[y] -= 1
	return loss
}
