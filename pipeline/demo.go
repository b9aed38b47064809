package pipeline

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/runtime"
	"github.com/selfsup/selfsup/train"
)

// DemoConfig is `selfsup demo`: the main job end to end.
type DemoConfig struct {
	// Data is labelled images with train/test splits (default:
	// fashion-mnist, else mnist).
	Data string
	// Budget is the pretraining wall-time budget.
	Budget time.Duration
	// Out is the output folder; a fresh run-<time> folder is made inside.
	Out        string
	Arch, Task string
	Batch      int
	LR         float64
	// ProbeTrain is the training images of the linear probe (a
	// class-balanced subset; 0: all).
	ProbeTrain int
	Seed       int64
	Log        io.Writer
}

// DefaultDemoConfig is the demo's defaults (the CLI's flag defaults).
func DefaultDemoConfig() DemoConfig {
	return DemoConfig{Budget: 5 * time.Minute, Out: "demo-out", Arch: "resnet20c", Task: "rotation", Batch: 32, LR: 0.1, ProbeTrain: 10000, Seed: 1}
}

// ProbeRow is one linear-probe line of the demo's table.
type ProbeRow struct {
	Top1 float64 `json:"top1"`
	Top5 float64 `json:"top5"`
	Dim  int     `json:"dim"`
	L2   float64 `json:"l2"`
}

// DemoResult is what `selfsup demo --json` prints.
type DemoResult struct {
	Data        string        `json:"data"`
	Arch        string        `json:"arch"`
	Task        string        `json:"task"`
	Run         string        `json:"run"`
	BudgetSec   float64       `json:"budget_seconds"`
	Pretrain    *train.Result `json:"pretrain"`
	Pretrained  ProbeRow      `json:"pretrained"`
	RandomInit  ProbeRow      `json:"random_init"`
	RawPixels   ProbeRow      `json:"raw_pixels"`
	ProbeTrain  int           `json:"probe_train_images"`
	TestImages  int           `json:"test_images"`
	WallSeconds float64       `json:"wall_seconds"`
}

// Demo pretrains o.Task for the budget, exports the pretrained and a
// random-init backbone to ONNX, extracts features with ONNX Runtime and
// fits linear probes on them and on raw pixels.
func Demo(ctx context.Context, o DemoConfig) (*DemoResult, error) {
	t0 := time.Now()
	log := logTo(o.Log)
	if o.Data == "" {
		o.Data = "fashion-mnist"
		if _, err := data.FindFashionMNIST(); err != nil {
			fmt.Fprintf(log, "%v; using mnist\n", err)
			o.Data = "mnist"
		}
	}
	dir := filepath.Join(o.Out, "run-"+time.Now().UTC().Format("20060102-150405"))
	fmt.Fprintf(log, "== 1/4 pretraining %s on %s (%s, budget %s) into %s\n", o.Task, o.Data, o.Arch, o.Budget, dir)
	cfg := train.DefaultConfig(o.Task, o.Arch)
	cfg.BudgetSeconds, cfg.Batch, cfg.LR, cfg.Seed = o.Budget.Seconds(), o.Batch, o.LR, o.Seed
	cfg.CheckpointEvery = 100
	pre, err := Pretrain(ctx, PretrainConfig{Train: cfg, Data: o.Data, Split: "train", Out: dir, Log: log})
	if err != nil {
		return nil, err
	}

	fmt.Fprintf(log, "== 2/4 exporting the pretrained and a random-init backbone to ONNX\n")
	ck, err := train.LoadCheckpoint(pre.Checkpoint)
	if err != nil {
		return nil, err
	}
	src, err := BackboneFromCheckpoint(ck)
	if err != nil {
		return nil, err
	}
	pretrainedPath := filepath.Join(dir, o.Task+".onnx")
	if err := src.Export(pretrainedPath, export.DefaultOptions()); err != nil {
		return nil, err
	}
	rnd, err := RandomBackbone(o.Arch, ck.Config.Pretext.Channels, o.Seed+1)
	if err != nil {
		return nil, err
	}
	rnd.Size, rnd.Mean, rnd.Std = src.Size, src.Mean, src.Std
	randomPath := filepath.Join(dir, "random-init.onnx")
	if err := rnd.Export(randomPath, export.DefaultOptions()); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	fmt.Fprintf(log, "== 3/4 extracting features with ONNX Runtime\n")
	trainDS, err := data.Load(o.Data, "train", data.OpenOptions{Log: log})
	if err != nil {
		return nil, err
	}
	if o.ProbeTrain > 0 && o.ProbeTrain < trainDS.Len() {
		trainDS = data.Subset(trainDS, data.BalancedSubset(trainDS, o.ProbeTrain, o.Seed))
	}
	testDS, err := data.Load(o.Data, "test", data.OpenOptions{Log: log})
	if err != nil {
		return nil, err
	}
	res := &DemoResult{Data: o.Data, Arch: o.Arch, Task: o.Task, Run: dir, BudgetSec: o.Budget.Seconds(), Pretrain: pre,
		ProbeTrain: trainDS.Len(), TestImages: testDS.Len()}

	fmt.Fprintf(log, "== 4/4 linear probes (L2 chosen on a validation split of the probe's training images)\n")
	for _, m := range []struct {
		path string
		row  *ProbeRow
	}{{pretrainedPath, &res.Pretrained}, {randomPath, &res.RandomInit}} {
		name := filepath.Base(m.path)
		fs, err := ModelFileFeatureSets(m.path, runtime.Options{}, trainDS, testDS, 256, name+" train", name+" test", log)
		if err != nil {
			return nil, err
		}
		if *m.row, err = probe(fs, o.Seed); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "%s: top-1 %.4f\n", name, m.row.Top1)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	fs := &eval.FeatureSets{TrainY: data.Labels(trainDS), TestY: data.Labels(testDS), Classes: len(trainDS.Classes())}
	if fs.TrainX, fs.Dim, err = eval.PixelFeatures(trainDS, src.Mean, src.Std, 0); err != nil {
		return nil, err
	}
	if fs.TestX, _, err = eval.PixelFeatures(testDS, src.Mean, src.Std, 0); err != nil {
		return nil, err
	}
	if res.RawPixels, err = probe(fs, o.Seed); err != nil {
		return nil, err
	}
	res.WallSeconds = time.Since(t0).Seconds()
	return res, nil
}

// probe fits the default linear probe on fs.
func probe(fs *eval.FeatureSets, seed int64) (ProbeRow, error) {
	cfg := eval.DefaultProbeConfig()
	cfg.Seed = seed
	r, err := eval.LinearProbe(fs.TrainX, fs.TrainY, fs.TestX, fs.TestY, fs.Dim, fs.Classes, cfg)
	if err != nil {
		return ProbeRow{}, err
	}
	return ProbeRow{Top1: r.Top1, Top5: r.Top5, Dim: fs.Dim, L2: r.L2}, nil
}

// WriteDemoTable writes the demo's result as a Markdown table.
func WriteDemoTable(w io.Writer, r *DemoResult) {
	fmt.Fprintf(w, "\nselfsup demo: %s on %s, %s pretraining budget (%d steps, %d images seen, held-out %s accuracy %.3f)\n",
		r.Arch, r.Data, time.Duration(r.BudgetSec*float64(time.Second)), r.Pretrain.Steps, r.Pretrain.ImagesSeen, r.Task, r.Pretrain.ValPretext)
	fmt.Fprintf(w, "linear probe on frozen features: %d training images, %d test images\n\n", r.ProbeTrain, r.TestImages)
	fmt.Fprintf(w, "| features | dim | test top-1 | test top-5 |\n|---|---|---|---|\n")
	for _, row := range []struct {
		name string
		p    ProbeRow
	}{{r.Task + "-pretrained", r.Pretrained}, {"random-init", r.RandomInit}, {"raw pixels", r.RawPixels}} {
		fmt.Fprintf(w, "| %s | %d | %.4f | %.4f |\n", row.name, row.p.Dim, row.p.Top1, row.p.Top5)
	}
	fmt.Fprintf(w, "\nwall time %.0fs; models and checkpoints in %s\n", r.WallSeconds, r.Run)
}
