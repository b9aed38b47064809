package eval

import (
	"fmt"
	"math"
)

// SVMConfig configures TrainSVM.
type SVMConfig struct {
	// C is the cost of every one-vs-rest problem (LinearSVC's C): class c
	// minimises (1/2)*||w_c||^2 + C * sum_i a_i * max(0, 1 - t_ic*(w_c . x_i + b_c))^2
	// with t_ic = +1 when row i is of class c and -1 otherwise; the bias b_c is
	// not penalised. Larger C means weaker regularisation. Default 1.
	C float64 `json:"c"`
	// PositiveWeight is a_i for the positive rows of each problem (negatives
	// weigh 1). Default 1; Goyal et al. 2019 use 2 on VOC07.
	PositiveWeight float64 `json:"positive_weight"`
	// MaxIter caps L-BFGS iterations; default 100.
	MaxIter int `json:"max_iter"`
	// Tol stops L-BFGS once every entry of the gradient of the normalised
	// objective (see SVM.Loss) is at most Tol in absolute value; default 1e-5.
	Tol float64 `json:"tol"`
	// Workers is the number of goroutines; default GOMAXPROCS. Results do not
	// depend on it.
	Workers int `json:"workers"`
}

// DefaultSVMConfig returns C 1, PositiveWeight 1, MaxIter 100, Tol 1e-5,
// Workers 0 (GOMAXPROCS).
func DefaultSVMConfig() SVMConfig {
	return SVMConfig{C: 1, PositiveWeight: 1, MaxIter: 100, Tol: 1e-5}
}

func (c SVMConfig) resolve() (SVMConfig, error) {
	def := DefaultSVMConfig()
	if c.C == 0 {
		c.C = def.C
	}
	if !(c.C > 0) || math.IsInf(c.C, 0) {
		return c, fmt.Errorf("cost C = %v, want a finite value > 0", c.C)
	}
	if c.PositiveWeight == 0 {
		c.PositiveWeight = def.PositiveWeight
	}
	if !(c.PositiveWeight > 0) || math.IsInf(c.PositiveWeight, 0) {
		return c, fmt.Errorf("positive weight %v, want a finite value > 0", c.PositiveWeight)
	}
	if c.MaxIter <= 0 {
		c.MaxIter = def.MaxIter
	}
	if c.Tol <= 0 {
		c.Tol = def.Tol
	}
	c.Workers = defaultWorkers(c.Workers)
	return c, nil
}

// SVM is a one-vs-rest linear support-vector machine with the squared hinge
// loss on standardised features: the score of class c is its decision value
// w_c . Std(x) + b_c, and the predicted class is the one with the largest.
type SVM struct {
	Linear

	C              float64 `json:"c"`
	PositiveWeight float64 `json:"positive_weight"`
	Iterations     int     `json:"iterations"`
	Evaluations    int     `json:"evaluations"` // passes over the data
	// Loss is the final normalised objective, the sum over classes of
	// mean_i a_i*max(0, 1 - t_ic*s_ic)^2 + ||w_c||^2/(2*C*n): LinearSVC's
	// objective divided by C*n.
	Loss    float64 `json:"loss"`
	GradMax float64 `json:"grad_max"` // final max |gradient| of Loss
	Stop    string  `json:"stop"`     // one of the Stop* constants
}

// TrainSVM fits k one-vs-rest linear SVMs (squared hinge loss, L2 penalty:
// scikit-learn's LinearSVC(loss="squared_hinge", penalty="l2") without a
// penalty on the intercept) to x ([n, d], row-major) with labels y in
// [0, k), after standardising the features (FitStandardizer). This is the
// classifier of the VOC07 linear-SVM protocol (Goyal et al. 2019, "Scaling
// and Benchmarking Self-Supervised Visual Representation Learning", section
// 4; Misra & van der Maaten 2019, PIRL, section 4.2). The k problems are
// independent; they are minimised together, as one sum, with L-BFGS from
// zero, sharing every pass over the data.
func TrainSVM(x []float32, n, d int, y []int, k int, cfg SVMConfig) (*SVM, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, fmt.Errorf("eval: svm: %w", err)
	}
	if err := checkMatrix("eval: svm: features", x, n, d); err != nil {
		return nil, err
	}
	if err := checkLabels("eval: svm", y, n, k); err != nil {
		return nil, err
	}
	std := fitStandardizer(x, n, d, nil)
	xs := make([]float32, n*d)
	std.transformRows(xs, x)
	return trainSVMStandardized(xs, n, d, y, k, cfg, std, nil), nil
}

// trainSVMStandardized fits on standardised, checked features from init (or
// zero).
func trainSVMStandardized(xs []float32, n, d int, y []int, k int, cfg SVMConfig, std *Standardizer, init *Linear) *SVM {
	obj := newLinObjective(xs, n, d, y, k, 1/(cfg.C*float64(n)), cfg.Workers, squaredHingeOvR(cfg.PositiveWeight))
	lin, res := obj.minimize(init, cfg.MaxIter, cfg.Tol, std)
	return &SVM{
		Linear: lin, C: cfg.C, PositiveWeight: cfg.PositiveWeight,
		Iterations: res.iters, Evaluations: res.evals, Loss: res.f, GradMax: res.gInf, Stop: res.status,
	}
}

// squaredHingeOvR returns the one-vs-rest squared hinge loss of one row:
// sum_c a_c*max(0, 1 - t_c*(z_c + b_c))^2 with t_c = +1 for c = y (weight
// a = pos) and -1 otherwise (weight 1); its gradient with respect to z_c is
// -2*a_c*t_c*max(0, 1 - t_c*(z_c + b_c)).
func squaredHingeOvR(pos float64) rowLoss {
	return func(z []float32, bias []float64, y int, g []float64) float64 {
		var loss float64
		for c, v := range z {
			s := float64(v) + bias[c]
			t, a := -1.0, 1.0
			if c == y {
				t, a = 1, pos
			}
			m := 1 - t*s
			if m <= 0 {
				g[c] = 0
				continue
			}
			loss += a * m * m
			g[c] = -2 * a * t * m
		}
		return loss
	}
}
