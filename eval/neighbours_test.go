package eval

import (
	"math"
	"math/rand"
	"slices"
	"testing"
)

func TestNearestNeighboursAgainstBruteForce(t *testing.T) {
	withKernels(t, func(t *testing.T) {
		rng := rand.New(rand.NewSource(61))
		nBase, nQuery, d, k := 1100, 300, 19, 3
		centres := randSlice(rng, k*d)
		base, baseY := clusteredData(rng, nBase, d, k, centres)
		q, _ := clusteredData(rng, nQuery, d, k, centres)
		// Exact duplicates make ties, which go to the earlier base row.
		copy(base[700*d:701*d], base[5*d:6*d])
		copy(q[0:d], base[5*d:6*d])
		const K = 7
		idx, sims, err := NearestNeighbours(base, nBase, q, nQuery, d, K, 3)
		if err != nil {
			t.Fatal(err)
		}
		_, want := bruteKNNVotes(base, baseY, q, d, k, K, 1)
		for i := range want {
			if !slices.Equal(idx[i], want[i]) {
				t.Fatalf("query %d: neighbours %v, brute force %v", i, idx[i], want[i])
			}
			for j := 1; j < K; j++ {
				if sims[i][j] > sims[i][j-1] {
					t.Fatalf("query %d: similarities not descending: %v", i, sims[i])
				}
			}
		}
		if idx[0][0] != 5 || idx[0][1] != 700 || math.Abs(float64(sims[0][0])-1) > 1e-5 {
			t.Fatalf("duplicate query: neighbours %v sims %v, want 5 then 700 at similarity 1", idx[0][:2], sims[0][:2])
		}
		// K is clipped to the base size.
		idx, _, err = NearestNeighbours(base[:3*d], 3, q, nQuery, d, 10, 0)
		if err != nil || len(idx[0]) != 3 {
			t.Fatalf("clipped K: %v, %v", idx[0], err)
		}
	})
}
