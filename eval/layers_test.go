package eval

import (
	"encoding/json"
	"math/rand"
	"slices"
	"strings"
	"testing"
)

// clusters returns n rows of d features, row i = sep * mean[y[i]] + N(0, 1)
// noise, with mean[c] ~ N(0, I) drawn from meanRng (so two calls with
// equally seeded meanRng share the class means).
func clusters(meanRng, rng *rand.Rand, y []int, k, d int, sep float64) FeatureMatrix {
	means := make([]float64, k*d)
	for i := range means {
		means[i] = meanRng.NormFloat64()
	}
	x := make([]float32, len(y)*d)
	for i, c := range y {
		for j := 0; j < d; j++ {
			x[i*d+j] = float32(sep*means[c*d+j] + rng.NormFloat64())
		}
	}
	return FeatureMatrix{Data: x, Dim: d}
}

func labels(rng *rand.Rand, n, k int) []int {
	y := make([]int, n)
	for i := range y {
		y[i] = rng.Intn(k)
	}
	return y
}

func noiseLayer(rng *rand.Rand, n, d int) FeatureMatrix {
	return FeatureMatrix{Data: randSlice(rng, n*d), Dim: d}
}

// layerProblem has one informative layer ("stage2_pool": class clusters)
// and two of pure noise, for 500 training and 300 test rows of 4 classes.
func layerProblem() (train, test map[string]FeatureMatrix, trainY, testY []int) {
	rng := rand.New(rand.NewSource(21))
	const nTrain, nTest, k = 500, 300, 4
	trainY, testY = labels(rng, nTrain, k), labels(rng, nTest, k)
	train = map[string]FeatureMatrix{
		"stage1_pool": noiseLayer(rng, nTrain, 24),
		"stage2_pool": clusters(rand.New(rand.NewSource(5)), rng, trainY, k, 16, 1.5),
		"features":    noiseLayer(rng, nTrain, 8),
	}
	test = map[string]FeatureMatrix{
		"stage1_pool": noiseLayer(rng, nTest, 24),
		"stage2_pool": clusters(rand.New(rand.NewSource(5)), rng, testY, k, 16, 1.5),
		"features":    noiseLayer(rng, nTest, 8),
	}
	return train, test, trainY, testY
}

// valTestConflict has two layers where choosing by the test set and
// choosing by validation disagree: "stage1_pool" is strongly informative
// on the training rows (so on the validation split) but pure noise on the
// test rows; "stage2_pool" is weakly informative on the training rows and
// strongly on the test rows (same class means), so its test accuracy is
// far higher.
func valTestConflict() (train, test map[string]FeatureMatrix, trainY, testY []int) {
	rng := rand.New(rand.NewSource(22))
	const nTrain, nTest, k = 500, 300, 4
	trainY, testY = labels(rng, nTrain, k), labels(rng, nTest, k)
	train = map[string]FeatureMatrix{
		"stage1_pool": clusters(rand.New(rand.NewSource(6)), rng, trainY, k, 16, 1.5),
		"stage2_pool": clusters(rand.New(rand.NewSource(7)), rng, trainY, k, 16, 0.35),
	}
	test = map[string]FeatureMatrix{
		"stage1_pool": noiseLayer(rng, nTest, 16),
		"stage2_pool": clusters(rand.New(rand.NewSource(7)), rng, testY, k, 16, 1.5),
	}
	return train, test, trainY, testY
}

func layerByName(t *testing.T, r *LayersResult, name string) LayerResult {
	t.Helper()
	for _, l := range r.Layers {
		if l.Layer == name {
			return l
		}
	}
	t.Fatalf("no layer %q in %+v", name, r.Layers)
	return LayerResult{}
}

type layersFunc func(train, test map[string]FeatureMatrix, trainY, testY []int, k int) (*LayersResult, error)

func layerMethods() map[string]layersFunc {
	return map[string]layersFunc{
		"linear": func(train, test map[string]FeatureMatrix, trainY, testY []int, k int) (*LayersResult, error) {
			return ProbeLayers(train, test, trainY, testY, k, ProbeConfig{MaxIter: 100, Seed: 3, Workers: 2}, nil)
		},
		"knn": func(train, test map[string]FeatureMatrix, trainY, testY []int, k int) (*LayersResult, error) {
			return KNNLayers(train, test, trainY, testY, k, KNNLayersConfig{KNN: KNNConfig{K: 20, Workers: 2}, Seed: 3}, nil)
		},
	}
}

// TestLayersChooseInformative: of three layers only one carries the
// labels; it is chosen, its figures are reported in Best, and layers are
// listed shallow to deep with "features" last.
func TestLayersChooseInformative(t *testing.T) {
	train, test, trainY, testY := layerProblem()
	for method, run := range layerMethods() {
		t.Run(method, func(t *testing.T) {
			var seen []string
			r, err := run(train, test, trainY, testY, 4)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range r.Layers {
				seen = append(seen, l.Layer)
				t.Logf("%s: dim %d, val top-1 %.3f, test top-1 %.3f", l.Layer, l.Dim, l.ValTop1, l.Top1)
			}
			if strings.Join(seen, ",") != "stage1_pool,stage2_pool,features" {
				t.Errorf("layer order %v, expected stage1_pool, stage2_pool, features", seen)
			}
			if r.Method != method || r.Best.Layer != "stage2_pool" || r.Best.Dim != 16 {
				t.Fatalf("method %q chose %+v, expected stage2_pool (dim 16)", r.Method, r.Best)
			}
			info := layerByName(t, r, "stage2_pool")
			if r.Best.Top1 != info.Top1 || r.Best.ValTop1 != info.ValTop1 || r.Best.Top5 != info.Top5 {
				t.Errorf("best %+v does not repeat the layer's figures %+v", r.Best, info)
			}
			if info.ValTop1 < 0.8 || info.Top1 < 0.8 {
				t.Errorf("informative layer: val %.3f, test %.3f, expected both >= 0.8", info.ValTop1, info.Top1)
			}
			for _, name := range []string{"stage1_pool", "features"} {
				if l := layerByName(t, r, name); l.Top1 > 0.45 {
					t.Errorf("noise layer %s: test top-1 %.3f, expected near chance (0.25)", name, l.Top1)
				}
			}
			if r.NTrain != 500 || r.NTest != 300 || r.NVal != 50 || r.Classes != 4 {
				t.Errorf("counts: train %d, val %d, test %d, classes %d", r.NTrain, r.NVal, r.NTest, r.Classes)
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			var back struct {
				Layers []map[string]any `json:"layers"`
				Best   map[string]any   `json:"best"`
			}
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back.Best["layer"] != "stage2_pool" || back.Best["top1"] == nil || back.Best["val_top1"] == nil || len(back.Layers) != 3 ||
				back.Layers[0]["layer"] == nil || back.Layers[0]["dim"] == nil || back.Layers[0]["val_top1"] == nil || back.Layers[0]["top5"] == nil {
				t.Errorf("JSON %s", b)
			}
		})
	}
}

// TestLayersChooseByValidation: on valTestConflict the test set would pick
// stage2_pool, validation picks stage1_pool; stage1_pool must win, and
// replacing the test labels or features changes neither the choice nor any
// validation accuracy.
func TestLayersChooseByValidation(t *testing.T) {
	train, test, trainY, testY := valTestConflict()
	for method, run := range layerMethods() {
		t.Run(method, func(t *testing.T) {
			r, err := run(train, test, trainY, testY, 4)
			if err != nil {
				t.Fatal(err)
			}
			a, b := layerByName(t, r, "stage1_pool"), layerByName(t, r, "stage2_pool")
			t.Logf("stage1_pool: val %.3f test %.3f; stage2_pool: val %.3f test %.3f", a.ValTop1, a.Top1, b.ValTop1, b.Top1)
			if !(b.Top1 > a.Top1+0.2) || !(a.ValTop1 > b.ValTop1+0.1) {
				t.Fatalf("the problem does not separate validation from test: stage1_pool val %.3f test %.3f, stage2_pool val %.3f test %.3f",
					a.ValTop1, a.Top1, b.ValTop1, b.Top1)
			}
			if r.Best.Layer != "stage1_pool" || r.Best.Top1 != a.Top1 {
				t.Fatalf("chose %+v; validation says stage1_pool", r.Best)
			}
			rng := rand.New(rand.NewSource(9))
			permY := slices.Clone(testY)
			rng.Shuffle(len(permY), func(i, j int) { permY[i], permY[j] = permY[j], permY[i] })
			other := map[string]FeatureMatrix{"stage1_pool": test["stage2_pool"], "stage2_pool": test["stage1_pool"]}
			for name, tc := range map[string]struct {
				x map[string]FeatureMatrix
				y []int
			}{"permuted test labels": {test, permY}, "swapped test features": {other, testY}} {
				got, err := run(train, tc.x, trainY, tc.y, 4)
				if err != nil {
					t.Fatal(err)
				}
				if got.Best.Layer != r.Best.Layer || got.Best.ValTop1 != r.Best.ValTop1 {
					t.Errorf("%s: chose %+v, with the real test set %+v", name, got.Best, r.Best)
				}
				for i := range got.Layers {
					if got.Layers[i].ValTop1 != r.Layers[i].ValTop1 {
						t.Errorf("%s: layer %s validation top-1 %v, with the real test set %v", name, got.Layers[i].Layer, got.Layers[i].ValTop1, r.Layers[i].ValTop1)
					}
				}
			}
		})
	}
}

func TestLayersErrors(t *testing.T) {
	train, test, trainY, testY := layerProblem()
	short := map[string]FeatureMatrix{"stage2_pool": {Data: train["stage2_pool"].Data[:16*10], Dim: 16}}
	for _, c := range []struct {
		name        string
		train, test map[string]FeatureMatrix
		want        string
	}{
		{"no layers", map[string]FeatureMatrix{}, map[string]FeatureMatrix{}, "no layers"},
		{"missing test", train, map[string]FeatureMatrix{"stage2_pool": test["stage2_pool"]}, "has training features but no test features"},
		{"extra test", map[string]FeatureMatrix{"stage2_pool": train["stage2_pool"]}, test, "has test features but no training features"},
		{"dim mismatch", map[string]FeatureMatrix{"x": {Data: make([]float32, 500*3), Dim: 3}}, map[string]FeatureMatrix{"x": {Data: make([]float32, 300*4), Dim: 4}}, `layer "x": training features have dimension 3, test features 4`},
		{"rows", short, map[string]FeatureMatrix{"stage2_pool": test["stage2_pool"]}, `layer "stage2_pool"`},
	} {
		for method, run := range layerMethods() {
			_, err := run(c.train, c.test, trainY, testY, 4)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s/%s: error %v, expected one containing %q", c.name, method, err, c.want)
			}
		}
	}
}
