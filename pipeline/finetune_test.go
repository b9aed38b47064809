package pipeline

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/train"
)

// TestFinetuneStartsFrom checks where eval lowshot --finetune starts: the
// pretraining run's backbone, or with Scratch the random init its seed
// draws. A learning rate of 1e-30 leaves every weight where it started
// (each update is below a float32 ulp), so the fine-tuned checkpoint's
// convolutions show the starting point.
func TestFinetuneStartsFrom(t *testing.T) {
	dir := t.TempDir()
	ds := filepath.Join(dir, "toy.tar")
	testenv.ToyTar(t, ds, 32, 12, false)
	run := filepath.Join(dir, "run")
	cfg := train.DefaultConfig("rotation", "resnet20c")
	cfg.Epochs, cfg.Batch, cfg.ValImages, cfg.CheckpointEvery, cfg.Seed = 1, 8, 0, 0, 7
	if _, err := Pretrain(context.Background(), PretrainConfig{Train: cfg, Data: ds, Out: run}); err != nil {
		t.Fatal(err)
	}
	pre, _, err := LatestCheckpoint(run, nil)
	if err != nil {
		t.Fatal(err)
	}
	const seed = 3
	rnd, err := RandomBackbone("resnet20c", 3, seed)
	if err != nil {
		t.Fatal(err)
	}
	for _, scratch := range []bool{false, true} {
		work := filepath.Join(dir, "work", map[bool]string{false: "pre", true: "scratch"}[scratch])
		res, err := FinetuneLowShot(context.Background(), FinetuneConfig{Run: run, Data: ds, Fractions: []float64{1}, Seeds: []int64{seed},
			Epochs: 1, LR: 1e-30, Batch: 8, Work: work, Scratch: scratch})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{false: "finetune", true: "finetune-scratch"}[scratch]; res.Classifier != want {
			t.Errorf("classifier %q, want %q", res.Classifier, want)
		}
		ft, _, err := LatestCheckpoint(filepath.Join(work, "frac1-seed3"), nil)
		if err != nil {
			t.Fatal(err)
		}
		convs := 0
		for _, name := range ft.Backbone.Names() {
			if !isConv(ft.Backbone[name]) {
				continue
			}
			convs++
			got := ft.Backbone[name].Data
			if eqPre := slices.Equal(got, pre.Backbone[name].Data); eqPre == scratch {
				t.Errorf("scratch=%v: %s equal to the pretrained weights: %v", scratch, name, eqPre)
			}
			if eqRnd := slices.Equal(got, rnd.Weights[name].Data); eqRnd != scratch {
				t.Errorf("scratch=%v: %s equal to seed %d's random init: %v", scratch, name, seed, eqRnd)
			}
		}
		if convs == 0 {
			t.Fatal("no convolution weights in the fine-tuned backbone")
		}
	}
}

// isConv reports whether a weight is a 4-d convolution kernel.
func isConv(w models.Tensor) bool { return len(w.Shape) == 4 }
