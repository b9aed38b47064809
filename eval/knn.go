package eval

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// KNNConfig configures KNN.
type KNNConfig struct {
	// K is the number of neighbours that vote; default 200, clipped to the
	// training-set size.
	K int `json:"k"`
	// Temperature T scales the vote weight exp(similarity / T); default 0.07.
	Temperature float64 `json:"temperature"`
	// Workers is the number of goroutines; default GOMAXPROCS. Results do not
	// depend on it.
	Workers int `json:"workers"`
}

// DefaultKNNConfig returns K 200, Temperature 0.07, Workers 0 (GOMAXPROCS).
func DefaultKNNConfig() KNNConfig {
	return KNNConfig{K: 200, Temperature: 0.07}
}

// KNNResult reports a kNN evaluation. Accuracies are fractions in [0, 1].
type KNNResult struct {
	Top1        float64 `json:"top1"`
	Top5        float64 `json:"top5"` // top-min(5, classes)
	TopK        int     `json:"top5_k"`
	K           int     `json:"k"` // neighbours used (after clipping)
	Temperature float64 `json:"temperature"`
	NTrain      int     `json:"n_train"`
	NTest       int     `json:"n_test"`
	Dim         int     `json:"dim"`
	Classes     int     `json:"classes"`
	Seconds     float64 `json:"seconds"` // wall time
}

// KNN classifies each test feature by a weighted vote of its nearest training
// features, the protocol of Wu et al. 2018 ("Unsupervised Feature Learning
// via Non-Parametric Instance Discrimination", section 3.4): features are
// L2-normalised, similarity is the cosine, the cfg.K most similar training
// rows vote for their class with weight exp(similarity / cfg.Temperature),
// and classes are ranked by total vote (ties: lower class index first).
// Neighbours with equal similarity are taken in training-row order.
//
// trainX is [len(trainY), d] and testX is [len(testY), d], row-major; labels
// are in [0, k). The similarity matrix is never held whole: blocks of test
// rows are multiplied against the training rows on cfg.Workers goroutines.
func KNN(trainX []float32, trainY []int, testX []float32, testY []int, d, k int, cfg KNNConfig) (KNNResult, error) {
	start := time.Now()
	const what = "eval: knn"
	cfg, err := cfg.resolve()
	if err != nil {
		return KNNResult{}, fmt.Errorf("%s: %w", what, err)
	}
	nTrain, err := rowsOf(what+": train", trainX, trainY, d)
	if err != nil {
		return KNNResult{}, err
	}
	nTest, err := rowsOf(what+": test", testX, testY, d)
	if err != nil {
		return KNNResult{}, err
	}
	if err := checkMatrix(what+": train features", trainX, nTrain, d); err != nil {
		return KNNResult{}, err
	}
	if err := checkMatrix(what+": test features", testX, nTest, d); err != nil {
		return KNNResult{}, err
	}
	if err := checkLabels(what+": train", trainY, nTrain, k); err != nil {
		return KNNResult{}, err
	}
	if err := checkLabels(what+": test", testY, nTest, k); err != nil {
		return KNNResult{}, err
	}
	if nTrain > math.MaxInt32 {
		return KNNResult{}, fmt.Errorf("%s: %d training rows, at most %d supported", what, nTrain, math.MaxInt32)
	}
	K := min(cfg.K, nTrain)
	votes := knnVotes(l2Normalize(trainX, d), trainY, l2Normalize(testX, d), d, k, K, cfg.Temperature, cfg.Workers)
	top := min(5, k)
	return KNNResult{
		Top1:        topKAccuracy(votes, k, testY, 1),
		Top5:        topKAccuracy(votes, k, testY, top),
		TopK:        top,
		K:           K,
		Temperature: cfg.Temperature,
		NTrain:      nTrain,
		NTest:       nTest,
		Dim:         d,
		Classes:     k,
		Seconds:     time.Since(start).Seconds(),
	}, nil
}

func (c KNNConfig) resolve() (KNNConfig, error) {
	def := DefaultKNNConfig()
	if c.K == 0 {
		c.K = def.K
	}
	if c.K < 1 {
		return c, fmt.Errorf("k = %d neighbours, want at least 1", c.K)
	}
	if c.Temperature == 0 {
		c.Temperature = def.Temperature
	}
	if !(c.Temperature > 0) || math.IsInf(c.Temperature, 0) {
		return c, fmt.Errorf("temperature %v, want a finite value > 0", c.Temperature)
	}
	c.Workers = defaultWorkers(c.Workers)
	return c, nil
}

// l2Normalize returns a copy of x ([*, d]) with every row scaled to unit
// Euclidean norm; all-zero rows stay zero.
func l2Normalize(x []float32, d int) []float32 {
	out := make([]float32, len(x))
	for i := 0; i+d <= len(x); i += d {
		row := x[i : i+d]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		if ss == 0 {
			continue
		}
		inv := 1 / math.Sqrt(ss)
		o := out[i : i+d]
		for j, v := range row {
			o[j] = float32(float64(v) * inv)
		}
	}
	return out
}

// Block sizes for the similarity product: test rows per task (a multiple of
// 4, about 0.5 MiB of features at d = 512, kept in L2) and training rows per
// product (a multiple of 3).
const (
	knnTestBlock  = 256
	knnTrainBlock = 1023
)

// neighbour is a candidate in a top-K list.
type neighbour struct {
	sim float32
	idx int32
}

// worse reports whether a ranks below b: lower similarity, or equal
// similarity and a later training row.
func worse(a, b neighbour) bool {
	return a.sim < b.sim || (a.sim == b.sim && a.idx > b.idx)
}

// knnVotes returns class votes [nTest, k] (float64) from normalised
// features: the sum of exp(sim/T) over each test row's K nearest training
// rows.
func knnVotes(train []float32, trainY []int, test []float32, d, k, K int, temp float64, workers int) []float64 {
	votes := make([]float64, len(test)/d*k)
	knnSearch(train, len(trainY), test, d, K, workers, func(i int, h []neighbour) {
		v := votes[i*k : (i+1)*k]
		for _, nb := range h {
			v[trainY[nb.idx]] += math.Exp(float64(nb.sim) / temp)
		}
	})
	return votes
}

// knnSearch finds, for every row i of test ([*, d]), its K most similar rows
// of train ([nTrain, d]) by dot product and calls visit(i, neighbours) with
// them sorted most similar first (equal similarities: earlier training row
// first). visit runs on up to workers goroutines, once per test row; the
// slice it gets is reused afterwards.
func knnSearch(train []float32, nTrain int, test []float32, d, K, workers int, visit func(i int, h []neighbour)) {
	nTest := len(test) / d
	blocks := (nTest + knnTestBlock - 1) / knnTestBlock
	workers = min(workers, blocks)
	type scratch struct {
		sims  []float32
		heaps [][]neighbour
	}
	scr := make([]scratch, workers)
	parallelFor(blocks, workers, func(w, b int) {
		s := &scr[w]
		if s.sims == nil {
			s.sims = make([]float32, knnTestBlock*knnTrainBlock)
			s.heaps = make([][]neighbour, knnTestBlock)
			for i := range s.heaps {
				s.heaps[i] = make([]neighbour, 0, K)
			}
		}
		lo := b * knnTestBlock
		rows := min(knnTestBlock, nTest-lo)
		q := test[lo*d : (lo+rows)*d]
		for i := 0; i < rows; i++ {
			s.heaps[i] = s.heaps[i][:0]
		}
		for t0 := 0; t0 < nTrain; t0 += knnTrainBlock {
			cols := min(knnTrainBlock, nTrain-t0)
			gemmNT(rows, cols, d, q, d, train[t0*d:], d, s.sims, cols)
			for i := 0; i < rows; i++ {
				s.heaps[i] = pushTopK(s.heaps[i], K, s.sims[i*cols:(i+1)*cols], t0)
			}
		}
		for i := 0; i < rows; i++ {
			h := s.heaps[i]
			// A canonical order: most similar first.
			slices.SortFunc(h, func(a, b neighbour) int {
				if worse(b, a) {
					return -1
				}
				if worse(a, b) {
					return 1
				}
				return 0
			})
			visit(lo+i, h)
		}
	})
}

// NearestNeighbours returns, for every row of queries ([nQuery, d]), the
// indices of its K most similar rows of base ([nBase, d]) by cosine
// similarity (rows are L2-normalised first; all-zero rows have similarity 0
// to everything), most similar first, equal similarities in base-row order,
// and those similarities. K is clipped to nBase. workers <= 0 means
// GOMAXPROCS; the result does not depend on it.
func NearestNeighbours(base []float32, nBase int, queries []float32, nQuery, d, K, workers int) (idx [][]int, sims [][]float32, err error) {
	const what = "eval: nearest neighbours"
	if err := checkMatrix(what+": base", base, nBase, d); err != nil {
		return nil, nil, err
	}
	if err := checkMatrix(what+": queries", queries, nQuery, d); err != nil {
		return nil, nil, err
	}
	if K < 1 {
		return nil, nil, fmt.Errorf("%s: K = %d, want at least 1", what, K)
	}
	if nBase > math.MaxInt32 {
		return nil, nil, fmt.Errorf("%s: %d base rows, at most %d supported", what, nBase, math.MaxInt32)
	}
	K = min(K, nBase)
	idx, sims = make([][]int, nQuery), make([][]float32, nQuery)
	knnSearch(l2Normalize(base, d), nBase, l2Normalize(queries, d), d, K, defaultWorkers(workers), func(i int, h []neighbour) {
		idx[i], sims[i] = make([]int, len(h)), make([]float32, len(h))
		for j, nb := range h {
			idx[i][j], sims[i][j] = int(nb.idx), nb.sim
		}
	})
	return idx, sims, nil
}

// pushTopK offers the similarities sims (of training rows base, base+1, ...)
// to h, a min-heap (by worse) of at most K neighbours, and returns it.
func pushTopK(h []neighbour, K int, sims []float32, base int) []neighbour {
	for j, s := range sims {
		nb := neighbour{sim: s, idx: int32(base + j)}
		if len(h) < K {
			h = append(h, nb)
			siftUp(h, len(h)-1)
			continue
		}
		if worse(h[0], nb) {
			h[0] = nb
			siftDown(h, 0)
		}
	}
	return h
}

func siftUp(h []neighbour, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !worse(h[i], h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func siftDown(h []neighbour, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && worse(h[r], h[l]) {
			m = r
		}
		if !worse(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
