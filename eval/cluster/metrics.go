package cluster

import "fmt"

// ARI is the adjusted Rand index of two labelings of the same points
// (Hubert & Arabie 1985): the Rand index corrected for chance, 1 for
// identical partitions (up to renaming), about 0 for independent ones,
// as scikit-learn's adjusted_rand_score computes it.
func ARI(a, b []int) (float64, error) {
	if len(a) != len(b) || len(a) == 0 {
		return 0, fmt.Errorf("cluster: ARI of %d and %d labels", len(a), len(b))
	}
	da, ka := denseLabels(a)
	db, kb := denseLabels(b)
	table := make([]float64, ka*kb)
	rows, cols := make([]float64, ka), make([]float64, kb)
	for i := range da {
		table[da[i]*kb+db[i]]++
		rows[da[i]]++
		cols[db[i]]++
	}
	pairs := func(x float64) float64 { return x * (x - 1) / 2 }
	var sumT, sumR, sumC float64
	for _, v := range table {
		sumT += pairs(v)
	}
	for _, v := range rows {
		sumR += pairs(v)
	}
	for _, v := range cols {
		sumC += pairs(v)
	}
	n := pairs(float64(len(a)))
	expected := sumR * sumC / n
	maxIndex := (sumR + sumC) / 2
	if maxIndex == expected { // both partitions trivial (one cluster or all singletons)
		return 1, nil
	}
	return (sumT - expected) / (maxIndex - expected), nil
}

// Purity is the fraction of points whose cluster's most frequent true
// label is their own (Manning et al. 2008, Sec. 16.3).
func Purity(assign, labels []int) (float64, error) {
	if len(assign) != len(labels) || len(assign) == 0 {
		return 0, fmt.Errorf("cluster: purity of %d assignments and %d labels", len(assign), len(labels))
	}
	da, ka := denseLabels(assign)
	dl, kl := denseLabels(labels)
	counts := make([]int, ka*kl)
	for i := range da {
		counts[da[i]*kl+dl[i]]++
	}
	hits := 0
	for c := 0; c < ka; c++ {
		best := 0
		for _, v := range counts[c*kl : (c+1)*kl] {
			best = max(best, v)
		}
		hits += best
	}
	return float64(hits) / float64(len(assign)), nil
}

// Inertia is the sum of squared Euclidean distances of the n points of x
// ([n, d]) to their assigned centroids ([k, d]): scikit-learn's inertia_.
func Inertia(x []float64, n, d int, cent []float64, assign []int) float64 {
	var s float64
	for i := 0; i < n; i++ {
		s += sqDist(x[i*d:(i+1)*d], cent[assign[i]*d:(assign[i]+1)*d])
	}
	return s
}
