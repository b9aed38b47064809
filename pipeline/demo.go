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
	"github.com/selfsup/selfsup/models"
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
	// Batch and LR override the task's recipe when > 0.
	Batch int
	LR    float64
	// ProbeTrain is the training images of the linear probe (a
	// class-balanced subset; 0: all).
	ProbeTrain int
	// ProbeLayer is the backbone output the probes read: "" or "best"
	// (every pooled stage and features, each model's layer chosen on the
	// validation split), or one output name (features, stage2_pool, ...).
	ProbeLayer string
	// BNImages is the number of training images the batch-norm statistics
	// of both exported backbones are re-estimated on (0: 4096).
	BNImages int
	// Steps, when > 0, trains that many steps instead of the budget
	// (tests).
	Steps int
	Seed  int64
	Log   io.Writer
}

// DefaultDemoConfig is the demo's defaults (the CLI's flag defaults).
func DefaultDemoConfig() DemoConfig {
	return DemoConfig{Budget: 3 * time.Minute, Out: "demo-out", Arch: "resnet20c", Task: "rotation", ProbeTrain: 10000, ProbeLayer: "best", Seed: 1}
}

// ProbeRow is one linear-probe line of the demo's table.
type ProbeRow struct {
	// Layer is the output probed (chosen on validation with ProbeLayer
	// "best").
	Layer   string  `json:"layer,omitempty"`
	Top1    float64 `json:"top1"`
	Top5    float64 `json:"top5"`
	ValTop1 float64 `json:"val_top1,omitempty"`
	Dim     int     `json:"dim"`
	L2      float64 `json:"l2,omitempty"`
}

// DemoResult is what `selfsup demo --json` prints.
type DemoResult struct {
	Data      string        `json:"data"`
	Arch      string        `json:"arch"`
	Task      string        `json:"task"`
	Run       string        `json:"run"`
	BudgetSec float64       `json:"budget_seconds"`
	Pretrain  *train.Result `json:"pretrain"`
	// Pretrained and RandomInit have their batch-norm statistics
	// re-estimated on training images; RandomInitBN01 is the same random
	// weights with the statistics an untrained network ships (mean 0,
	// variance 1), the flattered floor earlier tables used.
	Pretrained     ProbeRow `json:"pretrained"`
	RandomInit     ProbeRow `json:"random_init"`
	RandomInitBN01 ProbeRow `json:"random_init_bn01"`
	RawPixels      ProbeRow `json:"raw_pixels"`
	ProbeLayer     string   `json:"probe_layer"`
	ProbeTrain     int      `json:"probe_train_images"`
	TestImages     int      `json:"test_images"`
	WallSeconds    float64  `json:"wall_seconds"`
}

// Demo pretrains o.Task for the budget, exports the pretrained and a
// random-init backbone to ONNX (pooled stage outputs, batch-norm
// statistics re-estimated on training images for both), extracts features
// with ONNX Runtime and fits linear probes on them and on raw pixels.
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
	if o.ProbeLayer == "" {
		o.ProbeLayer = "best"
	}
	// The layer name is checked before any work (the names do not depend
	// on the input channels).
	if spec, err := models.New(o.Arch, 3); err != nil {
		return nil, err
	} else if _, _, err := pooledLayers(&Backbone{Spec: spec}, o.ProbeLayer); err != nil {
		return nil, err
	}
	dir := filepath.Join(o.Out, "run-"+time.Now().UTC().Format("20060102-150405"))
	fmt.Fprintf(log, "== 1/4 pretraining %s on %s (%s, budget %s) into %s\n", o.Task, o.Data, o.Arch, o.Budget, dir)
	cfg := train.DefaultConfig(o.Task, o.Arch)
	cfg.BudgetSeconds, cfg.Seed = o.Budget.Seconds(), o.Seed
	if o.Batch > 0 {
		cfg.Batch = o.Batch
	}
	if o.LR > 0 {
		cfg.LR = o.LR
	}
	cfg.CheckpointEvery = 100
	if o.Steps > 0 {
		cfg.Steps, cfg.BudgetSeconds = o.Steps, 0
	}
	pre, err := Pretrain(ctx, PretrainConfig{Train: cfg, Data: o.Data, Split: "train", Out: dir, Log: log})
	if err != nil {
		return nil, err
	}

	fmt.Fprintf(log, "== 2/4 exporting the pretrained and a random-init backbone to ONNX (batch-norm statistics re-estimated on training images)\n")
	ck, err := train.LoadCheckpoint(pre.Checkpoint)
	if err != nil {
		return nil, err
	}
	trainAll, err := data.Load(o.Data, "train", data.OpenOptions{Log: log})
	if err != nil {
		return nil, err
	}
	src, err := BackboneFromCheckpoint(ck)
	if err != nil {
		return nil, err
	}
	layers, opts, err := pooledLayers(src, o.ProbeLayer)
	if err != nil {
		return nil, err
	}
	rnd, err := RandomBackbone(o.Arch, ck.Config.Pretext.Channels, o.Seed+1)
	if err != nil {
		return nil, err
	}
	rnd.Size, rnd.Mean, rnd.Std = src.Size, src.Mean, src.Std
	paths := map[string]string{"bn01": filepath.Join(dir, "random-init-bn01.onnx")}
	if err := rnd.Export(paths["bn01"], opts); err != nil {
		return nil, err
	}
	for name, b := range map[string]*Backbone{"pretrained": src, "random": rnd} {
		if err := b.Recalibrate(trainAll, o.BNImages, o.Seed); err != nil {
			return nil, err
		}
		paths[name] = filepath.Join(dir, map[string]string{"pretrained": o.Task, "random": "random-init"}[name]+".onnx")
		if err := b.Export(paths[name], opts); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	fmt.Fprintf(log, "== 3/4 extracting features with ONNX Runtime\n")
	trainDS := trainAll
	if o.ProbeTrain > 0 && o.ProbeTrain < trainDS.Len() {
		trainDS = data.Subset(trainDS, data.BalancedSubset(trainDS, o.ProbeTrain, o.Seed))
	}
	testDS, err := data.Load(o.Data, "test", data.OpenOptions{Log: log})
	if err != nil {
		return nil, err
	}
	res := &DemoResult{Data: o.Data, Arch: o.Arch, Task: o.Task, Run: dir, BudgetSec: o.Budget.Seconds(), Pretrain: pre,
		ProbeLayer: o.ProbeLayer, ProbeTrain: trainDS.Len(), TestImages: testDS.Len()}

	fmt.Fprintf(log, "== 4/4 linear probes (L2 and layer chosen on a validation split of the probe's training images)\n")
	for _, m := range []struct {
		key string
		row *ProbeRow
	}{{"pretrained", &res.Pretrained}, {"random", &res.RandomInit}, {"bn01", &res.RandomInitBN01}} {
		if *m.row, err = probeModel(paths[m.key], layers, trainDS, testDS, o.Seed, log); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "%s: %s top-1 %.4f\n", filepath.Base(paths[m.key]), m.row.Layer, m.row.Top1)
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
	res.RawPixels.Layer = "pixels"
	res.WallSeconds = time.Since(t0).Seconds()
	return res, nil
}

// pooledLayers returns the outputs to probe for probeLayer ("best":
// every pooled stage and features) and the export options that write them.
func pooledLayers(b *Backbone, probeLayer string) ([]string, export.Options, error) {
	opts := export.DefaultOptions()
	all := export.AllOutputs(b.Spec, false)
	var layers []string
	for _, name := range all {
		if name == export.FeaturesOutput || len(name) > 5 && name[len(name)-5:] == "_pool" {
			layers = append(layers, name)
		}
	}
	if probeLayer != "best" {
		found := false
		for _, name := range all {
			found = found || name == probeLayer
		}
		if !found {
			return nil, opts, fmt.Errorf("demo: --probe-layer %q: %s has no such output (it has best, %v)", probeLayer, b.Spec.Arch, all)
		}
		layers = []string{probeLayer}
	}
	opts.Outputs = []string{export.FeaturesOutput}
	for _, l := range layers {
		if l != export.FeaturesOutput {
			opts.Outputs = append(opts.Outputs, l)
		}
	}
	return layers, opts, nil
}

// probeModel extracts layers of the model at path and fits the linear
// probe on each; the row is the layer with the best validation top-1.
func probeModel(path string, layers []string, trainDS, testDS data.Dataset, seed int64, log io.Writer) (ProbeRow, error) {
	sess, err := runtime.Open(path, runtime.Options{})
	if err != nil {
		return ProbeRow{}, err
	}
	defer sess.Close()
	lf, err := ExtractLayers(sess, trainDS, testDS, layers, 256, log)
	if err != nil {
		return ProbeRow{}, err
	}
	cfg := eval.DefaultProbeConfig()
	cfg.Seed = seed
	r, err := lf.Probe(cfg, log)
	if err != nil {
		return ProbeRow{}, err
	}
	row := ProbeRow{Layer: r.Best.Layer, Top1: r.Best.Top1, Top5: r.Best.Top5, ValTop1: r.Best.ValTop1, Dim: r.Best.Dim}
	for _, l := range r.Layers {
		if l.Layer == r.Best.Layer && l.Probe != nil {
			row.L2 = l.Probe.L2
		}
	}
	return row, nil
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
	fmt.Fprintf(w, "linear probe on frozen features (layer: %s, chosen on validation): %d training images, %d test images\n\n", r.ProbeLayer, r.ProbeTrain, r.TestImages)
	fmt.Fprintf(w, "| features | layer | dim | test top-1 | test top-5 |\n|---|---|---|---|---|\n")
	for _, row := range []struct {
		name string
		p    ProbeRow
	}{{r.Task + "-pretrained", r.Pretrained}, {"random-init (BN recalibrated)", r.RandomInit}, {"random-init (BN 0/1)", r.RandomInitBN01}, {"raw pixels", r.RawPixels}} {
		fmt.Fprintf(w, "| %s | %s | %d | %.4f | %.4f |\n", row.name, row.p.Layer, row.p.Dim, row.p.Top1, row.p.Top5)
	}
	fmt.Fprintf(w, "\nwall time %.0fs; models and checkpoints in %s\n", r.WallSeconds, r.Run)
}
