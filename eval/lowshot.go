package eval

import (
	"fmt"
	"math"
	"time"

	"github.com/selfsup/selfsup/data"
)

// LowShotConfig configures LowShot.
type LowShotConfig struct {
	// Fractions of the training labels to keep; default {0.01, 0.1}. Each
	// must be in (0, 1].
	Fractions []float64 `json:"fractions"`
	// Seeds draw the subsets (one subset per fraction and seed) and the
	// probe's validation split; default {0, 1, 2}.
	Seeds []int64 `json:"seeds"`
	// Probe configures the linear classifier fitted on each subset; its Seed
	// is replaced by each entry of Seeds.
	Probe ProbeConfig `json:"probe"`
}

// DefaultLowShotConfig returns fractions {0.01, 0.1}, seeds {0, 1, 2} and
// the default probe (logistic regression).
func DefaultLowShotConfig() LowShotConfig {
	return LowShotConfig{Fractions: []float64{0.01, 0.1}, Seeds: []int64{0, 1, 2}, Probe: DefaultProbeConfig()}
}

// LowShotRun is one subset's result.
type LowShotRun struct {
	Fraction float64 `json:"fraction"`
	Seed     int64   `json:"seed"`
	NTrain   int     `json:"n_train"` // labelled rows in the subset
	// MinPerClass and MaxPerClass are the smallest and largest number of
	// subset rows of any class.
	MinPerClass int     `json:"min_per_class"`
	MaxPerClass int     `json:"max_per_class"`
	Top1        float64 `json:"top1"`
	Top5        float64 `json:"top5"`
	// Reg is the chosen regularisation (L2 strength, or SVM cost C).
	Reg     float64 `json:"reg"`
	Seconds float64 `json:"seconds"`
}

// LowShotSummary aggregates the runs of one fraction over the seeds.
// Standard deviations are the sample standard deviation (n-1 in the
// denominator), 0 for a single seed.
type LowShotSummary struct {
	Fraction float64      `json:"fraction"`
	NTrain   int          `json:"n_train"` // subset size (the same for every seed)
	Top1Mean float64      `json:"top1_mean"`
	Top1Std  float64      `json:"top1_std"`
	Top5Mean float64      `json:"top5_mean"`
	Top5Std  float64      `json:"top5_std"`
	Runs     []LowShotRun `json:"runs"`
}

// LowShotResult reports LowShot.
type LowShotResult struct {
	Classifier string           `json:"classifier"`
	TopK       int              `json:"top5_k"` // k of the "top5" figures: min(5, classes)
	Fractions  []LowShotSummary `json:"fractions"`
	NTrainAll  int              `json:"n_train_all"` // labelled rows available
	NTest      int              `json:"n_test"`
	Dim        int              `json:"dim"`
	Classes    int              `json:"classes"`
	Seconds    float64          `json:"seconds"`
}

// LowShot evaluates frozen features with few labels, as in the low-shot
// protocol of Goyal et al. 2019 (section 6.2) and the semi-supervised tables
// of the self-supervised papers (1% and 10% of the labels): for each
// fraction and seed it draws a class-balanced subset of the training rows
// (data.StratifiedSubset: round(fraction*count) rows of every class, at
// least one), fits a LinearProbe on it (regularisation chosen on a
// validation split of the subset) and scores it on the whole test set. It
// reports every run and, per fraction, the mean and standard deviation of
// top-1 and top-5 over the seeds.
//
// trainX is [len(trainY), d] and testX is [len(testY), d], row-major; labels
// are in [0, k).
func LowShot(trainX []float32, trainY []int, testX []float32, testY []int, d, k int, cfg LowShotConfig) (LowShotResult, error) {
	start := time.Now()
	const what = "eval: low-shot"
	def := DefaultLowShotConfig()
	if len(cfg.Fractions) == 0 {
		cfg.Fractions = def.Fractions
	}
	if len(cfg.Seeds) == 0 {
		cfg.Seeds = def.Seeds
	}
	for _, f := range cfg.Fractions {
		if !(f > 0 && f <= 1) {
			return LowShotResult{}, fmt.Errorf("%s: fraction %v, want a value in (0, 1]", what, f)
		}
	}
	probe, err := cfg.Probe.resolve()
	if err != nil {
		return LowShotResult{}, fmt.Errorf("%s: %w", what, err)
	}
	nTrain, err := rowsOf(what+": train", trainX, trainY, d)
	if err != nil {
		return LowShotResult{}, err
	}
	nTest, err := rowsOf(what+": test", testX, testY, d)
	if err != nil {
		return LowShotResult{}, err
	}
	if err := checkLabels(what+": train", trainY, nTrain, k); err != nil {
		return LowShotResult{}, err
	}
	res := LowShotResult{Classifier: probe.Classifier, TopK: min(5, k), NTrainAll: nTrain, NTest: nTest, Dim: d, Classes: k}
	for _, f := range cfg.Fractions {
		sum := LowShotSummary{Fraction: f}
		var top1, top5 []float64
		for _, seed := range cfg.Seeds {
			idx := data.StratifiedSubset(trainY, f, seed)
			if len(idx) < 2 {
				return LowShotResult{}, fmt.Errorf("%s: fraction %v of %d rows keeps %d, want at least 2", what, f, nTrain, len(idx))
			}
			sx := make([]float32, 0, len(idx)*d)
			sy := make([]int, len(idx))
			perClass := make([]int, k)
			for i, r := range idx {
				sx = append(sx, trainX[r*d:(r+1)*d]...)
				sy[i] = trainY[r]
				perClass[sy[i]]++
			}
			pc := probe
			pc.Seed = seed
			pr, err := LinearProbe(sx, sy, testX, testY, d, k, pc)
			if err != nil {
				return LowShotResult{}, fmt.Errorf("%s: fraction %v, seed %d: %w", what, f, seed, err)
			}
			run := LowShotRun{Fraction: f, Seed: seed, NTrain: len(idx), MinPerClass: math.MaxInt, Top1: pr.Top1, Top5: pr.Top5, Reg: pr.L2, Seconds: pr.Seconds}
			if probe.Classifier == ClassifierSVM {
				run.Reg = pr.C
			}
			for _, c := range perClass {
				if c > 0 {
					run.MinPerClass = min(run.MinPerClass, c)
				}
				run.MaxPerClass = max(run.MaxPerClass, c)
			}
			sum.Runs = append(sum.Runs, run)
			sum.NTrain = len(idx)
			top1, top5 = append(top1, pr.Top1), append(top5, pr.Top5)
		}
		sum.Top1Mean, sum.Top1Std = meanStd(top1)
		sum.Top5Mean, sum.Top5Std = meanStd(top5)
		res.Fractions = append(res.Fractions, sum)
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// meanStd returns the mean and the sample standard deviation (n-1 in the
// denominator; 0 for fewer than two values) of v.
func meanStd(v []float64) (mean, std float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	for _, x := range v {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(v)-1))
}
