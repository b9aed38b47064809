package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/pipeline"
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
			&cli.StringFlag{Name: "bn-data", Usage: "re-estimate the batch-norm running statistics on whole images of this data (its --bn-split) before folding; a random-init export also takes its mean/std from it"},
			&cli.StringFlag{Name: "bn-split", Value: "train", Usage: "with --bn-data: the split to read"},
			&cli.IntFlag{Name: "bn-images", Value: 4096, Usage: "with --bn-data: images to estimate the statistics from"},
			&cli.StringFlag{Name: "quantize", Usage: "int8: write a static int8 QDQ model (per-channel weights, activation ranges from --calibrate) that ONNX Runtime runs with int8 kernels"},
			&cli.StringFlag{Name: "calibrate", Usage: "with --quantize: images (its --bn-split) whose activations set the int8 ranges"},
			&cli.IntFlag{Name: "calibrate-images", Value: pipeline.DefaultCalibrationImages, Usage: "with --quantize: calibration images (a random subset)"},
			&cli.StringFlag{Name: "calibrate-method", Value: export.DefaultCalibration, Usage: "with --quantize: minmax, percentile[:P] or entropy (README: int8 extraction)"},
			&cli.StringFlag{Name: "inspect", Usage: "print a model's inputs, outputs and metadata instead"},
			jsonFlag,
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
			src, err := pipeline.OpenBackbone(pipeline.BackboneSource{Run: c.String("run"), Checkpoint: c.String("checkpoint"),
				RandomInit: c.Bool("random-init"), Arch: c.String("arch"), Channels: c.Int("channels"), Seed: c.Int64("seed")}, os.Stderr)
			if err != nil {
				return err
			}
			if c.Int("size") > 0 {
				src.Size = c.Int("size")
			}
			opts := pipeline.ExportOptions(src.Spec, c.String("outputs"), c.Bool("fold-bn"), c.Bool("dynamic-hw"), os.Stderr)
			if err := src.SetQuantize(pipeline.QuantizeConfig{Mode: c.String("quantize"), Data: c.String("calibrate"), Split: c.String("bn-split"), Images: c.Int("calibrate-images"), Method: c.String("calibrate-method"), Seed: c.Int64("seed"), Log: os.Stderr}, opts); err != nil {
				return err
			}
			if d := c.String("bn-data"); d != "" {
				if err := src.RecalibrateOn(d, c.String("bn-split"), c.Int("bn-images"), c.Int64("seed"), os.Stderr); err != nil {
					return err
				}
			}
			if err := src.Export(c.String("out"), opts); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "wrote %s (%s, task %s, outputs %v)\n", c.String("out"), src.Spec.Arch, src.Task, opts.Outputs)
			return maybeJSON(c, map[string]any{"out": c.String("out"), "arch": src.Spec.Arch, "task": src.Task, "outputs": opts.Outputs, "quantize": c.String("quantize")})
		},
	}
}
