package pretext_test

import (
	"bufio"
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/pretext"
	"github.com/selfsup/selfsup/train"
)

// dcShapes is an unlabelled set of n noisy RGB images of three kinds
// (image i is kind i%3): a bright square at the top left, a bright square
// at the bottom right, horizontal stripes.
func dcShapes(n, size int, seed int64) *memSet {
	rng := rand.New(rand.NewSource(seed))
	s := &memSet{}
	for i := 0; i < n; i++ {
		img := data.Image{C: 3, H: size, W: size, Pix: make([]uint8, 3*size*size)}
		for c := 0; c < 3; c++ {
			for y := 0; y < size; y++ {
				for x := 0; x < size; x++ {
					v := 40 + rng.Intn(40)
					switch i % 3 {
					case 0:
						if y < size/2 && x < size/2 {
							v += 150
						}
					case 1:
						if y >= size/2 && x >= size/2 {
							v += 150
						}
					case 2:
						if (y/2)%2 == 0 {
							v += 150
						}
					}
					img.Pix[(c*size+y)*size+x] = uint8(v)
				}
			}
		}
		s.imgs = append(s.imgs, img)
	}
	return s
}

func dcConfig(steps int) train.Config {
	cfg := train.DefaultConfig("deepcluster", "resnet20c")
	cfg.Batch, cfg.Steps, cfg.CheckpointEvery, cfg.LogEvery, cfg.Seed, cfg.WarmupSteps = 8, steps, 4, 1, 2, 1
	cfg.Pretext = pretext.DefaultConfig(3, 16)
	// Three kinds of image: a 2-dimensional whitened embedding holds the
	// structure; more dimensions would whiten noise up to its size.
	cfg.Pretext.DeepCluster = &pretext.DeepClusterConfig{K: 3, Every: 8, PCADim: 2}
	return cfg
}

func readMetrics(t *testing.T, dir string) []map[string]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec map[string]float64
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

// train.Run re-clusters before steps 0, 8 and 16; every period starts from
// a reset head (loss ln 3 at its first step) and the loss falls below that
// within it; the logged figures (NMI between consecutive clusterings,
// agreement with the pseudo-labels, held-out agreement) are in range.
func TestDeepClusterTrainsAndReclusters(t *testing.T) {
	dir := t.TempDir()
	res, err := train.Run(dcConfig(24), dcShapes(48, 16, 1), dcShapes(16, 16, 2), dir, train.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 24 || res.ValPretext < 0 || res.ValPretext > 1 {
		t.Fatalf("steps %d, held-out pretext accuracy %v", res.Steps, res.ValPretext)
	}
	var loss []float64
	clusterings := map[int]float64{}
	for _, rec := range readMetrics(t, dir) {
		l, ok := rec["loss"]
		if !ok {
			continue
		}
		step := int(rec["step"]) - 1 // the step that ran
		loss = append(loss, l)
		if step != len(loss)-1 {
			t.Fatalf("metrics out of order at step %d", step)
		}
		clusterings[step] = rec["dc_clusterings"]
		if acc := rec["pretext_acc"]; acc < 0 || acc > 1 {
			t.Fatalf("step %d: pretext_acc %v", step, acc)
		}
		nmi, ok := rec["dc_nmi"]
		if ok != (step >= 8) || nmi < 0 || nmi > 1 {
			t.Fatalf("step %d: dc_nmi %v (logged %v)", step, nmi, ok)
		}
		if rec["dc_clusters"] < 1 || rec["dc_clusters"] > 3 || rec["dc_images"] != 48 {
			t.Fatalf("step %d: %v", step, rec)
		}
	}
	if len(loss) != 24 {
		t.Fatalf("%d loss lines", len(loss))
	}
	for _, p := range []int{0, 8, 16} {
		if want := float64(p/8 + 1); clusterings[p] != want || clusterings[p+7] != want {
			t.Fatalf("steps %d-%d ran after %v and %v clusterings, expected %v", p, p+7, clusterings[p], clusterings[p+7], want)
		}
		if math.Abs(loss[p]-math.Log(3)) > 0.15 {
			t.Fatalf("step %d: loss %v right after the head reset, expected about ln 3 = %.4f", p, loss[p], math.Log(3))
		}
		low := math.Inf(1)
		for _, l := range loss[p+1 : p+8] {
			low = math.Min(low, l)
		}
		if low > loss[p]-0.2 {
			t.Fatalf("steps %d-%d: loss %v never fell well below its start", p, p+7, loss[p:p+8])
		}
	}
}

// A run stopped at a re-clustering point (step 8) or after one (step 12)
// and resumed ends bit-identical to an uninterrupted run: weights, heads,
// momentum and the clustering state.
func TestDeepClusterResumeIsBitIdentical(t *testing.T) {
	ds := dcShapes(40, 16, 3)
	full := t.TempDir()
	a, err := train.Run(dcConfig(20), ds, nil, full, train.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := train.LoadCheckpoint(a.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	if ca.State["dc_stats"].Data[0] != 3 {
		t.Fatalf("uninterrupted run: %v clusterings, expected 3", ca.State["dc_stats"].Data[0])
	}
	for _, stop := range []int{8, 12} {
		part := t.TempDir()
		if _, err := train.Run(dcConfig(20), ds, nil, part, train.Options{StopAfter: stop}); err != nil {
			t.Fatal(err)
		}
		b, err := train.Run(dcConfig(20), ds, nil, part, train.Options{Resume: true})
		if err != nil {
			t.Fatal(err)
		}
		cb, err := train.LoadCheckpoint(b.Checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		if !b.Resumed || cb.Step != 20 {
			t.Fatalf("stop at %d: resumed %v at step %d", stop, b.Resumed, cb.Step)
		}
		for _, g := range []struct {
			name string
			a, b models.Weights
		}{{"backbone", ca.Backbone, cb.Backbone}, {"heads", ca.Heads, cb.Heads}, {"velocity", ca.Velocity, cb.Velocity}, {"state", ca.State, cb.State}} {
			if len(g.a) != len(g.b) {
				t.Fatalf("stop at %d: %s has %d tensors, uninterrupted %d", stop, g.name, len(g.b), len(g.a))
			}
			for k, v := range g.a {
				u := g.b[k].Data
				if k == "dc_stats" {
					v.Data, u = v.Data[:6], u[:6] // the last is the time the clustering took
				}
				if len(u) != len(v.Data) {
					t.Fatalf("stop at %d: %s %s has %d values, expected %d", stop, g.name, k, len(u), len(v.Data))
				}
				for i := range v.Data {
					if math.Float32bits(u[i]) != math.Float32bits(v.Data[i]) {
						t.Fatalf("stop at %d: %s %s[%d]: resumed %v, uninterrupted %v", stop, g.name, k, i, u[i], v.Data[i])
					}
				}
			}
		}
	}
}
