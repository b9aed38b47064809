package eval

import (
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/selfsup/selfsup/data"
)

func TestMeanStd(t *testing.T) {
	m, s := meanStd([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	// Sample variance: sum of squared deviations 32 over n-1 = 7.
	if m != 5 || math.Abs(s-math.Sqrt(32.0/7)) > 1e-12 {
		t.Fatalf("mean %v std %v, want 5 and sqrt(32/7)", m, s)
	}
	if m, s := meanStd([]float64{0.25}); m != 0.25 || s != 0 {
		t.Fatalf("one value: mean %v std %v", m, s)
	}
}

// LowShot draws class-balanced subsets of the right size, reports for every
// run what a LinearProbe on that very subset gives, and aggregates the runs
// by mean and sample standard deviation.
func TestLowShotSubsetsAndSummary(t *testing.T) {
	rng := rand.New(rand.NewSource(41))
	d, k := 8, 4
	centres := randSlice(rng, k*d)
	for i := range centres {
		centres[i] *= 2
	}
	// Unbalanced classes: 200, 400, 600, 800 training rows.
	var trX []float32
	var trY []int
	for c := 0; c < k; c++ {
		for i := 0; i < 200*(c+1); i++ {
			for j := 0; j < d; j++ {
				trX = append(trX, centres[c*d+j]+float32(1.5*rng.NormFloat64()))
			}
			trY = append(trY, c)
		}
	}
	teX, teY := clusteredData(rng, 400, d, k, centres)
	cfg := DefaultLowShotConfig()
	cfg.Fractions = []float64{0.01, 0.1}
	res, err := LowShot(trX, trY, teX, teY, d, k, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Fractions) != 2 || res.NTrainAll != 2000 || res.NTest != 400 || res.Classifier != ClassifierLogReg {
		t.Fatalf("result: %+v", res)
	}
	// round(f*count) per class, at least one.
	wantPer := map[float64][]int{0.01: {2, 4, 6, 8}, 0.1: {20, 40, 60, 80}}
	for _, fr := range res.Fractions {
		want := wantPer[fr.Fraction]
		total := 0
		for _, v := range want {
			total += v
		}
		if fr.NTrain != total || len(fr.Runs) != 3 {
			t.Fatalf("fraction %v: %d rows in %d runs, want %d in 3", fr.Fraction, fr.NTrain, len(fr.Runs), total)
		}
		var top1, top5 []float64
		var subsets [][]int
		for _, r := range fr.Runs {
			if r.NTrain != total || r.MinPerClass != want[0] || r.MaxPerClass != want[k-1] {
				t.Fatalf("fraction %v seed %d: %d rows, per class %d..%d; want %d, %d..%d", fr.Fraction, r.Seed, r.NTrain, r.MinPerClass, r.MaxPerClass, total, want[0], want[k-1])
			}
			idx := data.StratifiedSubset(trY, fr.Fraction, r.Seed)
			perClass := make([]int, k)
			var sx []float32
			var sy []int
			for _, i := range idx {
				perClass[trY[i]]++
				sx = append(sx, trX[i*d:(i+1)*d]...)
				sy = append(sy, trY[i])
			}
			if !slices.Equal(perClass, want) {
				t.Fatalf("subset per class %v, want %v", perClass, want)
			}
			subsets = append(subsets, idx)
			pc := cfg.Probe
			pc.Seed = r.Seed
			pr, err := LinearProbe(sx, sy, teX, teY, d, k, pc)
			if err != nil {
				t.Fatal(err)
			}
			if pr.Top1 != r.Top1 || pr.Top5 != r.Top5 || pr.L2 != r.Reg {
				t.Fatalf("fraction %v seed %d: run %+v, probe on the same subset gives top-1 %v top-5 %v l2 %v", fr.Fraction, r.Seed, r, pr.Top1, pr.Top5, pr.L2)
			}
			top1, top5 = append(top1, r.Top1), append(top5, r.Top5)
		}
		if slices.Equal(subsets[0], subsets[1]) || slices.Equal(subsets[1], subsets[2]) {
			t.Fatalf("fraction %v: seeds drew the same subset", fr.Fraction)
		}
		m1, s1 := meanStd(top1)
		m5, s5 := meanStd(top5)
		if fr.Top1Mean != m1 || fr.Top1Std != s1 || fr.Top5Mean != m5 || fr.Top5Std != s5 {
			t.Fatalf("fraction %v: summary %+v, from runs %v %v %v %v", fr.Fraction, fr, m1, s1, m5, s5)
		}
	}
	// More labels help on this problem.
	if res.Fractions[1].Top1Mean < res.Fractions[0].Top1Mean {
		t.Fatalf("10%% of labels (%v) worse than 1%% (%v)", res.Fractions[1].Top1Mean, res.Fractions[0].Top1Mean)
	}

	cfg.Probe.Classifier = ClassifierSVM
	cfg.Fractions = []float64{0.1}
	cfg.Seeds = []int64{5}
	svm, err := LowShot(trX, trY, teX, teY, d, k, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if svm.Classifier != ClassifierSVM || svm.Fractions[0].Top1Std != 0 || svm.Fractions[0].Runs[0].Reg <= 0 {
		t.Fatalf("svm low-shot: %+v", svm)
	}

	for _, bad := range []float64{0, -0.1, 1.5, math.NaN()} {
		cfg.Fractions = []float64{bad}
		if _, err := LowShot(trX, trY, teX, teY, d, k, cfg); err == nil {
			t.Fatalf("fraction %v accepted", bad)
		}
	}
}
