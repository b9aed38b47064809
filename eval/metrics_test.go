package eval

import (
	"math"
	"math/rand"
	"slices"
	"testing"
)

func TestConfusionMatrix(t *testing.T) {
	y := []int{0, 0, 1, 2, 2, 2}
	pred := []int{0, 1, 1, 2, 0, 2}
	m, err := ConfusionMatrix(y, pred, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int{{1, 1, 0}, {0, 1, 0}, {1, 0, 2}}
	for i := range want {
		if !slices.Equal(m[i], want[i]) {
			t.Fatalf("confusion %v, want %v", m, want)
		}
	}
	if _, err := ConfusionMatrix(y, pred[:5], 3); err == nil {
		t.Fatal("length mismatch accepted")
	}
	if _, err := ConfusionMatrix(y, []int{0, 0, 0, 0, 0, 3}, 3); err == nil {
		t.Fatal("prediction out of range accepted")
	}
}

func TestAveragePrecisionKnownValues(t *testing.T) {
	for _, tc := range []struct {
		scores []float64
		pos    []bool
		want   float64
	}{
		// Ranked T F T F: precision 1 at recall 1/2, 2/3 at recall 1.
		{[]float64{0.9, 0.8, 0.7, 0.6}, []bool{true, false, true, false}, 0.5*1 + 0.5*2.0/3},
		// A perfect ranking.
		{[]float64{3, 2, 1}, []bool{true, true, false}, 1},
		// Order of the input does not matter, only scores.
		{[]float64{0.6, 0.7, 0.8, 0.9}, []bool{false, true, false, true}, 0.5*1 + 0.5*2.0/3},
		// Tied scores enter together: one threshold, precision 1/2.
		{[]float64{1, 1}, []bool{true, false}, 0.5},
		// Worst ranking of one positive among four.
		{[]float64{4, 3, 2, 1}, []bool{false, false, false, true}, 0.25},
	} {
		if got := AveragePrecision(tc.scores, tc.pos); math.Abs(got-tc.want) > 1e-12 {
			t.Fatalf("AP(%v, %v) = %v, want %v", tc.scores, tc.pos, got, tc.want)
		}
	}
	if !math.IsNaN(AveragePrecision([]float64{1, 2}, []bool{false, false})) {
		t.Fatal("AP without positives should be NaN")
	}
}

// AP is the area under the precision-recall step curve; for untied scores it
// equals the mean, over positives, of the precision at each positive's rank.
func TestAveragePrecisionAgainstRankFormula(t *testing.T) {
	rng := rand.New(rand.NewSource(51))
	n := 200
	s := make([]float64, n)
	p := make([]bool, n)
	for i := range s {
		s[i] = rng.Float64()
		p[i] = rng.Float64() < 0.3
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if s[a] > s[b] {
			return -1
		}
		return 1
	})
	var sum float64
	tp, total := 0, 0
	for r, i := range order {
		if p[i] {
			tp++
			total++
			sum += float64(tp) / float64(r+1)
		}
	}
	if got, want := AveragePrecision(s, p), sum/float64(total); math.Abs(got-want) > 1e-12 {
		t.Fatalf("AP %v, rank formula %v", got, want)
	}
}

func TestMeanAveragePrecision(t *testing.T) {
	// Class 0 ranked perfectly; class 1 ranked worst; class 2 absent.
	scores := []float32{
		1, 0, 0,
		0.5, 0.9, 0,
		0, 0.1, 0,
	}
	y := []int{0, 0, 1}
	got, err := MeanAveragePrecision(scores, 3, 3, y)
	if err != nil {
		t.Fatal(err)
	}
	// Class 0: rows 0, 1 positive at scores 1, 0.5 above row 2 (0): AP 1.
	// Class 1: row 2 (0.1) below row 1 (0.9), above row 0 (0): AP 1/2.
	if want := (1 + 0.5) / 2; math.Abs(got-want) > 1e-12 {
		t.Fatalf("mAP %v, want %v", got, want)
	}
}
