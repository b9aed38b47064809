package eval

import (
	"fmt"
	"math"
	"math/rand"
	"time"

	"github.com/selfsup/selfsup/eval/cluster"
)

// ClusterConfig configures Cluster.
type ClusterConfig struct {
	// K is the number of clusters (required).
	K int `json:"k"`
	// Restarts runs k-means this many times from different k-means++
	// seedings and keeps the lowest inertia (default 3; scikit-learn's
	// n_init).
	Restarts int `json:"restarts"`
	// Iters bounds each run's Lloyd iterations (default 100).
	Iters int `json:"iters"`
	// L2Normalize clusters the L2-normalised rows (cosine geometry, as
	// the kNN probe) instead of the raw features.
	L2Normalize bool  `json:"l2_normalize"`
	Seed        int64 `json:"seed"`
}

// ClusterResult reports Cluster. NMI, ARI and Purity are present only when
// labels were given.
type ClusterResult struct {
	K        int     `json:"k"`
	N        int     `json:"n"`
	Dim      int     `json:"dim"`
	Inertia  float64 `json:"inertia"` // sum of squared distances to the centroids (scikit-learn's inertia_)
	Seconds  float64 `json:"seconds"` // k-means wall time, all restarts
	Restarts int     `json:"restarts"`
	Iters    int     `json:"iters"` // Lloyd iterations of the kept run
	Sizes    []int   `json:"sizes"`
	// Against the labels: normalised mutual information (cluster.NMI),
	// adjusted Rand index and purity.
	NMI    *float64 `json:"nmi,omitempty"`
	ARI    *float64 `json:"ari,omitempty"`
	Purity *float64 `json:"purity,omitempty"`
	// Assign is each row's cluster; Centroids are [K, Dim] (in the space
	// clustered: L2-normalised rows with L2Normalize).
	Assign    []int     `json:"-"`
	Centroids []float64 `json:"-"`
}

// Cluster runs k-means (k-means++ seeding, cfg.Restarts runs, the lowest
// inertia kept) on x ([n, d]) and, when labels is not nil, scores the
// clustering against them: the unsupervised evaluation of the seed's
// learning-types slide (train time and inertia) plus NMI, ARI and purity.
func Cluster(x []float32, n, d int, labels []int, cfg ClusterConfig) (*ClusterResult, error) {
	if cfg.Restarts <= 0 {
		cfg.Restarts = 3
	}
	if cfg.Iters <= 0 {
		cfg.Iters = 100
	}
	if n <= 0 || d <= 0 || len(x) != n*d {
		return nil, fmt.Errorf("eval: cluster: %d values for %d rows x %d", len(x), n, d)
	}
	if cfg.K < 1 || cfg.K > n {
		return nil, fmt.Errorf("eval: cluster: k = %d, expected 1..%d (the rows)", cfg.K, n)
	}
	if labels != nil && len(labels) != n {
		return nil, fmt.Errorf("eval: cluster: %d labels for %d rows", len(labels), n)
	}
	x64 := make([]float64, len(x))
	for i := 0; i < n; i++ {
		row := x[i*d : (i+1)*d]
		scale := 1.0
		if cfg.L2Normalize {
			var s float64
			for _, v := range row {
				s += float64(v) * float64(v)
			}
			if s > 0 {
				scale = 1 / math.Sqrt(s)
			}
		}
		for j, v := range row {
			x64[i*d+j] = float64(v) * scale
		}
	}
	t0 := time.Now()
	rng := rand.New(rand.NewSource(cfg.Seed))
	var best *cluster.KMeansResult
	bestInertia := math.Inf(1)
	for r := 0; r < cfg.Restarts; r++ {
		km, err := cluster.KMeans(x64, n, d, cluster.KMeansConfig{K: cfg.K, Iters: cfg.Iters}, rng)
		if err != nil {
			return nil, err
		}
		if in := cluster.Inertia(x64, n, d, km.Centroids, km.Assign); in < bestInertia {
			best, bestInertia = km, in
		}
	}
	res := &ClusterResult{K: cfg.K, N: n, Dim: d, Inertia: bestInertia, Seconds: time.Since(t0).Seconds(), Restarts: cfg.Restarts,
		Iters: best.Iters, Sizes: best.Sizes, Assign: best.Assign, Centroids: best.Centroids}
	if labels != nil {
		nmi, err := cluster.NMI(best.Assign, labels)
		if err != nil {
			return nil, err
		}
		ari, err := cluster.ARI(best.Assign, labels)
		if err != nil {
			return nil, err
		}
		pur, err := cluster.Purity(best.Assign, labels)
		if err != nil {
			return nil, err
		}
		res.NMI, res.ARI, res.Purity = &nmi, &ari, &pur
	}
	return res, nil
}

// String is the seed's one-line summary ("KMeans train time ..., inertia
// ...") with the label scores when there are any.
func (r *ClusterResult) String() string {
	s := fmt.Sprintf("KMeans k=%d on %d x %d: train time %.2fs, inertia %.6g", r.K, r.N, r.Dim, r.Seconds, r.Inertia)
	if r.NMI != nil {
		s += fmt.Sprintf(", NMI %.4f, ARI %.4f, purity %.4f", *r.NMI, *r.ARI, *r.Purity)
	}
	return s
}
