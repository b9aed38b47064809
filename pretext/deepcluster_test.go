package pretext

import (
	"math"
	"math/rand"
	"sort"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/eval/cluster"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// The sampler spreads the images evenly over the non-empty clusters
// (shares differ by at most one), never draws from an empty cluster, cycles
// through a cluster's members before repeating one, and depends on the seed
// alone.
func TestDCUniformSampleIsUniformOverClusters(t *testing.T) {
	// Cluster sizes 1, 4, 0, 40, 7 (cluster 2 empty), shuffled.
	var assign []int
	for c, s := range []int{1, 4, 0, 40, 7} {
		for i := 0; i < s; i++ {
			assign = append(assign, c)
		}
	}
	rand.New(rand.NewSource(3)).Shuffle(len(assign), func(i, j int) { assign[i], assign[j] = assign[j], assign[i] })
	for _, count := range []int{52, 50, 7, 3} {
		got := dcUniformSample(assign, 5, count, rand.New(rand.NewSource(int64(count))))
		if len(got) != count {
			t.Fatalf("count %d: %d positions", count, len(got))
		}
		per := make([]int, 5)
		times := map[int]int{}
		for _, p := range got {
			per[assign[p]]++
			times[p]++
		}
		if per[2] != 0 {
			t.Fatalf("count %d: %d draws from the empty cluster", count, per[2])
		}
		lo, hi := count, 0
		for c, n := range per {
			if c != 2 {
				lo, hi = min(lo, n), max(hi, n)
			}
		}
		if hi-lo > 1 {
			t.Fatalf("count %d: draws per cluster %v differ by more than one", count, per)
		}
		// Within a cluster of size s drawn n times, every member comes
		// floor(n/s) or ceil(n/s) times.
		size := []int{1, 4, 0, 40, 7}
		for p, k := range times {
			c := assign[p]
			if f := per[c] / size[c]; k != f && k != f+1 {
				t.Fatalf("count %d: image %d of cluster %d (size %d, %d draws) drawn %d times", count, p, c, size[c], per[c], k)
			}
		}
	}
	// Over many draws of 10 images from 4 clusters, which clusters get the
	// third image is uniform: each cluster gets 2.5 on average.
	assign = []int{0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3}
	rng := rand.New(rand.NewSource(1))
	per := make([]float64, 4)
	const trials = 4000
	for i := 0; i < trials; i++ {
		for _, p := range dcUniformSample(assign, 4, 10, rng) {
			per[assign[p]]++
		}
	}
	for c, n := range per {
		if math.Abs(n/trials-2.5) > 0.05 {
			t.Fatalf("cluster %d drew %.3f images a batch on average, expected 2.5", c, n/trials)
		}
	}
	a := dcUniformSample(assign, 4, 10, rand.New(rand.NewSource(7)))
	b := dcUniformSample(assign, 4, 10, rand.New(rand.NewSource(7)))
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("the same seed drew different images")
		}
	}
}

// dcBuild builds deepcluster on a fresh resnet20c (1 channel, 12 px) for
// n training images.
func dcBuild(t *testing.T, n, batch int, dc *DeepClusterConfig, training bool) *dcModel {
	t.Helper()
	spec, err := models.New("resnet20c", 1)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	bb, err := models.NewBackbone(G.NewGraph(), spec, models.InitWeights(spec, rng), tensor.Float32, &ops.Mode{Training: training})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(1, 12)
	cfg.TrainImages, cfg.DeepCluster = n, dc
	m, err := DeepCluster{}.Build(bb, batch, cfg, models.Weights{}, rng)
	if err != nil {
		t.Fatal(err)
	}
	return m.(*dcModel)
}

// blobFeatures returns features [len(index), d] for dataset images: image
// i lies near centre i%k (centres far apart), plus a little noise that
// depends on i alone.
func blobFeatures(k, d int) func([]int) ([]float32, error) {
	centres := make([]float64, k*d)
	rng := rand.New(rand.NewSource(99))
	for i := range centres {
		centres[i] = 5 * rng.NormFloat64()
	}
	return func(index []int) ([]float32, error) {
		out := make([]float32, 0, len(index)*d)
		for _, i := range index {
			r := rand.New(rand.NewSource(int64(i)))
			for j := 0; j < d; j++ {
				out = append(out, float32(centres[(i%k)*d+j]+0.1*r.NormFloat64()))
			}
		}
		return out, nil
	}
}

// Reassign on features with a known cluster structure: the pseudo-labels
// are the structure (up to renaming), re-clustering the same features has
// NMI 1, the steps' images are balanced over the clusters, the head is
// reset, and State/SetState carry all of it to a new model.
func TestDCReassign(t *testing.T) {
	const n, k, batch = 60, 3, 6
	// The structure spans k-1 dimensions; with more, whitening would
	// blow the noise directions up to the size of the structure.
	dc := &DeepClusterConfig{K: k, PCADim: k - 1}
	m := dcBuild(t, n, batch, dc, true)
	if m.every != n/batch || m.p != k-1 || m.k != k {
		t.Fatalf("every %d, PCA dim %d, k %d; expected %d, %d, %d", m.every, m.p, m.k, n/batch, k-1, k)
	}
	if _, err := m.BatchIndices(0); err == nil {
		t.Fatal("expected an error for batch indices before any clustering")
	}
	feats := blobFeatures(k, 64)
	stats, err := m.Reassign(feats, rand.New(rand.NewSource(4)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := stats["dc_nmi"]; ok || stats["dc_clusterings"] != 1 || stats["dc_clusters"] != k || stats["dc_images"] != n {
		t.Fatalf("first clustering's figures: %v", stats)
	}
	truth := make([]int, n)
	for i := range truth {
		truth[i] = i % k
	}
	if nmi, _ := cluster.NMI(m.assign, truth); nmi != 1 {
		t.Fatalf("pseudo-labels %v do not recover the structure (NMI %v)", m.assign, nmi)
	}
	// The head is N(0, 0.01) with zero bias.
	w := m.head.W.Value().Data().([]float32)
	var ss float64
	for _, v := range w {
		ss += float64(v) * float64(v)
	}
	if sd := math.Sqrt(ss / float64(len(w))); sd < 0.008 || sd > 0.012 {
		t.Fatalf("head weights have standard deviation %v, expected 0.01", sd)
	}
	for _, v := range m.head.B.Value().Data().([]float32) {
		if v != 0 {
			t.Fatal("head bias not reset to zero")
		}
	}
	// One re-clustering period covers every*batch images, 20 per cluster.
	per := make([]int, k)
	for s := 0; s < m.every; s++ {
		idx, err := m.BatchIndices(s)
		if err != nil || len(idx) != batch {
			t.Fatalf("step %d: %v, %v", s, idx, err)
		}
		for _, i := range idx {
			per[m.assign[i]]++
		}
	}
	for c, v := range per {
		if v != n/k {
			t.Fatalf("cluster %d supplied %d images of %d, expected %d", c, v, n, n/k)
		}
	}
	// The embedding maps every image to its own centroid (what the
	// held-out score relies on).
	x, _ := feats(m.order)
	z := make([]float64, m.p)
	for r, i := range m.order {
		m.embed(x[r*64:(r+1)*64], z)
		if got := nearest(z, m.cent, k); got != m.assign[i] {
			t.Fatalf("image %d: nearest centroid %d, pseudo-label %d", i, got, m.assign[i])
		}
	}
	// The state carries over: a model restored from it draws the same
	// images and scores the same.
	st := m.State()
	m2 := dcBuild(t, n, batch, dc, true)
	if err := m2.SetState(st); err != nil {
		t.Fatal(err)
	}
	for s := 0; s < m.every; s++ {
		a, _ := m.BatchIndices(s)
		b, _ := m2.BatchIndices(s)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("step %d: restored model draws %v, original %v", s, b, a)
			}
		}
	}
	for i := range m.assign {
		if m.assign[i] != m2.assign[i] {
			t.Fatal("pseudo-labels not restored")
		}
	}
	// Re-clustering the same features: the same partition, NMI 1.
	stats, err = m.Reassign(feats, rand.New(rand.NewSource(5)))
	if err != nil {
		t.Fatal(err)
	}
	if stats["dc_nmi"] != 1 || stats["dc_clusterings"] != 2 {
		t.Fatalf("second clustering's figures: %v", stats)
	}
	// Damaged state is refused.
	bad := m.State()
	bad["dc_assign"].Data[3] = float32(k)
	if err := m2.SetState(bad); err == nil {
		t.Fatal("expected an error for a pseudo-label out of range")
	}
	delete(bad, "dc_order")
	if err := m2.SetState(bad); err == nil {
		t.Fatal("expected an error for state without dc_order")
	}
}

// With more training images than DeepClusterConfig.Images, each
// re-clustering labels a new random subset of that size, and the steps
// only draw labelled images; NMI is measured on the images both subsets
// share.
func TestDCReassignSubset(t *testing.T) {
	const n, k, batch = 200, 4, 5
	m := dcBuild(t, n, batch, &DeepClusterConfig{K: k, Images: 50, PCADim: k - 1}, true)
	if m.every != 10 || m.p != k-1 {
		t.Fatalf("every %d, PCA dim %d", m.every, m.p)
	}
	feats := blobFeatures(k, 64)
	calls := 0
	counted := func(index []int) ([]float32, error) {
		calls++
		if len(index) != 50 || !sort.IntsAreSorted(index) {
			t.Fatalf("features asked for %d images (sorted: %v)", len(index), sort.IntsAreSorted(index))
		}
		return feats(index)
	}
	var subsets [2][]int
	for r := 0; r < 2; r++ {
		stats, err := m.Reassign(counted, rand.New(rand.NewSource(int64(r))))
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range m.assign {
			if a >= 0 {
				subsets[r] = append(subsets[r], i)
			}
		}
		if len(subsets[r]) != 50 {
			t.Fatalf("%d images labelled, expected 50", len(subsets[r]))
		}
		for s := 0; s < m.every; s++ {
			idx, _ := m.BatchIndices(s)
			for _, i := range idx {
				if m.assign[i] < 0 {
					t.Fatalf("step %d draws image %d, which has no pseudo-label", s, i)
				}
			}
		}
		if r == 1 && stats["dc_nmi"] != 1 {
			t.Fatalf("NMI on the shared images %v, expected 1 (the same structure)", stats["dc_nmi"])
		}
	}
	same := 0
	for i := range subsets[0] {
		if subsets[0][i] == subsets[1][i] {
			same++
		}
	}
	if calls != 2 || same == 50 {
		t.Fatalf("%d feature passes; the two subsets agree in %d of 50 places", calls, same)
	}
}

// The configuration is checked and capped: k and the PCA dimension at the
// images, every from the images and the batch.
func TestDCConfig(t *testing.T) {
	m := dcBuild(t, 8, 2, nil, true)
	if m.k != 8 || m.p != 7 || m.every != 4 || m.m != 8 {
		t.Fatalf("defaults on 8 images: k %d, PCA dim %d, every %d, images %d", m.k, m.p, m.every, m.m)
	}
	m = dcBuild(t, 20000, 64, nil, true)
	if m.k != 100 || m.p != 8 || m.every != 156 || m.m != 10000 || len(m.order) != 156*64 {
		t.Fatalf("defaults on 20000 images: k %d, PCA dim %d, every %d, images %d, order %d", m.k, m.p, m.every, m.m, len(m.order))
	}
	for _, dc := range []*DeepClusterConfig{{K: 1}, {K: 5, Every: -1}, {K: 5, Init: "forgy"}, {K: 5, PCADim: -2}} {
		spec, _ := models.New("resnet20c", 1)
		rng := rand.New(rand.NewSource(1))
		bb, _ := models.NewBackbone(G.NewGraph(), spec, models.InitWeights(spec, rng), tensor.Float32, &ops.Mode{Training: true})
		cfg := DefaultConfig(1, 12)
		cfg.TrainImages, cfg.DeepCluster = 20, dc
		if _, err := (DeepCluster{}).Build(bb, 2, cfg, models.Weights{}, rng); err == nil {
			t.Errorf("%+v: expected an error", *dc)
		}
	}
}
