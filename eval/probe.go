package eval

import (
	"cmp"
	"fmt"
	"math"
	"math/rand"
	"slices"
	"time"
)

// Classifiers LinearProbe can fit.
const (
	ClassifierLogReg = "logreg" // multinomial logistic regression (TrainLogReg)
	ClassifierSVM    = "svm"    // one-vs-rest linear SVM, squared hinge (TrainSVM)
)

// ProbeConfig configures LinearProbe.
type ProbeConfig struct {
	// Classifier is ClassifierLogReg (default) or ClassifierSVM.
	Classifier string `json:"classifier"`
	// ValFraction is the share of the training set held out to choose the
	// regularisation; default 0.1. Must be in (0, 1).
	ValFraction float64 `json:"val_fraction"`
	// L2Grid lists the logistic-regression L2 strengths to try; default
	// {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1}.
	L2Grid []float64 `json:"l2_grid"`
	// CGrid lists the SVM costs to try (SVMConfig.C); default
	// {1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1}.
	CGrid []float64 `json:"c_grid"`
	// PositiveWeight weighs the positives of each SVM problem; default 1.
	PositiveWeight float64 `json:"positive_weight"`
	// Seed draws the validation split.
	Seed int64 `json:"seed"`
	// MaxIter, Tol and Workers are passed to every fit (see LogRegConfig);
	// zero means the LogRegConfig default.
	MaxIter int     `json:"max_iter"`
	Tol     float64 `json:"tol"`
	Workers int     `json:"workers"`
}

// DefaultProbeConfig returns logistic regression, ValFraction 0.1, L2Grid
// {1e-5, ..., 1e-1}, CGrid {1e-5, ..., 1}, PositiveWeight 1, Seed 0 and the
// LogRegConfig defaults.
func DefaultProbeConfig() ProbeConfig {
	def := DefaultLogRegConfig()
	return ProbeConfig{
		Classifier:     ClassifierLogReg,
		ValFraction:    0.1,
		L2Grid:         []float64{1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1},
		CGrid:          []float64{1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1},
		PositiveWeight: 1,
		MaxIter:        def.MaxIter,
		Tol:            def.Tol,
	}
}

// ProbeResult reports a linear probe. Accuracies are fractions in [0, 1].
type ProbeResult struct {
	Classifier string  `json:"classifier"` // ClassifierLogReg or ClassifierSVM
	Top1       float64 `json:"top1"`       // test top-1 accuracy of the final model
	Top5       float64 `json:"top5"`       // test top-min(5, classes) accuracy
	TopK       int     `json:"top5_k"`
	// MAP is the test mean over classes of the one-vs-rest average
	// precision of the scores (AveragePrecision), the figure of the VOC07
	// protocol.
	MAP float64 `json:"map"`
	L2  float64 `json:"l2,omitempty"` // chosen L2 strength (logistic regression)
	C   float64 `json:"c,omitempty"`  // chosen cost (SVM)

	L2Grid  []float64 `json:"l2_grid,omitempty"`
	CGrid   []float64 `json:"c_grid,omitempty"`
	ValTop1 []float64 `json:"val_top1"` // validation top-1 per grid entry

	NTrain     int     `json:"n_train"` // rows used to fit the final model
	NVal       int     `json:"n_val"`   // rows held out while choosing the regularisation
	NTest      int     `json:"n_test"`
	Dim        int     `json:"dim"`
	Classes    int     `json:"classes"`
	Iterations int     `json:"iterations"` // L-BFGS iterations of the final fit
	Stop       string  `json:"stop"`       // why the final fit stopped
	Seconds    float64 `json:"seconds"`    // wall time of the whole probe

	// Model is the final classifier (fitted on all training rows), for
	// predictions and confusion matrices; it is not part of the JSON.
	Model *Linear `json:"-"`
}

// LinearProbe trains a linear classifier on frozen features and reports its
// test accuracy, following the linear-evaluation protocol of Goyal et al. 2019
// ("Scaling and Benchmarking Self-Supervised Visual Representation
// Learning"): multinomial logistic regression by default, or their
// one-vs-rest linear SVM (cfg.Classifier = ClassifierSVM).
//
// trainX is [len(trainY), d] and testX is [len(testY), d], row-major; labels
// are in [0, k). A validation split of cfg.ValFraction of the training rows is
// drawn with cfg.Seed; for each entry of the grid (cfg.L2Grid, or cfg.CGrid
// for the SVM) a model is fitted on the remaining training rows
// (standardised with their own statistics) and scored on the validation
// rows. The entry with the best validation top-1 wins (ties go to the
// stronger regularisation: larger L2, smaller C); the model is then refitted
// on all training rows and scored once on the test set. Test labels are read
// only for that final report.
func LinearProbe(trainX []float32, trainY []int, testX []float32, testY []int, d, k int, cfg ProbeConfig) (ProbeResult, error) {
	start := time.Now()
	const what = "eval: linear probe"
	cfg, err := cfg.resolve()
	if err != nil {
		return ProbeResult{}, fmt.Errorf("%s: %w", what, err)
	}
	nTrain, err := rowsOf(what+": train", trainX, trainY, d)
	if err != nil {
		return ProbeResult{}, err
	}
	nTest, err := rowsOf(what+": test", testX, testY, d)
	if err != nil {
		return ProbeResult{}, err
	}
	if err := checkMatrix(what+": train features", trainX, nTrain, d); err != nil {
		return ProbeResult{}, err
	}
	if err := checkMatrix(what+": test features", testX, nTest, d); err != nil {
		return ProbeResult{}, err
	}
	if err := checkLabels(what+": train", trainY, nTrain, k); err != nil {
		return ProbeResult{}, err
	}
	if err := checkLabels(what+": test", testY, nTest, k); err != nil {
		return ProbeResult{}, err
	}
	if nTrain < 2 {
		return ProbeResult{}, fmt.Errorf("%s: %d training rows, want at least 2 to hold out a validation split", what, nTrain)
	}

	// The grid and a fit function for the chosen classifier; penalty(g)
	// orders grid entries from the strongest regularisation down.
	grid, penalty := cfg.L2Grid, func(v float64) float64 { return v }
	if cfg.Classifier == ClassifierSVM {
		grid, penalty = cfg.CGrid, func(v float64) float64 { return -v }
	}
	type fitted struct {
		m     *Linear
		iters int
		stop  string
	}
	fit := func(xs []float32, y []int, std *Standardizer, v float64, init *Linear) fitted {
		n := len(y)
		if cfg.Classifier == ClassifierSVM {
			s := trainSVMStandardized(xs, n, d, y, k, SVMConfig{C: v, PositiveWeight: cfg.PositiveWeight, MaxIter: cfg.MaxIter, Tol: cfg.Tol, Workers: cfg.Workers}, std, init)
			return fitted{&s.Linear, s.Iterations, s.Stop}
		}
		m := trainStandardized(xs, n, d, y, k, LogRegConfig{L2: v, MaxIter: cfg.MaxIter, Tol: cfg.Tol, Workers: cfg.Workers}, std, init)
		return fitted{&m.Linear, m.Iterations, m.Stop}
	}

	fitIdx, valIdx := SplitTrainVal(nTrain, cfg.ValFraction, rand.New(rand.NewSource(cfg.Seed)))
	std := fitStandardizer(trainX, nTrain, d, fitIdx)
	fitS, fitY := gatherStandardized(trainX, trainY, fitIdx, d, std)
	valS, valY := gatherStandardized(trainX, trainY, valIdx, d, std)

	// Walk the grid from the strongest penalty down, each fit warm-started
	// from the previous one (a regularisation path).
	order := make([]int, len(grid))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(penalty(grid[b]), penalty(grid[a])) })
	valTop1 := make([]float64, len(grid))
	models := make([]*Linear, len(grid))
	var prev *Linear
	best := -1
	for _, g := range order {
		m := fit(fitS, fitY, std, grid[g], prev).m
		valTop1[g] = topKAccuracy(m.scores(valS, len(valY), false), k, valY, 1)
		models[g] = m
		prev = m
		if best < 0 || valTop1[g] > valTop1[best] {
			best = g
		}
	}

	stdAll := fitStandardizer(trainX, nTrain, d, nil)
	allS := make([]float32, len(trainX))
	stdAll.transformRows(allS, trainX)
	final := fit(allS, trainY, stdAll, grid[best], models[best])

	scores := final.m.scores(testX, nTest, true)
	top := min(5, k)
	res := ProbeResult{
		Classifier: cfg.Classifier,
		Top1:       topKAccuracy(scores, k, testY, 1),
		Top5:       topKAccuracy(scores, k, testY, top),
		TopK:       top,
		MAP:        meanAP(scores, k, testY),
		ValTop1:    valTop1,
		NTrain:     nTrain,
		NVal:       len(valIdx),
		NTest:      nTest,
		Dim:        d,
		Classes:    k,
		Iterations: final.iters,
		Stop:       final.stop,
		Model:      final.m,
	}
	if cfg.Classifier == ClassifierSVM {
		res.C, res.CGrid = grid[best], slices.Clone(grid)
	} else {
		res.L2, res.L2Grid = grid[best], slices.Clone(grid)
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// resolve fills zero fields with defaults and checks ranges.
func (c ProbeConfig) resolve() (ProbeConfig, error) {
	def := DefaultProbeConfig()
	if c.Classifier == "" {
		c.Classifier = def.Classifier
	}
	if c.Classifier != ClassifierLogReg && c.Classifier != ClassifierSVM {
		return c, fmt.Errorf("classifier %q, want %q or %q", c.Classifier, ClassifierLogReg, ClassifierSVM)
	}
	if c.ValFraction == 0 {
		c.ValFraction = def.ValFraction
	}
	if !(c.ValFraction > 0 && c.ValFraction < 1) {
		return c, fmt.Errorf("validation fraction %v, want a value in (0, 1)", c.ValFraction)
	}
	if len(c.L2Grid) == 0 {
		c.L2Grid = def.L2Grid
	}
	for _, v := range c.L2Grid {
		if v < 0 || !finite(v) {
			return c, fmt.Errorf("l2 grid %v: %v is not a finite value >= 0", c.L2Grid, v)
		}
	}
	if len(c.CGrid) == 0 {
		c.CGrid = def.CGrid
	}
	for _, v := range c.CGrid {
		if !(v > 0) || !finite(v) {
			return c, fmt.Errorf("svm cost grid %v: %v is not a finite value > 0", c.CGrid, v)
		}
	}
	if c.PositiveWeight == 0 {
		c.PositiveWeight = def.PositiveWeight
	}
	if !(c.PositiveWeight > 0) || !finite(c.PositiveWeight) {
		return c, fmt.Errorf("svm positive weight %v, want a finite value > 0", c.PositiveWeight)
	}
	lr, err := LogRegConfig{MaxIter: c.MaxIter, Tol: c.Tol, Workers: c.Workers}.resolve()
	if err != nil {
		return c, err
	}
	c.MaxIter, c.Tol, c.Workers = lr.MaxIter, lr.Tol, lr.Workers
	return c, nil
}

// SplitTrainVal shuffles row indices [0, n) with rng and returns the
// indices kept for fitting and those held out for validation, each sorted.
// The held-out count is round(valFraction*n), at least 1 and at most n-1.
func SplitTrainVal(n int, valFraction float64, rng *rand.Rand) (fit, val []int) {
	nVal := int(math.Round(valFraction * float64(n)))
	nVal = max(1, min(n-1, nVal))
	perm := rng.Perm(n)
	val = slices.Clone(perm[:nVal])
	fit = slices.Clone(perm[nVal:])
	slices.Sort(val)
	slices.Sort(fit)
	return fit, val
}

// gatherStandardized returns the rows idx of x ([*, d]), standardised by
// std, and their labels.
func gatherStandardized(x []float32, y []int, idx []int, d int, std *Standardizer) ([]float32, []int) {
	gx := make([]float32, len(idx)*d)
	gy := make([]int, len(idx))
	for i, r := range idx {
		std.transformRows(gx[i*d:(i+1)*d], x[r*d:(r+1)*d])
		gy[i] = y[r]
	}
	return gx, gy
}
