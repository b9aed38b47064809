package main

import (
	"fmt"
	"math/rand"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/pretext"
	"github.com/selfsup/selfsup/train"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "write a backbone (trained or random) as an ONNX model, or inspect one",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "run", Usage: "run directory: export its newest valid checkpoint"},
			&cli.StringFlag{Name: "checkpoint", Usage: "checkpoint file (.safetensors) to export"},
			&cli.StringFlag{Name: "arch", Usage: "with --random-init: architecture to export untrained"},
			&cli.BoolFlag{Name: "random-init", Usage: "export an untrained backbone (baselines, benchmarks)"},
			&cli.IntFlag{Name: "channels", Value: 3, Usage: "with --random-init: input channels"},
			&cli.IntFlag{Name: "size", Usage: "input size in pixels recorded in the model (default: the training size)"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "with --random-init: weight seed"},
			&cli.StringFlag{Name: "out", Usage: "output .onnx file"},
			&cli.StringFlag{Name: "outputs", Value: "features", Usage: "comma-separated outputs: features, stage1..stage4 (the CIFAR resnet20c has 3 stages), their pooled forms stage1_pool.. ([N, C*g*g]: average pool to a g x g grid, g = 4 or the map's side if smaller; not with --dynamic-hw), or all"},
			&cli.BoolFlag{Name: "fold-bn", Value: true, Usage: "fold batch norm into the convolutions"},
			&cli.BoolFlag{Name: "dynamic-hw", Usage: "leave height and width dynamic"},
			&cli.StringFlag{Name: "inspect", Usage: "print a model's inputs, outputs and metadata instead"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object as the last stdout line"},
		},
		Action: func(c *cli.Context) error {
			if p := c.String("inspect"); p != "" {
				info, err := export.Inspect(p)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(info)
				}
				fmt.Print(info.String())
				return nil
			}
			if c.String("out") == "" {
				return fmt.Errorf("export: --out is required")
			}
			src, err := exportSource(c.String("run"), c.String("checkpoint"), c.String("arch"), c.Bool("random-init"), c.Int("channels"), c.Int64("seed"))
			if err != nil {
				return err
			}
			opts := export.DefaultOptions()
			opts.Outputs = strings.Split(c.String("outputs"), ",")
			if c.String("outputs") == "all" {
				opts.Outputs = export.AllOutputs(src.spec, c.Bool("dynamic-hw"))
				if c.Bool("dynamic-hw") {
					fmt.Fprintf(os.Stderr, "note: --dynamic-hw: no pooled stage outputs (stageN_pool need a fixed input size)\n")
				}
			}
			opts.FoldBN, opts.DynamicHW = c.Bool("fold-bn"), c.Bool("dynamic-hw")
			if c.Int("size") > 0 {
				src.size = c.Int("size")
			}
			if err := src.write(c.String("out"), opts); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "wrote %s (%s, task %s, outputs %v)\n", c.String("out"), src.spec.Arch, src.task, opts.Outputs)
			if c.Bool("json") {
				return printJSON(map[string]any{"out": c.String("out"), "arch": src.spec.Arch, "task": src.task, "outputs": opts.Outputs})
			}
			return nil
		},
	}
}

// exportable is a backbone ready to be written.
type exportable struct {
	spec      *models.Spec
	w         models.Weights
	task      string
	size      int
	mean, std []float32
	hash      string
}

func exportSource(run, ckpt, arch string, random bool, channels int, seed int64) (*exportable, error) {
	n := 0
	for _, b := range []bool{run != "", ckpt != "", random} {
		if b {
			n++
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("export: give exactly one of --run, --checkpoint, --random-init")
	}
	if random {
		if arch == "" {
			return nil, fmt.Errorf("export: --random-init needs --arch")
		}
		spec, err := models.New(arch, channels)
		if err != nil {
			return nil, err
		}
		cfg := pretext.DefaultConfig(channels, spec.InputSize)
		return &exportable{spec: spec, w: models.InitWeights(spec, rand.New(rand.NewSource(seed))), task: "random-init",
			size: spec.InputSize, mean: cfg.Mean, std: cfg.Std}, nil
	}
	var ck *train.Checkpoint
	var err error
	if run != "" {
		var warns []string
		ck, _, warns, err = train.LatestCheckpoint(run)
		for _, w := range warns {
			fmt.Fprintf(os.Stderr, "warning: %s\n", w)
		}
	} else {
		ck, err = train.LoadCheckpoint(ckpt)
	}
	if err != nil {
		return nil, err
	}
	return fromCheckpoint(ck)
}

func fromCheckpoint(ck *train.Checkpoint) (*exportable, error) {
	cfg := ck.Config
	spec, err := models.New(cfg.Arch, cfg.Pretext.Channels)
	if err != nil {
		return nil, err
	}
	return &exportable{spec: spec, w: ck.Backbone, task: cfg.Task, size: cfg.Pretext.InputSize,
		mean: cfg.Pretext.Mean, std: cfg.Pretext.Std, hash: cfg.Hash()}, nil
}

func (e *exportable) write(path string, opts export.Options) error {
	opts.InputSize = e.size
	opts.Metadata = export.Metadata(e.spec.Arch, e.task, e.size, e.mean, e.std, e.hash, version)
	m, err := export.Build(e.spec, e.w, opts)
	if err != nil {
		return err
	}
	return export.Write(path, m)
}
