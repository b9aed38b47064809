package train

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
)

// The monitor's features are the backbone's inference-mode features of
// the resized, normalised images: equal to the float64 reference.
func TestMonitorFeaturesMatchReference(t *testing.T) {
	cfg := tinyConfig("rotation")
	spec, _ := models.New("resnet20c", 1)
	ds := blobs(3, 1, 16, 2) // 16 px images, resized to the 12 px input
	res, err := Run(cfg, blobs(16, 1, 12, 1), nil, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ck, _ := LoadCheckpoint(res.Checkpoint)
	got, err := backboneFeatures(spec, ck.Backbone, cfg.Pretext, ds)
	if err != nil {
		t.Fatal(err)
	}
	var x []float32
	for i := 0; i < ds.Len(); i++ {
		img, _ := ds.Image(i)
		tt, _ := data.Normalize(data.Resize(data.ToTensor(img), 12, 12), cfg.Pretext.Mean, cfg.Pretext.Std)
		x = append(x, tt.Data...)
	}
	ref, err := models.Reference(spec, ck.Backbone, x, 3, 12, 12, []string{"features"})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range ref["features"].Data {
		if math.Abs(float64(v-got[i])) > 1e-4*math.Max(1, math.Abs(float64(v))) {
			t.Fatalf("feature %d: monitor %v, reference %v", i, got[i], v)
		}
	}
}

// With labelled held-out images the trainer logs kNN accuracy during the
// run and at the end.
func TestKNNMonitorLogged(t *testing.T) {
	cfg := tinyConfig("rotation")
	cfg.KNNEvery = 2
	dir := t.TempDir()
	res, err := Run(cfg, blobs(32, 1, 12, 1), blobs(12, 1, 12, 2), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.KNNTop1 < 0 || res.KNNTop1 > 1 {
		t.Fatalf("kNN top-1 %v", res.KNNTop1)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if n := bytes.Count(b, []byte(`"knn_top1"`)); n != 3 { // steps 2, 4 and the end (6)
		t.Fatalf("%d kNN lines in metrics.jsonl, expected 3:\n%s", n, b)
	}
	cfg.KNNEvery = -1
	dir = t.TempDir()
	if _, err := Run(cfg, blobs(32, 1, 12, 1), blobs(12, 1, 12, 2), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if bytes.Contains(b, []byte("knn_top1")) {
		t.Fatal("kNN logged with KNNEvery -1")
	}
}
