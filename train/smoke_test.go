package train

import (
	"math"
	"testing"

	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/pretext"
)

// Every registered task trains every registered architecture: one step at
// batch 2 on 32-pixel images, with a finite loss and a checkpoint that
// holds a valid backbone. Under -short only resnet20c for every task and
// every architecture for rotation.
func TestSmokeEveryTaskAndArchitecture(t *testing.T) {
	ds := blobs(8, 3, 32, 9)
	for _, task := range pretext.Names() {
		for _, arch := range models.Names() {
			if testing.Short() && arch != "resnet20c" && task != "rotation" {
				continue
			}
			t.Run(task+"/"+arch, func(t *testing.T) {
				cfg := DefaultConfig(task, arch)
				cfg.Batch, cfg.Steps, cfg.CheckpointEvery, cfg.LogEvery, cfg.ValImages = 2, 1, 0, 1, 0
				cfg.Pretext = pretext.DefaultConfig(3, 32)
				cfg.Pretext.NumClasses = 2
				cfg.Pretext.Semi = &pretext.SemiConfig{Labelled: []int{1, 2}, UnsupWeight: 1} // semi-* only
				res, err := Run(cfg, ds, nil, t.TempDir(), Options{})
				if err != nil {
					t.Fatal(err)
				}
				if math.IsNaN(res.FinalLoss) || math.IsInf(res.FinalLoss, 0) {
					t.Fatalf("loss %v", res.FinalLoss)
				}
				ck, err := LoadCheckpoint(res.Checkpoint)
				if err != nil {
					t.Fatal(err)
				}
				spec, _ := models.New(ck.Config.Arch, ck.Config.Pretext.InputChannels()) // a task may train a form of arch (splitbrain: arch-split)
				if err := spec.Validate(ck.Backbone); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}
