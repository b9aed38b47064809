package cluster

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"sort"
	"sync"
)

// K-means initialisations of KMeansConfig.Init.
const (
	KMeansPlusPlus = "kmeans++" // D^2 seeding (Arthur & Vassilvitskii, SODA 2007)
	KMeansRandom   = "random"   // K distinct points drawn uniformly (faiss's default)
)

// KMeansConfig configures KMeans. Zero fields take the defaults given.
type KMeansConfig struct {
	// K is the number of clusters (required, 1 <= K <= n).
	K int `json:"k"`
	// Iters bounds the Lloyd iterations (default 20, as DeepCluster runs
	// faiss); the loop also stops once no assignment changes (and no empty
	// cluster was repaired).
	Iters int `json:"iters,omitempty"`
	// Init is KMeansPlusPlus (default) or KMeansRandom.
	Init string `json:"init,omitempty"`
	// Workers compute the assignment step in parallel (default
	// GOMAXPROCS); the result does not depend on it.
	Workers int `json:"-"`
}

// KMeansResult is a clustering of n points in d dimensions.
type KMeansResult struct {
	K, Dim int
	// Centroids are [K, Dim], row-major.
	Centroids []float64
	// Assign is, for every point, the index of its nearest centroid
	// (squared Euclidean distance, ties to the lower index), computed
	// against Centroids.
	Assign []int
	// Sizes counts the points of each cluster. A zero is left only where
	// the empty-cluster repair did not succeed within Iters (points that
	// coincide exactly cannot be split).
	Sizes []int
	// Loss is the mean squared distance of the points to their centroids.
	Loss float64
	// History is Loss after each assignment step, the last being Loss.
	History []float64
	// Iters is the number of centroid updates done.
	Iters int
	// Splits counts the empty clusters repaired by splitting another.
	Splits int
}

// KMeans clusters the n rows of x ([n, d], row-major) into cfg.K groups by
// Lloyd's algorithm (Lloyd 1982): assign every point to its nearest
// centroid, move every centroid to the mean of its points, repeat. The
// first centroids are drawn from rng (cfg.Init). A cluster left empty by an
// update is repaired as faiss does and DeepCluster relies on (Caron et al.,
// ECCV 2018, Sec. 3.3, "Empty clusters"): a non-empty cluster j is drawn
// with probability proportional to (size_j - 1), its centroid is copied to
// the empty one and the two are pushed apart by a relative 1/1024 of
// opposite sign per coordinate, and j's points are deemed split between
// them until the next assignment. The same x, cfg and rng state give the
// same result, whatever the number of workers.
func KMeans(x []float64, n, d int, cfg KMeansConfig, rng *rand.Rand) (*KMeansResult, error) {
	if n < 1 || d < 1 || len(x) != n*d {
		return nil, fmt.Errorf("eval: kmeans: %d values for %d points of dimension %d", len(x), n, d)
	}
	k := cfg.K
	if k < 1 || k > n {
		return nil, fmt.Errorf("eval: kmeans: k = %d clusters for %d points, expected 1 <= k <= n", k, n)
	}
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("eval: kmeans: value %d (point %d) is %v", i, i/d, v)
		}
	}
	iters := cfg.Iters
	if iters == 0 {
		iters = 20
	}
	if iters < 0 {
		return nil, fmt.Errorf("eval: kmeans: iterations must be >= 0, got %d", iters)
	}
	r := &KMeansResult{K: k, Dim: d, Assign: make([]int, n), Sizes: make([]int, k)}
	var err error
	switch cfg.Init {
	case "", KMeansPlusPlus:
		r.Centroids = kmeansPlusPlus(x, n, d, k, rng)
	case KMeansRandom:
		r.Centroids = make([]float64, k*d)
		for c, i := range rng.Perm(n)[:k] {
			copy(r.Centroids[c*d:(c+1)*d], x[i*d:(i+1)*d])
		}
	default:
		err = fmt.Errorf("eval: kmeans: init %q, expected %q or %q", cfg.Init, KMeansPlusPlus, KMeansRandom)
	}
	if err != nil {
		return nil, err
	}
	workers := cfg.Workers
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	dist := make([]float64, n)
	prev := make([]int, n)
	split := 0 // repairs in the last update: centroids moved without a new assignment
	for it := 0; ; it++ {
		copy(prev, r.Assign)
		r.Loss = kmeansAssign(x, n, d, r.Centroids, k, r.Assign, dist, workers)
		r.History = append(r.History, r.Loss)
		if it == iters || (it > 0 && split == 0 && equalInts(prev, r.Assign)) {
			break
		}
		split = kmeansUpdate(x, n, d, r.Centroids, k, r.Assign, rng)
		r.Splits += split
		r.Iters++
	}
	clear(r.Sizes)
	for _, a := range r.Assign {
		r.Sizes[a]++
	}
	return r, nil
}

// kmeansPlusPlus draws k initial centroids by D^2 sampling: the first
// uniformly, each next one with probability proportional to the squared
// distance to the nearest centroid drawn so far (uniformly when all points
// coincide with centroids).
func kmeansPlusPlus(x []float64, n, d, k int, rng *rand.Rand) []float64 {
	cent := make([]float64, k*d)
	first := rng.Intn(n)
	copy(cent[:d], x[first*d:(first+1)*d])
	near := make([]float64, n)
	for i := range near {
		near[i] = sqDist(x[i*d:(i+1)*d], cent[:d])
	}
	for c := 1; c < k; c++ {
		var total float64
		for _, v := range near {
			total += v
		}
		pick := n - 1
		if total > 0 {
			u := rng.Float64() * total
			for i, v := range near {
				if u < v {
					pick = i
					break
				}
				u -= v
			}
		} else {
			pick = rng.Intn(n)
		}
		cc := cent[c*d : (c+1)*d]
		copy(cc, x[pick*d:(pick+1)*d])
		for i := range near {
			if v := sqDist(x[i*d:(i+1)*d], cc); v < near[i] {
				near[i] = v
			}
		}
	}
	return cent
}

// kmeansAssign writes every point's nearest centroid into assign and its
// squared distance into dist, and returns the mean squared distance.
func kmeansAssign(x []float64, n, d int, cent []float64, k int, assign []int, dist []float64, workers int) float64 {
	chunk := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				p := x[i*d : (i+1)*d]
				best, bd := 0, math.Inf(1)
				for c := 0; c < k; c++ {
					if v := sqDist(p, cent[c*d:(c+1)*d]); v < bd {
						best, bd = c, v
					}
				}
				assign[i], dist[i] = best, bd
			}
		}(lo, hi)
	}
	wg.Wait()
	var s float64
	for _, v := range dist {
		s += v
	}
	return s / float64(n)
}

// kmeansUpdate moves every centroid to the mean of its points (summed in
// point order) and repairs empty clusters; it returns how many it
// repaired.
func kmeansUpdate(x []float64, n, d int, cent []float64, k int, assign []int, rng *rand.Rand) int {
	sizes := make([]float64, k)
	clear(cent)
	for i, a := range assign {
		sizes[a]++
		c := cent[a*d : (a+1)*d]
		for j, v := range x[i*d : (i+1)*d] {
			c[j] += v
		}
	}
	for c := 0; c < k; c++ {
		if sizes[c] > 0 {
			inv := 1 / sizes[c]
			for j := range cent[c*d : (c+1)*d] {
				cent[c*d+j] *= inv
			}
		}
	}
	const eps = 1.0 / 1024
	splits := 0
	for c := 0; c < k; c++ {
		if sizes[c] != 0 {
			continue
		}
		// Draw j with probability (sizes[j]-1) / (n-k): faiss's rule.
		var total float64
		for _, s := range sizes {
			total += max(s-1, 0)
		}
		if total <= 0 {
			break // every cluster holds at most one point: nothing to split
		}
		u, j := rng.Float64()*total, 0
		for j = 0; j < k-1; j++ {
			w := max(sizes[j]-1, 0)
			if u < w {
				break
			}
			u -= w
		}
		for sizes[j] <= 1 { // rounding at the end of the walk
			j--
		}
		cc, cj := cent[c*d:(c+1)*d], cent[j*d:(j+1)*d]
		for t := range cc {
			if t%2 == 0 {
				cc[t], cj[t] = cj[t]*(1+eps), cj[t]*(1-eps)
			} else {
				cc[t], cj[t] = cj[t]*(1-eps), cj[t]*(1+eps)
			}
		}
		sizes[c] = math.Floor(sizes[j] / 2)
		sizes[j] -= sizes[c]
		splits++
	}
	return splits
}

func sqDist(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		t := v - b[i]
		s += t * t
	}
	return s
}

func equalInts(a, b []int) bool {
	for i, v := range a {
		if b[i] != v {
			return false
		}
	}
	return len(a) == len(b)
}

// NMI is the normalised mutual information between two labelings of the
// same items, I(A;B) / sqrt(H(A) H(B)), in [0, 1]: 1 when each determines
// the other, 0 when they are independent. This is the measure DeepCluster
// tracks between consecutive clusterings and against the classes (Caron et
// al., ECCV 2018, Sec. 4.2; Strehl & Ghosh 2002). Labels are any
// non-negative integers. When either labeling has a single group the
// information is undefined: NMI returns 1 if both do and 0 otherwise (as
// scikit-learn does).
func NMI(a, b []int) (float64, error) {
	if len(a) != len(b) || len(a) == 0 {
		return 0, fmt.Errorf("eval: nmi: labelings of %d and %d items, expected the same non-zero number", len(a), len(b))
	}
	for i, x := range a {
		if x < 0 || b[i] < 0 {
			return 0, fmt.Errorf("eval: nmi: item %d has a negative label (%d, %d)", i, x, b[i])
		}
	}
	da, na := denseLabels(a)
	db, nb := denseLabels(b)
	if na == 1 || nb == 1 {
		if na == nb {
			return 1, nil
		}
		return 0, nil
	}
	// The joint counts come from the sorted pair codes x*nb+y, so that
	// memory stays O(n) for any number of groups and sums run in a fixed
	// order.
	ca, cb, codes := make([]float64, na), make([]float64, nb), make([]int, len(a))
	for i, x := range da {
		ca[x]++
		cb[db[i]]++
		codes[i] = x*nb + db[i]
	}
	sort.Ints(codes)
	n := float64(len(a))
	entropy := func(c []float64) float64 {
		var h float64
		for _, v := range c {
			p := v / n
			h -= p * math.Log(p)
		}
		return h
	}
	var mi float64
	for lo := 0; lo < len(codes); {
		hi := lo
		for hi < len(codes) && codes[hi] == codes[lo] {
			hi++
		}
		v, x, y := float64(hi-lo), codes[lo]/nb, codes[lo]%nb
		mi += v / n * math.Log(v*n/(ca[x]*cb[y]))
		lo = hi
	}
	ha, hb := entropy(ca), entropy(cb)
	return math.Min(1, math.Max(0, mi/math.Sqrt(ha*hb))), nil
}

// denseLabels renumbers labels to 0..m-1 in increasing order of value and
// returns them with m.
func denseLabels(l []int) ([]int, int) {
	vals := append([]int(nil), l...)
	sort.Ints(vals)
	id := map[int]int{}
	for _, v := range vals {
		if _, ok := id[v]; !ok {
			id[v] = len(id)
		}
	}
	out := make([]int, len(l))
	for i, v := range l {
		out[i] = id[v]
	}
	return out, len(id)
}
