package data

import (
	"math"
	"math/rand"
	"sort"
)

// Split shuffles 0..n-1 with a generator seeded by seed and cuts off
// round(valFraction*n) indices for validation (valFraction is clamped to
// [0, 1]; NaN counts as 0). Both parts are returned sorted; the same n,
// fraction and seed always give the same split.
func Split(n int, valFraction float64, seed int64) (train, val []int) {
	if n <= 0 {
		return nil, nil
	}
	if !(valFraction > 0) {
		valFraction = 0
	}
	valFraction = math.Min(valFraction, 1)
	perm := rand.New(rand.NewSource(seed)).Perm(n)
	nVal := int(math.Round(valFraction * float64(n)))
	val = append([]int(nil), perm[:nVal]...)
	train = append([]int(nil), perm[nVal:]...)
	sort.Ints(val)
	sort.Ints(train)
	return train, val
}

// StratifiedSubset picks, from every class present in labels, max(1,
// round(fraction*count)) indices at random (all of them when fraction >=
// 1), for low-label evaluation; items labeled -1 are never picked. Classes
// are visited in increasing order with one generator seeded by seed, so the
// result is deterministic; it is returned sorted.
func StratifiedSubset(labels []int, fraction float64, seed int64) []int {
	byClass := map[int][]int{}
	for i, l := range labels {
		if l >= 0 {
			byClass[l] = append(byClass[l], i)
		}
	}
	classes := make([]int, 0, len(byClass))
	for c := range byClass {
		classes = append(classes, c)
	}
	sort.Ints(classes)
	if !(fraction > 0) {
		fraction = 0
	}
	rng := rand.New(rand.NewSource(seed))
	var out []int
	for _, c := range classes {
		idx := byClass[c]
		k := min(max(1, int(math.Round(fraction*float64(len(idx))))), len(idx))
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		out = append(out, idx[:k]...)
	}
	sort.Ints(out)
	return out
}
