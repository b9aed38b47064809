package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/runtime"
	"github.com/selfsup/selfsup/train"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "the main job end to end: pretrain rotation, export, extract with ONNX Runtime, linear probe vs random init and raw pixels",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "labelled images with train/test splits (default: fashion-mnist, else mnist)"},
			&cli.DurationFlag{Name: "budget", Value: 5 * time.Minute, Usage: "pretraining wall-time budget (e.g. 3m)"},
			&cli.StringFlag{Name: "out", Value: "demo-out", Usage: "output folder (a fresh run-<time> folder is made inside)"},
			&cli.StringFlag{Name: "arch", Value: "resnet20c", Usage: "backbone"},
			&cli.StringFlag{Name: "task", Value: "rotation", Usage: "pretext task"},
			&cli.IntFlag{Name: "batch", Value: 32, Usage: "source images per step"},
			&cli.Float64Flag{Name: "lr", Value: 0.1, Usage: "peak learning rate"},
			&cli.IntFlag{Name: "probe-train", Value: 10000, Usage: "training images for the linear probe (class-balanced subset; 0: all)"},
			&cli.StringFlag{Name: "probe-layer", Value: export.FeaturesOutput, Usage: "backbone output the probes read: features, or a pooled stage stage1_pool.. (average-pooled to 4x4, see export --outputs)"},
			&cli.Int64Flag{Name: "seed", Value: 1},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object as the last stdout line"},
		},
		Action: func(c *cli.Context) error {
			res, err := runDemo(demoOptions{
				data: c.String("data"), budget: c.Duration("budget"), out: c.String("out"), arch: c.String("arch"), task: c.String("task"),
				batch: c.Int("batch"), lr: c.Float64("lr"), probeTrain: c.Int("probe-train"), seed: c.Int64("seed"),
				probeLayer: c.String("probe-layer"),
			})
			if err != nil {
				return err
			}
			printDemoTable(os.Stdout, res)
			if c.Bool("json") {
				return printJSON(res)
			}
			return nil
		},
	}
}

type demoOptions struct {
	data, out, arch, task string
	probeLayer            string // model output the probes read ("" or "features": the default)
	budget                time.Duration
	batch, probeTrain     int
	lr                    float64
	seed                  int64
}

type probeRow struct {
	Top1 float64 `json:"top1"`
	Top5 float64 `json:"top5"`
	Dim  int     `json:"dim"`
	L2   float64 `json:"l2"`
}

type demoResult struct {
	Data        string        `json:"data"`
	Arch        string        `json:"arch"`
	Task        string        `json:"task"`
	Run         string        `json:"run"`
	BudgetSec   float64       `json:"budget_seconds"`
	Pretrain    *train.Result `json:"pretrain"`
	Pretrained  probeRow      `json:"pretrained"`
	RandomInit  probeRow      `json:"random_init"`
	RawPixels   probeRow      `json:"raw_pixels"`
	ProbeLayer  string        `json:"probe_layer"`
	ProbeTrain  int           `json:"probe_train_images"`
	TestImages  int           `json:"test_images"`
	WallSeconds float64       `json:"wall_seconds"`
}

func runDemo(o demoOptions) (*demoResult, error) {
	t0 := time.Now()
	if o.data == "" {
		o.data = "fashion-mnist"
		if _, err := data.FindFashionMNIST(); err != nil {
			fmt.Fprintf(os.Stderr, "%v; using mnist\n", err)
			o.data = "mnist"
		}
	}
	exportOpts, err := probeLayerOptions(o.arch, o.probeLayer)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(o.out, "run-"+time.Now().UTC().Format("20060102-150405"))
	fmt.Fprintf(os.Stderr, "== 1/4 pretraining %s on %s (%s, budget %s) into %s\n", o.task, o.data, o.arch, o.budget, dir)
	cfg := train.DefaultConfig(o.task, o.arch)
	cfg.BudgetSeconds, cfg.Batch, cfg.LR, cfg.Seed = o.budget.Seconds(), o.batch, o.lr, o.seed
	cfg.CheckpointEvery = 100
	pre, err := pretrain(cfg, o.data, "train", dir, false, 0, 0, false, nil)
	if err != nil {
		return nil, err
	}

	fmt.Fprintf(os.Stderr, "== 2/4 exporting the pretrained and a random-init backbone to ONNX\n")
	ck, err := train.LoadCheckpoint(pre.Checkpoint)
	if err != nil {
		return nil, err
	}
	src, err := fromCheckpoint(ck)
	if err != nil {
		return nil, err
	}
	pretrainedPath := filepath.Join(dir, o.task+".onnx")
	if err := src.write(pretrainedPath, exportOpts); err != nil {
		return nil, err
	}
	rnd, err := exportSource("", "", o.arch, true, ck.Config.Pretext.Channels, o.seed+1)
	if err != nil {
		return nil, err
	}
	rnd.size, rnd.mean, rnd.std = src.size, src.mean, src.std
	randomPath := filepath.Join(dir, "random-init.onnx")
	if err := rnd.write(randomPath, exportOpts); err != nil {
		return nil, err
	}

	fmt.Fprintf(os.Stderr, "== 3/4 extracting features with ONNX Runtime\n")
	trainDS, err := loadAll(o.data, "train", false, 0, 0)
	if err != nil {
		return nil, err
	}
	if o.probeTrain > 0 && o.probeTrain < trainDS.Len() {
		trainDS = data.Subset(trainDS, balancedSubset(trainDS, o.probeTrain, o.seed))
	}
	testDS, err := loadAll(o.data, "test", false, 0, 0)
	if err != nil {
		return nil, err
	}
	res := &demoResult{Data: o.data, Arch: o.arch, Task: o.task, Run: dir, BudgetSec: o.budget.Seconds(), Pretrain: pre,
		ProbeLayer: exportOpts.Outputs[len(exportOpts.Outputs)-1], ProbeTrain: trainDS.Len(), TestImages: testDS.Len()}
	trainY, testY := data.Labels(trainDS), data.Labels(testDS)
	k := len(trainDS.Classes())

	fmt.Fprintf(os.Stderr, "== 4/4 linear probes (L2 chosen on a validation split of the probe's training images)\n")
	for _, m := range []struct {
		path string
		row  *probeRow
	}{{pretrainedPath, &res.Pretrained}, {randomPath, &res.RandomInit}} {
		sess, err := runtime.Open(m.path, runtime.Options{})
		if err != nil {
			return nil, err
		}
		trX, d, err := extractOutput(sess, trainDS, 256, res.ProbeLayer, filepath.Base(m.path)+" train")
		if err != nil {
			sess.Close()
			return nil, err
		}
		teX, _, err := extractOutput(sess, testDS, 256, res.ProbeLayer, filepath.Base(m.path)+" test")
		sess.Close()
		if err != nil {
			return nil, err
		}
		if *m.row, err = probe(trX, trainY, teX, testY, d, k, o.seed); err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "%s: top-1 %.4f\n", filepath.Base(m.path), m.row.Top1)
	}
	trX, d, err := eval.PixelFeatures(trainDS, src.mean, src.std, 0)
	if err != nil {
		return nil, err
	}
	teX, _, err := eval.PixelFeatures(testDS, src.mean, src.std, 0)
	if err != nil {
		return nil, err
	}
	if res.RawPixels, err = probe(trX, trainY, teX, testY, d, k, o.seed); err != nil {
		return nil, err
	}
	res.WallSeconds = time.Since(t0).Seconds()
	return res, nil
}

func probe(trX []float32, trY []int, teX []float32, teY []int, d, k int, seed int64) (probeRow, error) {
	cfg := eval.DefaultProbeConfig()
	cfg.Seed = seed
	r, err := eval.LinearProbe(trX, trY, teX, teY, d, k, cfg)
	if err != nil {
		return probeRow{}, err
	}
	return probeRow{Top1: r.Top1, Top5: r.Top5, Dim: d, L2: r.L2}, nil
}

func printDemoTable(w io.Writer, r *demoResult) {
	fmt.Fprintf(w, "\nselfsup demo: %s on %s, %s pretraining budget (%d steps, %d images seen, held-out %s accuracy %.3f)\n",
		r.Arch, r.Data, time.Duration(r.BudgetSec*float64(time.Second)), r.Pretrain.Steps, r.Pretrain.ImagesSeen, r.Task, r.Pretrain.ValPretext)
	fmt.Fprintf(w, "linear probe on frozen features (%s): %d training images, %d test images\n\n", r.ProbeLayer, r.ProbeTrain, r.TestImages)
	fmt.Fprintf(w, "| features | dim | test top-1 | test top-5 |\n|---|---|---|---|\n")
	for _, row := range []struct {
		name string
		p    probeRow
	}{{r.Task + "-pretrained", r.Pretrained}, {"random-init", r.RandomInit}, {"raw pixels", r.RawPixels}} {
		fmt.Fprintf(w, "| %s | %d | %.4f | %.4f |\n", row.name, row.p.Dim, row.p.Top1, row.p.Top5)
	}
	fmt.Fprintf(w, "\nwall time %.0fs; models and checkpoints in %s\n", r.WallSeconds, r.Run)
}
