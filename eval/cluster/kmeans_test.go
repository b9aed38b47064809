package cluster

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
)

// gaussBlobs returns per points around each of k centres spaced sep apart
// along the axes of a d-dimensional grid (unit Gaussian noise), with the
// blob of each point.
func gaussBlobs(k, per, d int, sep float64, rng *rand.Rand) ([]float64, []int) {
	centres := make([][]float64, k)
	for c := range centres {
		centres[c] = make([]float64, d)
		for j := range centres[c] {
			centres[c][j] = sep * rng.NormFloat64()
		}
	}
	var x []float64
	var y []int
	for i := 0; i < k*per; i++ {
		c := i % k
		for j := 0; j < d; j++ {
			x = append(x, centres[c][j]+rng.NormFloat64())
		}
		y = append(y, c)
	}
	return x, y
}

// matchUpToPermutation reports whether got is want with the groups
// renamed one to one.
func matchUpToPermutation(got, want []int) bool {
	fwd, back := map[int]int{}, map[int]int{}
	for i, g := range got {
		w := want[i]
		if f, ok := fwd[g]; ok && f != w {
			return false
		}
		if b, ok := back[w]; ok && b != g {
			return false
		}
		fwd[g], back[w] = w, g
	}
	return true
}

// Well-separated blobs are recovered exactly (up to renaming), with each
// centroid the mean of its blob (the closed form of the optimum), from
// either initialisation and several seeds.
func TestKMeansRecoversBlobs(t *testing.T) {
	const per, d = 30, 5
	// Random seeding can put two centroids in one of many blobs, which
	// Lloyd cannot undo; with two blobs it recovers, and kmeans++ cannot
	// miss at this separation.
	for _, c := range []struct {
		init string
		kk   int
	}{{KMeansPlusPlus, 6}, {KMeansRandom, 2}} {
		init, kk := c.init, c.kk
		for seed := int64(1); seed <= 5; seed++ {
			x, y := gaussBlobs(kk, per, d, 200, rand.New(rand.NewSource(seed)))
			r, err := KMeans(x, len(y), d, KMeansConfig{K: kk, Init: init}, rand.New(rand.NewSource(seed+10)))
			if err != nil {
				t.Fatal(err)
			}
			if !matchUpToPermutation(r.Assign, y) {
				t.Fatalf("%s seed %d: assignment %v is not the blobs %v up to renaming", init, seed, r.Assign, y)
			}
			for c := 0; c < kk; c++ {
				mean := make([]float64, d)
				cnt := 0
				for i, a := range r.Assign {
					if a == c {
						cnt++
						for j := range mean {
							mean[j] += x[i*d+j]
						}
					}
				}
				if cnt != r.Sizes[c] {
					t.Fatalf("cluster %d: size %d, counted %d", c, r.Sizes[c], cnt)
				}
				for j := range mean {
					if got := r.Centroids[c*d+j]; math.Abs(got-mean[j]/float64(cnt)) > 1e-9 {
						t.Fatalf("%s seed %d: centroid %d[%d] = %v, blob mean %v", init, seed, c, j, got, mean[j]/float64(cnt))
					}
				}
			}
		}
	}
}

// lloydReference is a plain Lloyd's algorithm from given centroids, to
// convergence (no empty-cluster handling: the test data has none).
func lloydReference(x []float64, n, d int, cent []float64) ([]int, []float64) {
	k := len(cent) / d
	cent = append([]float64(nil), cent...)
	assign := make([]int, n)
	for it := 0; ; it++ {
		changed := false
		for i := 0; i < n; i++ {
			best, bd := -1, 0.0
			for c := 0; c < k; c++ {
				var s float64
				for j := 0; j < d; j++ {
					s += (x[i*d+j] - cent[c*d+j]) * (x[i*d+j] - cent[c*d+j])
				}
				if best < 0 || s < bd {
					best, bd = c, s
				}
			}
			if it == 0 || assign[i] != best {
				changed = true
			}
			assign[i] = best
		}
		if !changed {
			return assign, cent
		}
		for c := 0; c < k; c++ {
			cnt := 0.0
			sum := make([]float64, d)
			for i := 0; i < n; i++ {
				if assign[i] == c {
					cnt++
					for j := 0; j < d; j++ {
						sum[j] += x[i*d+j]
					}
				}
			}
			for j := 0; j < d; j++ {
				cent[c*d+j] = sum[j] / cnt
			}
		}
	}
}

// On unstructured data (many local optima) KMeans with random seeding
// follows exactly the path of a plain Lloyd's algorithm started from the
// same K points.
func TestKMeansMatchesPlainLloyd(t *testing.T) {
	const n, d, k = 300, 3, 7
	rng := rand.New(rand.NewSource(4))
	x := make([]float64, n*d)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	r, err := KMeans(x, n, d, KMeansConfig{K: k, Init: KMeansRandom, Iters: 1000}, rand.New(rand.NewSource(9)))
	if err != nil {
		t.Fatal(err)
	}
	if r.Splits != 0 {
		t.Fatalf("unexpected empty-cluster repairs: %d", r.Splits)
	}
	init := make([]float64, k*d)
	for c, i := range rand.New(rand.NewSource(9)).Perm(n)[:k] {
		copy(init[c*d:(c+1)*d], x[i*d:(i+1)*d])
	}
	wantA, wantC := lloydReference(x, n, d, init)
	for i := range wantA {
		if r.Assign[i] != wantA[i] {
			t.Fatalf("point %d: cluster %d, reference %d", i, r.Assign[i], wantA[i])
		}
	}
	for i := range wantC {
		if math.Abs(r.Centroids[i]-wantC[i]) > 1e-12 {
			t.Fatalf("centroid value %d: %v, reference %v", i, r.Centroids[i], wantC[i])
		}
	}
	if r.Iters >= 1000 || r.Iters < 2 {
		t.Fatalf("%d iterations", r.Iters)
	}
	// Lloyd never increases the objective, and Loss is the mean squared
	// distance to the assigned centroid.
	for i := 1; i < len(r.History); i++ {
		if r.History[i] > r.History[i-1]+1e-12 {
			t.Fatalf("loss rose at iteration %d: %v", i, r.History)
		}
	}
	var s float64
	for i, a := range r.Assign {
		s += sqDist(x[i*d:(i+1)*d], r.Centroids[a*d:(a+1)*d])
	}
	if math.Abs(s/n-r.Loss) > 1e-12 {
		t.Fatalf("loss %v, recomputed %v", r.Loss, s/n)
	}
}

// The same seed gives the same clustering, whatever the number of workers;
// another seed a different start.
func TestKMeansDeterministic(t *testing.T) {
	x, _ := gaussBlobs(10, 40, 8, 2, rand.New(rand.NewSource(2)))
	n := len(x) / 8
	run := func(seed int64, workers int) *KMeansResult {
		r, err := KMeans(x, n, 8, KMeansConfig{K: 12, Workers: workers}, rand.New(rand.NewSource(seed)))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b, c := run(5, 1), run(5, 3), run(6, 2)
	for i := range a.Centroids {
		if math.Float64bits(a.Centroids[i]) != math.Float64bits(b.Centroids[i]) {
			t.Fatalf("centroid value %d differs between 1 and 3 workers", i)
		}
	}
	if !equalInts(a.Assign, b.Assign) || a.Loss != b.Loss {
		t.Fatal("assignments differ between 1 and 3 workers")
	}
	if equalInts(a.Assign, c.Assign) && a.Loss == c.Loss {
		t.Fatal("seeds 5 and 6 gave the same clustering: the seed is not used")
	}
}

// Six distinct locations, each repeated ten times: random seeding almost
// surely draws one location twice, a tie leaves a cluster empty, and the
// repair (split a cluster with more than one point) must still end at the
// optimum, one location per cluster, loss 0.
func TestKMeansRepairsEmptyClusters(t *testing.T) {
	// (In general position: faiss's perturbation pattern, +eps on even and
	// -eps on odd coordinates, cannot separate two points whose difference
	// is orthogonal to it, such as (10, 10) and (11, 11).)
	locs := [][2]float64{{10, 0}, {11, 0.3}, {0, 10}, {0.4, 11}, {10, 10}, {11.2, 10.5}}
	var x []float64
	for r := 0; r < 10; r++ {
		for _, l := range locs {
			x = append(x, l[0], l[1])
		}
	}
	splits := 0
	for seed := int64(1); seed <= 20; seed++ {
		r, err := KMeans(x, 60, 2, KMeansConfig{K: 6, Init: KMeansRandom, Iters: 50}, rand.New(rand.NewSource(seed)))
		if err != nil {
			t.Fatal(err)
		}
		splits += r.Splits
		for c, s := range r.Sizes {
			if s != 10 {
				t.Fatalf("seed %d: cluster %d holds %d points, expected 10 (sizes %v, %d splits)", seed, c, s, r.Sizes, r.Splits)
			}
		}
		if r.Loss > 1e-20 {
			t.Fatalf("seed %d: loss %v, expected 0", seed, r.Loss)
		}
	}
	if splits == 0 {
		t.Fatal("no seed needed an empty-cluster repair: the test tests nothing")
	}
}

// The repair picks the cluster to split with probability proportional to
// its size minus one, and places the two centroids symmetrically about
// the old one.
func TestKMeansSplitRule(t *testing.T) {
	// 12 points in 1-D: 3 in cluster 0, 9 in cluster 1, none in cluster 2.
	x := make([]float64, 12)
	assign := make([]int, 12)
	for i := range x {
		x[i] = 5
		if i >= 3 {
			x[i], assign[i] = 20, 1
		}
	}
	rng := rand.New(rand.NewSource(1))
	picks := [2]int{}
	const trials = 4000
	for t0 := 0; t0 < trials; t0++ {
		cent := make([]float64, 3)
		if n := kmeansUpdate(x, 12, 1, cent, 3, assign, rng); n != 1 {
			t.Fatalf("%d repairs, expected 1", n)
		}
		switch {
		case math.Abs(cent[2]-5*(1+1.0/1024)) < 1e-12 && math.Abs(cent[0]-5*(1-1.0/1024)) < 1e-12:
			picks[0]++
		case math.Abs(cent[2]-20*(1+1.0/1024)) < 1e-12 && math.Abs(cent[1]-20*(1-1.0/1024)) < 1e-12:
			picks[1]++
		default:
			t.Fatalf("centroids after the repair: %v", cent)
		}
	}
	// Weights 3-1 = 2 and 9-1 = 8: cluster 1 with probability 0.8
	// (binomial standard deviation 0.0063 at 4000 trials).
	if p := float64(picks[1]) / trials; math.Abs(p-0.8) > 0.03 {
		t.Fatalf("cluster 1 split with frequency %.3f, expected 0.8", p)
	}
}

func TestKMeansErrors(t *testing.T) {
	x := []float64{0, 1, 2, 3}
	rng := rand.New(rand.NewSource(1))
	for _, c := range []struct {
		x    []float64
		n, d int
		cfg  KMeansConfig
	}{
		{x, 2, 2, KMeansConfig{K: 3}},
		{x, 2, 2, KMeansConfig{K: 0}},
		{x, 3, 2, KMeansConfig{K: 1}},
		{x, 2, 2, KMeansConfig{K: 1, Init: "forgy"}},
		{[]float64{0, math.NaN()}, 2, 1, KMeansConfig{K: 1}},
	} {
		if _, err := KMeans(c.x, c.n, c.d, c.cfg, rng); err == nil {
			t.Errorf("%+v: expected an error", c)
		}
	}
}

func TestNMI(t *testing.T) {
	// Identical up to renaming: 1; a product design: independent, 0.
	a := []int{0, 0, 1, 1, 2, 2, 2}
	b := []int{7, 7, 3, 3, 0, 0, 0}
	if v, err := NMI(a, b); err != nil || math.Abs(v-1) > 1e-12 {
		t.Fatalf("renamed copy: %v, %v", v, err)
	}
	var p, q []int
	for i := 0; i < 60; i++ {
		p, q = append(p, i%3), append(q, (i/3)%4)
	}
	if v, _ := NMI(p, q); math.Abs(v) > 1e-12 {
		t.Fatalf("independent labelings: %v", v)
	}
	// A hand-computed case: a = [0 0 1 1], b = [0 0 0 1].
	mi := 0.5*math.Log(4.0/3) + 0.25*math.Log(2.0/3) + 0.25*math.Log(2)
	ha := math.Log(2)
	hb := -(0.75*math.Log(0.75) + 0.25*math.Log(0.25))
	if v, _ := NMI([]int{0, 0, 1, 1}, []int{0, 0, 0, 1}); math.Abs(v-mi/math.Sqrt(ha*hb)) > 1e-12 {
		t.Fatalf("hand case: %v, expected %v", v, mi/math.Sqrt(ha*hb))
	}
	// Symmetric; single groups.
	x, _ := NMI([]int{0, 1, 1, 2}, []int{1, 1, 0, 0})
	y, _ := NMI([]int{1, 1, 0, 0}, []int{0, 1, 1, 2})
	if x != y {
		t.Fatalf("not symmetric: %v vs %v", x, y)
	}
	if v, _ := NMI([]int{4, 4}, []int{1, 1}); v != 1 {
		t.Fatalf("two single groups: %v", v)
	}
	if v, _ := NMI([]int{4, 4}, []int{0, 1}); v != 0 {
		t.Fatalf("one single group: %v", v)
	}
	if _, err := NMI([]int{0}, []int{0, 1}); err == nil {
		t.Fatal("expected an error for different lengths")
	}
	if _, err := NMI([]int{-1, 0}, []int{0, 1}); err == nil {
		t.Fatal("expected an error for a negative label")
	}
}

// The scikit-learn side of TestKMeansAndNMIMatchScikitLearn: Lloyd's
// k-means from the given centroids (one run, no tolerance) and the
// geometric-mean NMI.
const sklearnKMeansScript = `
import json, sys, numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score
n, d, k = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
x = np.fromfile(sys.argv[1] + "/x.f64", dtype="<f8").reshape(n, d)
c = np.fromfile(sys.argv[1] + "/c.f64", dtype="<f8").reshape(k, d)
a = np.fromfile(sys.argv[1] + "/a.i64", dtype="<i8")
b = np.fromfile(sys.argv[1] + "/b.i64", dtype="<i8")
m = KMeans(n_clusters=k, init=c, n_init=1, max_iter=1000, tol=0, algorithm="lloyd").fit(x)
print(json.dumps({"assign": m.labels_.tolist(), "inertia": float(m.inertia_),
  "nmi": float(normalized_mutual_info_score(a, b, average_method="geometric"))}))
`

// KMeans and NMI agree with scikit-learn (skipped without it; see
// pythonWithSklearn).
func TestKMeansAndNMIMatchScikitLearn(t *testing.T) {
	py := testenv.Python(t, "sklearn", "numpy")
	const n, d, k = 400, 4, 9
	rng := rand.New(rand.NewSource(8))
	x := make([]float64, n*d)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	r, err := KMeans(x, n, d, KMeansConfig{K: k, Init: KMeansRandom, Iters: 1000}, rand.New(rand.NewSource(3)))
	if err != nil {
		t.Fatal(err)
	}
	init := make([]float64, k*d)
	for c, i := range rand.New(rand.NewSource(3)).Perm(n)[:k] {
		copy(init[c*d:(c+1)*d], x[i*d:(i+1)*d])
	}
	la, lb := make([]int64, n), make([]int64, n)
	ia, ib := make([]int, n), make([]int, n)
	for i := range la {
		ia[i], ib[i] = rng.Intn(5), rng.Intn(3)
		if rng.Intn(2) == 0 {
			ib[i] = ia[i] % 3
		}
		la[i], lb[i] = int64(ia[i]), int64(ib[i])
	}
	dir := t.TempDir()
	write := func(name string, v any) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := binary.Write(f, binary.LittleEndian, v); err != nil {
			t.Fatal(err)
		}
	}
	write("x.f64", x)
	write("c.f64", init)
	write("a.i64", la)
	write("b.i64", lb)
	out, err := exec.Command(py, "-c", sklearnKMeansScript, dir, strconv.Itoa(n), strconv.Itoa(d), strconv.Itoa(k)).Output()
	if err != nil {
		t.Fatalf("scikit-learn: %v", err)
	}
	var ref struct {
		Assign  []int   `json:"assign"`
		Inertia float64 `json:"inertia"`
		NMI     float64 `json:"nmi"`
	}
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatalf("scikit-learn output %q: %v", out, err)
	}
	for i := range ref.Assign {
		if ref.Assign[i] != r.Assign[i] {
			t.Fatalf("point %d: cluster %d, scikit-learn %d", i, r.Assign[i], ref.Assign[i])
		}
	}
	if math.Abs(r.Loss*n-ref.Inertia) > 1e-9*ref.Inertia {
		t.Fatalf("inertia %v, scikit-learn %v", r.Loss*n, ref.Inertia)
	}
	nmi, err := NMI(ia, ib)
	if err != nil || math.Abs(nmi-ref.NMI) > 1e-12 {
		t.Fatalf("nmi %v (%v), scikit-learn %v", nmi, err, ref.NMI)
	}
}
