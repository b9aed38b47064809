package eval

import (
	"math"
	"math/rand"
	"slices"
	"sort"
	"testing"
)

// bruteKNNVotes is the kNN vote of Wu et al. written as plain loops in
// float64: normalise, compute every cosine, sort, vote.
func bruteKNNVotes(train []float32, trainY []int, test []float32, d, k, K int, temp float64) (votes []float64, neighbours [][]int) {
	norm := func(x []float32) [][]float64 {
		var rows [][]float64
		for i := 0; i < len(x)/d; i++ {
			r := make([]float64, d)
			var ss float64
			for j := range r {
				r[j] = float64(x[i*d+j])
				ss += r[j] * r[j]
			}
			if ss > 0 {
				for j := range r {
					r[j] /= math.Sqrt(ss)
				}
			}
			rows = append(rows, r)
		}
		return rows
	}
	tr, te := norm(train), norm(test)
	votes = make([]float64, len(te)*k)
	for i, q := range te {
		sims := make([]float64, len(tr))
		idx := make([]int, len(tr))
		for t, r := range tr {
			for j := range q {
				sims[t] += q[j] * r[j]
			}
			idx[t] = t
		}
		sort.SliceStable(idx, func(a, b int) bool { return sims[idx[a]] > sims[idx[b]] })
		neighbours = append(neighbours, idx[:K])
		for _, t := range idx[:K] {
			votes[i*k+trainY[t]] += math.Exp(sims[t] / temp)
		}
	}
	return votes, neighbours
}

// clusteredData draws rows near one of k random centres (the label) so that
// neighbours carry information, as real features do.
func clusteredData(rng *rand.Rand, n, d, k int, centres []float32) ([]float32, []int) {
	x := make([]float32, n*d)
	y := make([]int, n)
	for i := range y {
		y[i] = rng.Intn(k)
		for j := 0; j < d; j++ {
			x[i*d+j] = centres[y[i]*d+j] + float32(1.5*rng.NormFloat64())
		}
	}
	return x, y
}

func TestKNNAgainstBruteForce(t *testing.T) {
	withKernels(t, func(t *testing.T) {
		rng := rand.New(rand.NewSource(8))
		// Sizes cross the block edges: 2 test blocks, 3 training blocks, d not
		// a multiple of 8.
		d, k := 37, 7
		centres := randSlice(rng, k*d)
		train, trainY := clusteredData(rng, 2100, d, k, centres)
		test, testY := clusteredData(rng, 300, d, k, centres)
		for _, K := range []int{1, 20, 200} {
			got := knnVotes(l2Normalize(train, d), trainY, l2Normalize(test, d), d, k, K, 0.07, 2)
			want, _ := bruteKNNVotes(train, trainY, test, d, k, K, 0.07)
			for i := range testY {
				g, w := got[i*k:(i+1)*k], want[i*k:(i+1)*k]
				if argmax(g) != argmax(w) {
					t.Fatalf("K=%d row %d: prediction %d, brute force %d (votes %v vs %v)", K, i, argmax(g), argmax(w), g, w)
				}
				for c := range g {
					if rank(g, c) != rank(w, c) {
						t.Fatalf("K=%d row %d: class %d ranks %d, brute force %d", K, i, c, rank(g, c), rank(w, c))
					}
					if math.Abs(g[c]-w[c]) > 1e-4*slices.Max(w) {
						t.Fatalf("K=%d row %d: vote %d = %v, brute force %v", K, i, c, g[c], w[c])
					}
				}
			}
			if K == 20 {
				for _, workers := range []int{1, 3} {
					v := knnVotes(l2Normalize(train, d), trainY, l2Normalize(test, d), d, k, K, 0.07, workers)
					if !slices.Equal(v, got) {
						t.Fatalf("workers=%d: votes differ from workers=2", workers)
					}
				}
			}
		}
		// The public entry point agrees with the brute-force accuracies.
		res, err := KNN(train, trainY, test, testY, d, k, KNNConfig{K: 20})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := bruteKNNVotes(train, trainY, test, d, k, 20, 0.07)
		if w1, w5 := topKAccuracy(want, k, testY, 1), topKAccuracy(want, k, testY, 5); res.Top1 != w1 || res.Top5 != w5 {
			t.Fatalf("KNN top1/top5 = %v/%v, brute force %v/%v", res.Top1, res.Top5, w1, w5)
		}
		if res.Top1 < 0.5 {
			t.Fatalf("top-1 %v on clustered data; the neighbours carry no information?", res.Top1)
		}
	})
}

// Exact duplicates make exact ties: neighbours must then come in training-row
// order, as in the brute-force reference.
func TestKNNTiesFollowTrainingOrder(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	d, k := 16, 3
	base := randSlice(rng, 5*d)
	var train []float32
	var trainY []int
	for i := 0; i < 1500; i++ {
		r := i % 5
		train = append(train, base[r*d:(r+1)*d]...)
		trainY = append(trainY, rng.Intn(k))
	}
	test := slices.Clone(base[:3*d])
	for _, K := range []int{7, 300, 301} {
		_, wantNb := bruteKNNVotes(train, trainY, test, d, k, K, 0.07)
		tr, te := l2Normalize(train, d), l2Normalize(test, d)
		for i := 0; i < 3; i++ {
			sims := make([]float32, len(trainY))
			gemmNT(1, len(trainY), d, te[i*d:], d, tr, d, sims, len(trainY))
			h := pushTopK(nil, K, sims, 0)
			slices.SortFunc(h, func(a, b neighbour) int {
				if worse(b, a) {
					return -1
				}
				return 1
			})
			for j, nb := range h {
				if int(nb.idx) != wantNb[i][j] {
					t.Fatalf("K=%d query %d: neighbour %d is row %d, brute force row %d", K, i, j, nb.idx, wantNb[i][j])
				}
			}
		}
		got := knnVotes(tr, trainY, te, d, k, K, 0.07, 2)
		want, _ := bruteKNNVotes(train, trainY, test, d, k, K, 0.07)
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-4*want[i] {
				t.Fatalf("K=%d: vote %d = %v, brute force %v", K, i, got[i], want[i])
			}
		}
	}
}

func TestKNNClipsK(t *testing.T) {
	rng := rand.New(rand.NewSource(10))
	d, k := 5, 2
	train := randSlice(rng, 30*d)
	trainY := make([]int, 30)
	for i := range trainY {
		trainY[i] = i % 2
	}
	res, err := KNN(train, trainY, train[:4*d], trainY[:4], d, k, KNNConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if res.K != 30 || res.TopK != 2 || res.Top5 != 1 {
		t.Fatalf("K %d, top-%d accuracy %v; want K clipped to 30 and top-2 accuracy 1", res.K, res.TopK, res.Top5)
	}
}

func TestKNNMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("MNIST kNN takes a few seconds; skipped with -short")
	}
	tr, te := loadMNIST(t)
	res, err := KNN(tr.x, tr.y, te.x, te.y, 784, 10, DefaultKNNConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MNIST pixels, weighted kNN (K=200, T=0.07): top-1 %.4f, top-5 %.4f in %.1f s", res.Top1, res.Top5, res.Seconds)
	// Cosine 1-NN on raw pixels reaches about 97%; 200 weighted neighbours
	// land near 95%.
	if res.Top1 < 0.94 {
		t.Fatalf("top-1 %v, want >= 0.94", res.Top1)
	}
}
