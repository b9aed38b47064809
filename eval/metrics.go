package eval

import "fmt"

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
