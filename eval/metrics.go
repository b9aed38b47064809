package eval

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// TopKAccuracy returns the fraction of rows of scores ([n, k]) whose label y
// is among the `top` highest-scoring classes. Ties rank the lower class index
// first, matching Predict; top is clipped to k.
func TopKAccuracy(scores []float32, n, k int, y []int, top int) (float64, error) {
	if err := checkMatrix("eval: top-k accuracy: scores", scores, n, k); err != nil {
		return 0, err
	}
	if err := checkLabels("eval: top-k accuracy", y, n, k); err != nil {
		return 0, err
	}
	if top < 1 {
		return 0, fmt.Errorf("eval: top-k accuracy: top = %d, want at least 1", top)
	}
	return topKAccuracy(scores, k, y, top), nil
}

// topKAccuracy is TopKAccuracy on checked inputs; scores is [len(y), k].
func topKAccuracy[T float32 | float64](scores []T, k int, y []int, top int) float64 {
	hits := 0
	for i, c := range y {
		if rank(scores[i*k:(i+1)*k], c) < top {
			hits++
		}
	}
	return float64(hits) / float64(len(y))
}

// rank is the 0-based position of class c when classes are sorted by
// descending score, ties broken by ascending index.
func rank[T float32 | float64](s []T, c int) int {
	r := 0
	for j, v := range s {
		if v > s[c] || (v == s[c] && j < c) {
			r++
		}
	}
	return r
}

// argmax is the index of the largest value, the lowest index on ties.
func argmax[T float32 | float64](s []T) int {
	best := 0
	for j, v := range s {
		if v > s[best] {
			best = j
		}
	}
	return best
}

// ConfusionMatrix counts predictions: m[t][p] is the number of rows with
// true label t predicted as p, for labels and predictions in [0, k).
func ConfusionMatrix(y, pred []int, k int) ([][]int, error) {
	if len(pred) != len(y) {
		return nil, fmt.Errorf("eval: confusion matrix: %d predictions for %d labels", len(pred), len(y))
	}
	if err := checkLabels("eval: confusion matrix: labels", y, len(y), k); err != nil {
		return nil, err
	}
	if err := checkLabels("eval: confusion matrix: predictions", pred, len(pred), k); err != nil {
		return nil, err
	}
	m := make([][]int, k)
	for t := range m {
		m[t] = make([]int, k)
	}
	for i, t := range y {
		m[t][pred[i]]++
	}
	return m, nil
}

// AveragePrecision returns the average precision of ranking rows by score
// (higher first) for the rows marked positive: sum over thresholds of
// (R_j - R_{j-1}) * P_j, with one threshold per distinct score (tied rows
// enter together). This is the non-interpolated AP of scikit-learn's
// average_precision_score, not VOC's 11-point interpolation. It returns NaN
// when no row is positive.
func AveragePrecision(scores []float64, positive []bool) float64 {
	n := len(scores)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
	total := 0
	for _, p := range positive {
		if p {
			total++
		}
	}
	if total == 0 {
		return math.NaN()
	}
	var ap, prevRecall float64
	tp := 0
	for i := 0; i < n; {
		j := i
		for j < n && scores[order[j]] == scores[order[i]] {
			if positive[order[j]] {
				tp++
			}
			j++
		}
		recall := float64(tp) / float64(total)
		ap += (recall - prevRecall) * float64(tp) / float64(j)
		prevRecall = recall
		i = j
	}
	return ap
}

// MeanAveragePrecision is the mean over classes of the one-vs-rest
// AveragePrecision of scores ([n, k]: column c ranks rows for class c)
// against labels y, over the classes that occur in y.
func MeanAveragePrecision(scores []float32, n, k int, y []int) (float64, error) {
	if err := checkMatrix("eval: mean average precision: scores", scores, n, k); err != nil {
		return 0, err
	}
	if err := checkLabels("eval: mean average precision", y, n, k); err != nil {
		return 0, err
	}
	return meanAP(scores, k, y), nil
}

func meanAP(scores []float32, k int, y []int) float64 {
	n := len(y)
	col := make([]float64, n)
	pos := make([]bool, n)
	var sum float64
	classes := 0
	for c := 0; c < k; c++ {
		for i := range col {
			col[i] = float64(scores[i*k+c])
			pos[i] = y[i] == c
		}
		if ap := AveragePrecision(col, pos); !math.IsNaN(ap) {
			sum += ap
			classes++
		}
	}
	return sum / float64(classes)
}
