package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/runtime"
	"github.com/selfsup/selfsup/train"
)

func TestOpenBackboneNeedsOneSource(t *testing.T) {
	for _, src := range []BackboneSource{
		{},
		{Run: "r", Checkpoint: "c"},
		{Run: "r", RandomInit: true, Arch: "resnet20c"},
	} {
		if _, err := OpenBackbone(src, nil); err == nil || !strings.Contains(err.Error(), "exactly one of") {
			t.Errorf("%+v: error %v", src, err)
		}
	}
	if _, err := OpenBackbone(BackboneSource{RandomInit: true}, nil); err == nil || !strings.Contains(err.Error(), "--arch") {
		t.Errorf("random init without arch: %v", err)
	}
	b, err := OpenBackbone(BackboneSource{RandomInit: true, Arch: "resnet20c", Channels: 1, Seed: 3}, nil)
	if err != nil || b.Task != "random-init" || b.Spec.InC != 1 || len(b.Mean) != 1 {
		t.Fatalf("random init: %+v, %v", b, err)
	}
}

// TestPretrainExportEvaluateReport chains the stages the CLI chains:
// pretrain from a dataset spec, export the run, extract both splits with
// ONNX Runtime (and as raw pixels), and write a report with kNN curves.
func TestPretrainExportEvaluateReport(t *testing.T) {
	testenv.ORT(t)
	ctx := context.Background()
	dir := t.TempDir()
	ds := filepath.Join(dir, "toy.tar")
	testenv.ToyTar(t, ds, 32, 12, false)
	run := filepath.Join(dir, "run")
	cfg := train.DefaultConfig("rotation", "resnet20c")
	cfg.Epochs, cfg.Batch, cfg.ValImages, cfg.CheckpointEvery = 1, 8, 0, 2
	pre, err := Pretrain(ctx, PretrainConfig{Train: cfg, Data: ds, Out: run})
	if err != nil {
		t.Fatal(err)
	}
	if pre.Steps != 4 {
		t.Fatalf("pretrain: %+v, want 4 steps", pre)
	}
	model := filepath.Join(dir, "run.onnx")
	ck, err := ExportRun(run, model, nil)
	if err != nil || ck.Step != 4 {
		t.Fatalf("export run: step %v, %v", ck, err)
	}

	fs, err := LoadFeatureSets(FeaturesConfig{Model: model, Data: ds, Batch: 16})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs.TrainY) != 32 || len(fs.TestY) != 12 || fs.Dim != 64 || fs.Classes != 2 || len(fs.TrainX) != 32*64 {
		t.Fatalf("model features: %d/%d rows, dim %d, %d classes", len(fs.TrainY), len(fs.TestY), fs.Dim, fs.Classes)
	}
	px, err := LoadFeatureSets(FeaturesConfig{RawPixels: true, Data: ds})
	if err != nil || px.Dim != 3*16*16 || px.Source != "raw pixels" {
		t.Fatalf("raw pixels: %+v, %v", px, err)
	}
	if _, err := LoadFeatureSets(FeaturesConfig{Model: model, RawPixels: true, Data: ds}); err == nil {
		t.Error("model and raw pixels together accepted")
	}
	if _, err := LoadFeatureSets(FeaturesConfig{Model: model, Data: ds, Batch: 0}); err == nil {
		t.Error("batch 0 accepted")
	}

	res, err := Report(ctx, ReportConfig{Runs: []string{run}, Data: ds, Queries: 2, Neighbours: 3, Points: 10, KNNCurve: true,
		CurveTrain: 16, CurveTest: 8, Seed: 1, Batch: 16, Runtime: runtime.Options{}})
	if err != nil {
		t.Fatal(err)
	}
	if res.LinearTop1 == nil || len(res.Figures) != 4 {
		t.Fatalf("report: %+v", res)
	}
	// The initial weights and the kept checkpoints (steps 2 and 4).
	c := res.KNNCurve["run"]
	if len(c) != 3 || c[0][0] != 0 || c[2][0] != 4*8 {
		t.Fatalf("kNN curve %v", res.KNNCurve)
	}
	if _, err := os.Stat(res.Markdown); err != nil {
		t.Fatal(err)
	}
}
