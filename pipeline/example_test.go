package pipeline_test

import (
	"context"
	"fmt"
	"image"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/pipeline"
	"github.com/selfsup/selfsup/runtime"
)

// A backbone (here an untrained one; BackboneFromCheckpoint or
// OpenBackbone give a trained one) goes to ONNX in one call, and ONNX
// Runtime serves its features.
func ExampleBackbone_Export() {
	b, err := pipeline.RandomBackbone("resnet20c", 3, 1)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "pipeline-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "random-init.onnx")
	if err := b.Export(path, export.DefaultOptions()); err != nil {
		log.Fatal(err)
	}

	sess, err := runtime.Open(path, runtime.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	feats, err := sess.Features(image.NewRGBA(image.Rect(0, 0, 32, 32)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(b.Spec.Arch, b.Task, len(feats[0]), "features")
	// Output: resnet20c random-init 64 features
}

// Baselines compares pretrained runs with a supervised run of the same
// budget, a random-init backbone and raw pixels, by one protocol (linear
// probe, kNN, optionally low-shot), and writes baselines.md and
// baselines.json; the demo, ablations and reports are called the same way.
func ExampleBaselines() {
	res, err := pipeline.Baselines(context.Background(), pipeline.BaselinesConfig{
		Data: "cifar10-jpg.tar", Arch: "resnet20c", Budget: 2 * time.Minute, Out: "baselines-out",
		Runs: []string{"runs/rotation"}, TrainBatch: 64, LR: 0.05, CheckpointEvery: 200, Seed: 1,
		Batch: 64, Log: os.Stderr,
	})
	if err != nil {
		log.Fatal(err)
	}
	pipeline.WriteBaselinesTable(os.Stdout, res)
}
