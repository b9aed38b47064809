package eval

import (
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"time"
)

// FeatureMatrix is one layer's features: Data is [n, Dim], row-major.
type FeatureMatrix struct {
	Data []float32
	Dim  int
}

// Methods of a LayersResult.
const (
	MethodLinear = "linear"
	MethodKNN    = "knn"
)

// LayerResult is one layer of a per-layer evaluation. Accuracies are
// fractions in [0, 1].
type LayerResult struct {
	Layer string `json:"layer"`
	Dim   int    `json:"dim"`
	// ValTop1 is the top-1 accuracy on the validation split of the
	// training set, the only figure the layer is chosen by: for the linear
	// probe the best over its regularisation grid, for kNN that of the
	// rows held out, voted on by the other training rows.
	ValTop1 float64 `json:"val_top1"`
	Top1    float64 `json:"top1"` // test top-1
	Top5    float64 `json:"top5"` // test top-min(5, classes)
	TopK    int     `json:"top5_k"`
	// Probe is the layer's full linear-probe report (regularisation chosen,
	// validation accuracy per grid entry, ...); nil for kNN.
	Probe *ProbeResult `json:"probe,omitempty"`
	// KNN is the layer's full kNN report on the test set; nil for the
	// linear probe.
	KNN     *KNNResult `json:"knn,omitempty"`
	Seconds float64    `json:"seconds"` // wall time for this layer
}

// BestLayer is the layer a per-layer evaluation chose (by validation
// accuracy only) and its figures.
type BestLayer struct {
	Layer   string  `json:"layer"`
	Dim     int     `json:"dim"`
	Top1    float64 `json:"top1"` // test top-1 of the chosen layer
	Top5    float64 `json:"top5"`
	ValTop1 float64 `json:"val_top1"`
}

// LayersResult reports a per-layer evaluation (ProbeLayers, KNNLayers):
// every layer, in LayerOrder, and the chosen one.
type LayersResult struct {
	Method  string        `json:"method"` // MethodLinear or MethodKNN
	Layers  []LayerResult `json:"layers"`
	Best    BestLayer     `json:"best"`
	NTrain  int           `json:"n_train"`
	NVal    int           `json:"n_val"` // training rows held out to choose the layer
	NTest   int           `json:"n_test"`
	Classes int           `json:"classes"`
	Seconds float64       `json:"seconds"`
}

// LayerOrder returns the layer names in the order per-layer evaluations
// report and break ties in: sorted by name, except that "features" (a
// backbone's final, globally pooled output) comes last, so that pooled stages
// "stage1_pool".."stage4_pool" run from shallow to deep.
func LayerOrder(names []string) []string {
	out := slices.Clone(names)
	sort.Slice(out, func(i, j int) bool {
		fi, fj := out[i] == "features", out[j] == "features"
		if fi != fj {
			return fj
		}
		return out[i] < out[j]
	})
	return out
}

// ProbeLayers runs LinearProbe with cfg on each layer's features (train[name]
// and test[name], [len(trainY), Dim] and [len(testY), Dim]) and chooses the
// layer with the best validation top-1, as Goyal et al. 2019 (Section 3,
// "Scaling and Benchmarking Self-Supervised Visual Representation
// Learning") and VISSL probe every stage of a backbone and report the best.
// Each layer is standardised and its regularisation chosen on the same
// validation split (cfg.ValFraction of the training rows drawn with
// cfg.Seed: the split depends only on the row count), and its validation
// accuracy is that of its chosen regularisation. The test set never takes
// part in the choice: the test figures of every layer are reported, and
// those of the chosen one in Best. Ties go to the layer first in LayerOrder.
// progress, when not nil, is called after each layer.
func ProbeLayers(train, test map[string]FeatureMatrix, trainY, testY []int, k int, cfg ProbeConfig, progress func(LayerResult)) (*LayersResult, error) {
	start := time.Now()
	const what = "eval: linear probe per layer"
	names, err := checkLayers(what, train, test)
	if err != nil {
		return nil, err
	}
	res := &LayersResult{Method: MethodLinear, NTrain: len(trainY), NTest: len(testY), Classes: k}
	for _, name := range names {
		t0 := time.Now()
		tr, te := train[name], test[name]
		p, err := LinearProbe(tr.Data, trainY, te.Data, testY, tr.Dim, k, cfg)
		if err != nil {
			return nil, fmt.Errorf("%s: layer %q (dim %d): %w", what, name, tr.Dim, err)
		}
		r := LayerResult{Layer: name, Dim: tr.Dim, ValTop1: slices.Max(p.ValTop1), Top1: p.Top1, Top5: p.Top5, TopK: p.TopK, Probe: &p,
			Seconds: time.Since(t0).Seconds()}
		res.NVal = p.NVal
		res.Layers = append(res.Layers, r)
		if progress != nil {
			progress(r)
		}
	}
	res.choose()
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// KNNLayersConfig configures KNNLayers.
type KNNLayersConfig struct {
	// KNN is the classifier run on every layer.
	KNN KNNConfig `json:"knn"`
	// ValFraction is the share of the training rows held out to choose the
	// layer (default 0.1, as ProbeConfig); Seed draws them.
	ValFraction float64 `json:"val_fraction"`
	Seed        int64   `json:"seed"`
}

// KNNLayers runs KNN with cfg.KNN on each layer's features and chooses the
// layer by validation accuracy: cfg.ValFraction of the training rows
// (drawn with cfg.Seed, the same rows for every layer) are classified by
// the remaining training rows, and the layer with the best validation top-1
// wins (ties: first in LayerOrder). Each layer is then evaluated on the
// test set with all training rows; the test set never takes part in the
// choice. progress, when not nil, is called after each layer.
func KNNLayers(train, test map[string]FeatureMatrix, trainY, testY []int, k int, cfg KNNLayersConfig, progress func(LayerResult)) (*LayersResult, error) {
	start := time.Now()
	const what = "eval: knn per layer"
	names, err := checkLayers(what, train, test)
	if err != nil {
		return nil, err
	}
	if cfg.ValFraction == 0 {
		cfg.ValFraction = DefaultProbeConfig().ValFraction
	}
	if !(cfg.ValFraction > 0 && cfg.ValFraction < 1) {
		return nil, fmt.Errorf("%s: validation fraction %v, want a value in (0, 1)", what, cfg.ValFraction)
	}
	n := len(trainY)
	if n < 2 {
		return nil, fmt.Errorf("%s: %d training rows, want at least 2 to hold out a validation split", what, n)
	}
	fitIdx, valIdx := SplitTrainVal(n, cfg.ValFraction, rand.New(rand.NewSource(cfg.Seed)))
	res := &LayersResult{Method: MethodKNN, NTrain: n, NVal: len(valIdx), NTest: len(testY), Classes: k}
	for _, name := range names {
		t0 := time.Now()
		tr, te := train[name], test[name]
		if len(tr.Data) != n*tr.Dim {
			return nil, fmt.Errorf("%s: layer %q: training features have %d values, expected %d rows x %d = %d",
				what, name, len(tr.Data), n, tr.Dim, n*tr.Dim)
		}
		fitX, fitY := gatherRows(tr.Data, trainY, fitIdx, tr.Dim)
		valX, valY := gatherRows(tr.Data, trainY, valIdx, tr.Dim)
		v, err := KNN(fitX, fitY, valX, valY, tr.Dim, k, cfg.KNN)
		if err != nil {
			return nil, fmt.Errorf("%s: layer %q (dim %d): validation: %w", what, name, tr.Dim, err)
		}
		r, err := KNN(tr.Data, trainY, te.Data, testY, tr.Dim, k, cfg.KNN)
		if err != nil {
			return nil, fmt.Errorf("%s: layer %q (dim %d): %w", what, name, tr.Dim, err)
		}
		lr := LayerResult{Layer: name, Dim: tr.Dim, ValTop1: v.Top1, Top1: r.Top1, Top5: r.Top5, TopK: r.TopK, KNN: &r,
			Seconds: time.Since(t0).Seconds()}
		res.Layers = append(res.Layers, lr)
		if progress != nil {
			progress(lr)
		}
	}
	res.choose()
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// choose sets Best to the layer with the highest validation top-1 (the
// first of equals).
func (r *LayersResult) choose() {
	best := 0
	for i, l := range r.Layers {
		if l.ValTop1 > r.Layers[best].ValTop1 {
			best = i
		}
	}
	b := r.Layers[best]
	r.Best = BestLayer{Layer: b.Layer, Dim: b.Dim, Top1: b.Top1, Top5: b.Top5, ValTop1: b.ValTop1}
}

// checkLayers checks that train and test hold the same, non-empty set of
// layers with matching positive dimensions, and returns their names in
// LayerOrder. Row counts are checked by the probes themselves.
func checkLayers(what string, train, test map[string]FeatureMatrix) ([]string, error) {
	if len(train) == 0 {
		return nil, fmt.Errorf("%s: no layers", what)
	}
	var names []string
	for name, tr := range train {
		te, ok := test[name]
		if !ok {
			return nil, fmt.Errorf("%s: layer %q has training features but no test features", what, name)
		}
		if tr.Dim < 1 || te.Dim != tr.Dim {
			return nil, fmt.Errorf("%s: layer %q: training features have dimension %d, test features %d", what, name, tr.Dim, te.Dim)
		}
		names = append(names, name)
	}
	for name := range test {
		if _, ok := train[name]; !ok {
			return nil, fmt.Errorf("%s: layer %q has test features but no training features", what, name)
		}
	}
	return LayerOrder(names), nil
}

// gatherRows returns rows idx of x ([*, d]) and their labels.
func gatherRows(x []float32, y []int, idx []int, d int) ([]float32, []int) {
	gx := make([]float32, len(idx)*d)
	gy := make([]int, len(idx))
	for i, r := range idx {
		copy(gx[i*d:(i+1)*d], x[r*d:(r+1)*d])
		gy[i] = y[r]
	}
	return gx, gy
}
