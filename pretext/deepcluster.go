package pretext

import (
	"fmt"
	"math"
	"math/rand"
	"sort"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval/cluster"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// DeepCluster (Caron, Bojanowski, Joulin & Douze, "Deep Clustering for
// Unsupervised Learning of Visual Features", ECCV 2018) alternates two
// steps. At every re-clustering point (Reassigner; by default once per
// pass over the clustered images, the paper's "every epoch") the current
// backbone, in inference mode and without augmentation, embeds the
// training images (a fresh random subset of DeepClusterConfig.Images of
// them when there are more); the pooled features [n, FeatureDim] are
// PCA-reduced to PCADim dimensions, whitened (each component divided by
// the square root of its variance) and L2-normalised (Sec. 3.3 and 4:
// 256 dimensions there), and k-means (cluster.KMeans, with the paper's
// empty-cluster repair) groups them into K clusters whose indices become
// the images' pseudo-labels. The linear classification head is then
// re-initialised (weights N(0, 0.01), bias 0, as the reference code resets
// its top layer; the trainer also drops the head's momentum), and until
// the next point every step trains backbone and head with softmax
// cross-entropy against the pseudo-labels, on images sampled uniformly over
// the clusters (Sec. 3.3, "Trivial parametrization": each non-empty cluster
// supplies an equal share of the images). Views get the shared
// augmentation (random resized crop, flip). There is no Sobel filtering
// and no MLP between the pooled features and the head (a ResNet backbone,
// as in mmselfsup's DeepCluster).
//
// Metrics while training: "pretext_acc", the agreement of the head's
// prediction with the pseudo-labels; "dc_clusterings", how many there have
// been; "dc_nmi", the normalised mutual
// information between the last two clusterings on the images both
// clustered (the paper's Fig. 2(b) stability measure; absent after the
// first); "dc_kmeans_loss" (mean squared distance to the centroid, on the
// unit-norm embeddings), "dc_clusters" (non-empty clusters), "dc_splits"
// (empty clusters repaired), "dc_images" and "dc_seconds" (cost of the last
// re-clustering). On held-out images (inference mode) "pretext_acc" is the
// agreement of the head with the nearest centroid of each view's own
// embedding under the last clustering's projection.

// DeepClusterConfig configures the deepcluster task. Zero fields take the
// defaults given.
type DeepClusterConfig struct {
	// K is the number of clusters (default 100; the paper uses 10,000 on
	// ImageNet). It is capped at the number of images clustered.
	K int `json:"k"`
	// Every is the number of steps between re-clusterings (default: one
	// pass over the clustered images, max(1, Images/batch) steps).
	Every int `json:"every,omitempty"`
	// Images bounds the training images embedded and clustered at each
	// point (default 10,000, a CPU budget: 5,000 took 3 s to embed and
	// cluster for resnet20c at 32 px on 2 shared cores). With more
	// training images a new random subset is drawn each time, so that
	// every image is used over a run; with fewer, all are clustered.
	Images int `json:"images,omitempty"`
	// PCADim is the dimension the features are reduced to before whitening
	// (default min(256, max(2, FeatureDim/8)): 256 for resnet50's 2048
	// features as mmselfsup, 64 for resnet18, 8 for resnet20c; capped at
	// FeatureDim and at the clustered images minus one). Whitening scales
	// every kept direction to unit variance, so directions that hold only
	// noise weigh as much as those that hold the structure: keep it small.
	PCADim int `json:"pca_dim,omitempty"`
	// Iters bounds the k-means iterations (default 20, the reference
	// code's faiss setting).
	Iters int `json:"iters,omitempty"`
	// Init is the k-means seeding: cluster.KMeansPlusPlus (default) or
	// cluster.KMeansRandom (faiss's).
	Init string `json:"init,omitempty"`
}

// DefaultDeepClusterConfig returns the defaults (Every is left 0: derived
// from Images and the batch).
func DefaultDeepClusterConfig() *DeepClusterConfig {
	return &DeepClusterConfig{K: 100, Images: 10000, Iters: 20, Init: cluster.KMeansPlusPlus}
}

// dcMaxImages is the largest training set whose indices float32 state
// tensors hold exactly.
const dcMaxImages = 1 << 24

// dcStats are the figures of the last re-clustering, in the order of the
// "dc_stats" state tensor.
var dcStats = []string{"dc_clusterings", "dc_nmi", "dc_kmeans_loss", "dc_clusters", "dc_splits", "dc_images", "dc_seconds"}

// DeepCluster is the deepcluster task.
type DeepCluster struct{}

func init() { Register("deepcluster", func() Task { return DeepCluster{} }) }

func (DeepCluster) Name() string      { return "deepcluster" }
func (DeepCluster) NeedsLabels() bool { return false }

// dcModel is DeepCluster built on a backbone.
type dcModel struct {
	cfg   Config
	dc    DeepClusterConfig
	batch int
	// n training images; m clustered at each point; k clusters; f feature
	// and p projected dimensions; every steps between re-clusterings.
	n, m, k, f, p, every int
	mode                 *ops.Mode
	input, feats         *G.Node
	head                 *models.Linear
	logits, loss         *G.Node
	labels               *ops.Labels
	training             bool

	// State (checkpointed). assign holds every training image's
	// pseudo-label (-1: not in the last clustered subset); order the
	// dataset indices of the steps up to the next re-clustering
	// ([every*batch]); mean [f], proj [p, f] (whitening folded in) and
	// cent [k, p] the last clustering's embedding and centroids, rounded to
	// float32; stats the dcStats figures, rounded to float32.
	assign []int
	order  []int
	mean   []float32
	proj   []float32
	cent   []float32
	stats  []float64
}

// resolveDeepCluster fills in the defaults of cfg.DeepCluster for a
// backbone with featDim pooled features.
func resolveDeepCluster(cfg Config, featDim int) (DeepClusterConfig, error) {
	r := *DefaultDeepClusterConfig()
	if cfg.DeepCluster != nil {
		r = *cfg.DeepCluster
		def := DefaultDeepClusterConfig()
		orDefault(&r.K, def.K)
		orDefault(&r.Images, def.Images)
		orDefault(&r.Iters, def.Iters)
		orDefault(&r.Init, def.Init)
	}
	if r.PCADim == 0 {
		r.PCADim = min(256, max(2, featDim/8))
	}
	switch {
	case r.K < 2:
		return r, fmt.Errorf("pretext: deepcluster: need at least 2 clusters, got k = %d", r.K)
	case r.Images < 2:
		return r, fmt.Errorf("pretext: deepcluster: need at least 2 images to cluster, got %d", r.Images)
	case r.Every < 0:
		return r, fmt.Errorf("pretext: deepcluster: re-clustering interval must be >= 0 steps, got %d", r.Every)
	case r.PCADim < 1:
		return r, fmt.Errorf("pretext: deepcluster: PCA dimension must be >= 1, got %d", r.PCADim)
	case r.Iters < 1:
		return r, fmt.Errorf("pretext: deepcluster: k-means iterations must be >= 1, got %d", r.Iters)
	case r.Init != cluster.KMeansPlusPlus && r.Init != cluster.KMeansRandom:
		return r, fmt.Errorf("pretext: deepcluster: k-means init %q, expected %q or %q", r.Init, cluster.KMeansPlusPlus, cluster.KMeansRandom)
	case cfg.TrainImages < 2:
		return r, fmt.Errorf("pretext: deepcluster: the pseudo-labels need the number of training images (Config.TrainImages, set by the trainer), got %d", cfg.TrainImages)
	case cfg.TrainImages >= dcMaxImages:
		return r, fmt.Errorf("pretext: deepcluster: %d training images, at most %d supported", cfg.TrainImages, dcMaxImages-1)
	}
	return r, nil
}

// Build adds the input [batch, C, S, S], the backbone's pooled features
// [batch, FeatureDim], the head "head.dc" (K outputs) and the loss.
func (DeepCluster) Build(bb *models.Backbone, batch int, cfg Config, heads models.Weights, rng *rand.Rand) (Model, error) {
	fail := func(err error) (Model, error) { return nil, fmt.Errorf("pretext: deepcluster: %w", err) }
	if cfg.Channels != bb.Spec.InC {
		return nil, fmt.Errorf("pretext: deepcluster: images have %d channels, backbone %s expects %d", cfg.Channels, bb.Spec.Arch, bb.Spec.InC)
	}
	dc, err := resolveDeepCluster(cfg, bb.Spec.FeatureDim)
	if err != nil {
		return nil, err
	}
	m := &dcModel{cfg: cfg, dc: dc, batch: batch, n: cfg.TrainImages, f: bb.Spec.FeatureDim, mode: bb.Mode}
	m.m = min(dc.Images, m.n)
	m.k = min(dc.K, m.m)
	m.p = min(dc.PCADim, m.f, m.m-1)
	m.every = dc.Every
	if m.every == 0 {
		m.every = max(1, m.m/batch)
	}
	s := cfg.InputSize
	m.labels = &ops.Labels{Y: make([]int, batch)}
	m.input = G.NewTensor(bb.Graph, tensor.Float32, 4, G.WithShape(batch, cfg.Channels, s, s), G.WithName("views"),
		G.WithValue(tensor.New(tensor.WithShape(batch, cfg.Channels, s, s), tensor.Of(tensor.Float32))))
	outs, err := bb.Forward(m.input, "features")
	if err != nil {
		return fail(err)
	}
	m.feats = outs["features"]
	if m.head, err = models.NewLinear(bb.Graph, "head.dc", m.f, m.k, heads, rng); err != nil {
		return fail(err)
	}
	if m.logits, err = m.head.Apply(m.feats); err != nil {
		return fail(err)
	}
	if m.loss, err = ops.SoftmaxCrossEntropy(m.logits, m.labels); err != nil {
		return fail(err)
	}
	m.assign = make([]int, m.n)
	for i := range m.assign {
		m.assign[i] = -1
	}
	m.order = make([]int, m.every*batch)
	m.mean, m.proj, m.cent = make([]float32, m.f), make([]float32, m.p*m.f), make([]float32, m.k*m.p)
	m.stats = make([]float64, len(dcStats))
	m.stats[1] = -1
	return m, nil
}

func (m *dcModel) Loss() *G.Node               { return m.loss }
func (m *dcModel) Learnables() G.Nodes         { return G.Nodes{m.head.W, m.head.B} }
func (m *dcModel) HeadWeights() models.Weights { return m.head.Weights() }

// clustered reports whether a re-clustering has happened.
func (m *dcModel) clustered() bool { return m.stats[0] > 0 }

// MakeBatch prepares one augmented view per image (Inputs[0], [B, C, S,
// S]); the targets are looked up by Batch.Index when the batch is loaded.
func (m *dcModel) MakeBatch(imgs []data.Image, labels []int, index []int, rng *rand.Rand) (*Batch, error) {
	cfg := m.cfg
	if len(index) != len(imgs) {
		return nil, fmt.Errorf("pretext: deepcluster: %d images with %d indices", len(imgs), len(index))
	}
	b := &Batch{Inputs: [][]float32{nil}, Index: append([]int(nil), index...)}
	for _, img := range imgs {
		if img.C != cfg.Channels {
			return nil, fmt.Errorf("pretext: deepcluster: image has %d channels, expected %d", img.C, cfg.Channels)
		}
		v, err := data.Normalize(augment(img, cfg, rng), cfg.Mean, cfg.Std)
		if err != nil {
			return nil, err
		}
		b.Inputs[0] = append(b.Inputs[0], v.Data...)
	}
	return b, nil
}

// Load copies the views into the graph. While training, the targets are
// the pseudo-labels of the images at Batch.Index; in inference mode
// (held-out images, which have none) they are zero and Metrics scores the
// head against the nearest centroids. Before the first clustering (the
// trainer times a step to fit a time budget) they are zero too.
func (m *dcModel) Load(b *Batch) error {
	if len(b.Inputs) != 1 {
		return fmt.Errorf("pretext: deepcluster: batch has %d inputs, expected 1", len(b.Inputs))
	}
	dst := m.input.Value().Data().([]float32)
	if len(b.Inputs[0]) != len(dst) {
		return fmt.Errorf("pretext: deepcluster: batch input has %d values, graph expects %d (shape %v)", len(b.Inputs[0]), len(dst), m.input.Shape())
	}
	copy(dst, b.Inputs[0])
	m.training = m.mode == nil || m.mode.Training
	if !m.training || !m.clustered() {
		clear(m.labels.Y)
		return nil
	}
	if len(b.Index) != len(m.labels.Y) {
		return fmt.Errorf("pretext: deepcluster: batch has %d indices, expected %d", len(b.Index), len(m.labels.Y))
	}
	for i, j := range b.Index {
		if j < 0 || j >= m.n {
			return fmt.Errorf("pretext: deepcluster: image index %d outside [0, %d)", j, m.n)
		}
		if m.assign[j] < 0 {
			return fmt.Errorf("pretext: deepcluster: training image %d has no pseudo-label (not in the last clustered subset)", j)
		}
		m.labels.Y[i] = m.assign[j]
	}
	return nil
}

// Metrics: see the DeepCluster comment.
func (m *dcModel) Metrics() map[string]float64 {
	out := map[string]float64{}
	if !m.clustered() {
		return out
	}
	if !m.training {
		out["pretext_acc"] = m.heldOutAccuracy()
		return out
	}
	out["pretext_acc"] = predAccuracy(m.labels)
	for i, name := range dcStats {
		if v := m.stats[i]; name != "dc_nmi" || v >= 0 {
			out[name] = v
		}
	}
	return out
}

// heldOutAccuracy is the fraction of the loaded views whose head
// prediction is the nearest centroid of their embedding.
func (m *dcModel) heldOutAccuracy() float64 {
	f, ok := m.feats.Value().Data().([]float32)
	if !ok || len(f) < m.batch*m.f || len(m.labels.Pred) != m.batch {
		return 0
	}
	z := make([]float64, m.p)
	hits := 0
	for i := 0; i < m.batch; i++ {
		m.embed(f[i*m.f:(i+1)*m.f], z)
		if nearest(z, m.cent, m.k) == m.labels.Pred[i] {
			hits++
		}
	}
	return float64(hits) / float64(m.batch)
}

// embed writes the L2-normalised whitened projection of one feature
// vector x [f] into z [p].
func (m *dcModel) embed(x []float32, z []float64) {
	var norm float64
	for c := 0; c < m.p; c++ {
		row := m.proj[c*m.f : (c+1)*m.f]
		var s float64
		for j, v := range x {
			s += float64(row[j]) * (float64(v) - float64(m.mean[j]))
		}
		z[c] = s
		norm += s * s
	}
	if norm > 0 {
		inv := 1 / math.Sqrt(norm)
		for c := range z {
			z[c] *= inv
		}
	}
}

// nearest is the index of the row of cent ([k, len(z)]) closest to z
// (ties to the lower index).
func nearest(z []float64, cent []float32, k int) int {
	p := len(z)
	best, bd := 0, math.Inf(1)
	for c := 0; c < k; c++ {
		var s float64
		for j, v := range z {
			t := v - float64(cent[c*p+j])
			s += t * t
		}
		if s < bd {
			best, bd = c, s
		}
	}
	return best
}

// ReassignEvery is DeepClusterConfig.Every, or one pass over the clustered
// images.
func (m *dcModel) ReassignEvery() int { return m.every }

// Reassign re-clusters the training images (see the DeepCluster comment):
// draw the subset, embed it with features, fit the PCA and whitening,
// run k-means, store the pseudo-labels, draw the images of the next Every
// steps uniformly over the clusters and reset the head. Everything random
// comes from rng, in that order. It returns the dcStats figures.
func (m *dcModel) Reassign(features func(index []int) ([]float32, error), rng *rand.Rand) (map[string]float64, error) {
	t0 := time.Now()
	idx := make([]int, m.m)
	if m.m == m.n {
		for i := range idx {
			idx[i] = i
		}
	} else {
		copy(idx, rng.Perm(m.n)[:m.m])
		sort.Ints(idx)
	}
	x, err := features(idx)
	if err != nil {
		return nil, fmt.Errorf("pretext: deepcluster: features: %w", err)
	}
	if len(x) != m.m*m.f {
		return nil, fmt.Errorf("pretext: deepcluster: features of %d images: %d values, expected %d x %d", m.m, len(x), m.m, m.f)
	}
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("pretext: deepcluster: feature %d of image %d is %v", i%m.f, idx[i/m.f], v)
		}
	}
	if err := m.fitEmbedding(x); err != nil {
		return nil, err
	}
	z := make([]float64, m.m*m.p)
	for i := 0; i < m.m; i++ {
		m.embed(x[i*m.f:(i+1)*m.f], z[i*m.p:(i+1)*m.p])
	}
	km, err := cluster.KMeans(z, m.m, m.p, cluster.KMeansConfig{K: m.k, Iters: m.dc.Iters, Init: m.dc.Init}, rng)
	if err != nil {
		return nil, fmt.Errorf("pretext: deepcluster: %w", err)
	}
	for i, v := range km.Centroids {
		m.cent[i] = float32(v)
	}
	// NMI against the previous clustering, on the images both labelled.
	nmi := -1.0
	var prev, next []int
	for i, j := range idx {
		if m.assign[j] >= 0 {
			prev, next = append(prev, m.assign[j]), append(next, km.Assign[i])
		}
	}
	if len(prev) >= 2 {
		if nmi, err = cluster.NMI(prev, next); err != nil {
			return nil, fmt.Errorf("pretext: deepcluster: %w", err)
		}
	}
	for i := range m.assign {
		m.assign[i] = -1
	}
	for i, j := range idx {
		m.assign[j] = km.Assign[i]
	}
	for i, p := range dcUniformSample(km.Assign, m.k, len(m.order), rng) {
		m.order[i] = idx[p]
	}
	m.resetHead(rng)
	nonEmpty := 0
	for _, s := range km.Sizes {
		if s > 0 {
			nonEmpty++
		}
	}
	vals := []float64{m.stats[0] + 1, nmi, km.Loss, float64(nonEmpty), float64(km.Splits), float64(m.m), time.Since(t0).Seconds()}
	out := map[string]float64{}
	for i, v := range vals {
		m.stats[i] = float64(float32(v)) // as a checkpoint restores it
		if dcStats[i] != "dc_nmi" || v >= 0 {
			out[dcStats[i]] = m.stats[i]
		}
	}
	return out, nil
}

// fitEmbedding fits the PCA of the features x [m, f] and folds the
// whitening into the projection, rounded to float32.
func (m *dcModel) fitEmbedding(x []float32) error {
	pca, err := cluster.FitPCA(x, m.m, m.f, m.p)
	if err != nil {
		return fmt.Errorf("pretext: deepcluster: %w", err)
	}
	// Whitening divides by the component's standard deviation; the floor
	// (1e-6 of the largest variance) keeps directions the subset does not
	// span from being blown up.
	floor := 1e-6*pca.Variance[0] + 1e-12
	for j, v := range pca.Mean {
		m.mean[j] = float32(v)
	}
	for c, comp := range pca.Components {
		s := 1 / math.Sqrt(pca.Variance[c]+floor)
		for j, v := range comp {
			m.proj[c*m.f+j] = float32(v * s)
		}
	}
	return nil
}

// resetHead draws new head weights N(0, 0.01) and zero biases.
func (m *dcModel) resetHead(rng *rand.Rand) {
	w := m.head.W.Value().Data().([]float32)
	for i := range w {
		w[i] = float32(0.01 * rng.NormFloat64())
	}
	clear(m.head.B.Value().Data().([]float32))
}

// dcUniformSample returns count positions into assign (the cluster of each
// clustered image, clusters in [0, k)) with the images spread uniformly
// over the non-empty clusters, as DeepCluster's sampler does: count is
// split as evenly as possible between the non-empty clusters (which ones
// get one more is drawn at random), each cluster's share walks through
// fresh random permutations of its members (no member comes back before
// all have come once), and the whole list is shuffled.
func dcUniformSample(assign []int, k, count int, rng *rand.Rand) []int {
	members := make([][]int, k)
	for i, c := range assign {
		members[c] = append(members[c], i)
	}
	var full []int
	for c, ms := range members {
		if len(ms) > 0 {
			full = append(full, c)
		}
	}
	out := make([]int, 0, count)
	if len(full) == 0 {
		return out
	}
	q, r := count/len(full), count%len(full)
	extra := make([]bool, len(full))
	for _, i := range rng.Perm(len(full))[:r] {
		extra[i] = true
	}
	for i, c := range full {
		share := q
		if extra[i] {
			share++
		}
		ms := members[c]
		for share > 0 {
			for _, j := range rng.Perm(len(ms))[:min(share, len(ms))] {
				out = append(out, ms[j])
			}
			share -= min(share, len(ms))
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// BatchIndices returns the dataset indices of the images of step: its
// place in the list drawn by the last Reassign.
func (m *dcModel) BatchIndices(step int) ([]int, error) {
	if !m.clustered() {
		return nil, fmt.Errorf("pretext: deepcluster: step %d: no clustering yet to sample images from", step)
	}
	pos := (step % m.every) * m.batch
	return append([]int(nil), m.order[pos:pos+m.batch]...), nil
}

// State returns, for checkpoints: "dc_assign" [TrainImages] (pseudo-label,
// -1 outside the clustered subset), "dc_order" [Every*batch] (the images
// of the steps until the next re-clustering), "dc_mean" [FeatureDim],
// "dc_proj" [PCADim, FeatureDim] and "dc_centroids" [K, PCADim] (the
// clustering, for held-out scores) and "dc_stats" (the figures of the last
// re-clustering, its first entry the number of clusterings so far).
func (m *dcModel) State() models.Weights {
	ints := func(v []int) models.Tensor {
		t := models.Tensor{Shape: []int{len(v)}, Data: make([]float32, len(v))}
		for i, x := range v {
			t.Data[i] = float32(x)
		}
		return t
	}
	st := models.Tensor{Shape: []int{len(m.stats)}, Data: make([]float32, len(m.stats))}
	for i, v := range m.stats {
		st.Data[i] = float32(v)
	}
	return models.Weights{
		"dc_assign":    ints(m.assign),
		"dc_order":     ints(m.order),
		"dc_mean":      {Shape: []int{m.f}, Data: append([]float32(nil), m.mean...)},
		"dc_proj":      {Shape: []int{m.p, m.f}, Data: append([]float32(nil), m.proj...)},
		"dc_centroids": {Shape: []int{m.k, m.p}, Data: append([]float32(nil), m.cent...)},
		"dc_stats":     st,
	}
}

// SetState restores what State saved, checking shapes and ranges.
func (m *dcModel) SetState(w models.Weights) error {
	get := func(name string, shape ...int) ([]float32, error) {
		t, ok := w[name]
		if !ok {
			return nil, fmt.Errorf("pretext: deepcluster: checkpoint state has no %s (has %v)", name, w.Names())
		}
		size := 1
		for _, s := range shape {
			size *= s
		}
		if len(t.Shape) != len(shape) || len(t.Data) != size {
			return nil, fmt.Errorf("pretext: deepcluster: checkpoint %s has shape %v, expected %v", name, t.Shape, shape)
		}
		for i, s := range shape {
			if t.Shape[i] != s {
				return nil, fmt.Errorf("pretext: deepcluster: checkpoint %s has shape %v, expected %v", name, t.Shape, shape)
			}
		}
		for i, v := range t.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("pretext: deepcluster: checkpoint %s[%d] is %v", name, i, v)
			}
		}
		return t.Data, nil
	}
	toInts := func(name string, src []float32, lo, hi int, dst []int) error {
		for i, v := range src {
			x := int(v)
			if float32(x) != v || x < lo || x >= hi {
				return fmt.Errorf("pretext: deepcluster: checkpoint %s[%d] = %v, expected an integer in [%d, %d)", name, i, v, lo, hi)
			}
			dst[i] = x
		}
		return nil
	}
	assign, err := get("dc_assign", m.n)
	if err != nil {
		return err
	}
	order, err := get("dc_order", len(m.order))
	if err != nil {
		return err
	}
	mean, err := get("dc_mean", m.f)
	if err != nil {
		return err
	}
	proj, err := get("dc_proj", m.p, m.f)
	if err != nil {
		return err
	}
	cent, err := get("dc_centroids", m.k, m.p)
	if err != nil {
		return err
	}
	stats, err := get("dc_stats", len(m.stats))
	if err != nil {
		return err
	}
	if err := toInts("dc_assign", assign, -1, m.k, m.assign); err != nil {
		return err
	}
	if err := toInts("dc_order", order, 0, m.n, m.order); err != nil {
		return err
	}
	copy(m.mean, mean)
	copy(m.proj, proj)
	copy(m.cent, cent)
	for i, v := range stats {
		m.stats[i] = float64(v)
	}
	return nil
}
