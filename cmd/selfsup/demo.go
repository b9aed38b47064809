package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/pipeline"
)

func demoCommand() *cli.Command {
	d := pipeline.DefaultDemoConfig()
	return &cli.Command{
		Name:  "demo",
		Usage: "the main job end to end: pretrain rotation, export, extract with ONNX Runtime, linear probe vs random init and raw pixels",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "labelled images with train/test splits (default: fashion-mnist, else mnist)"},
			&cli.DurationFlag{Name: "budget", Value: d.Budget, Usage: "pretraining wall-time budget (e.g. 3m)"},
			&cli.StringFlag{Name: "out", Value: d.Out, Usage: "output folder (a fresh run-<time> folder is made inside)"},
			&cli.StringFlag{Name: "arch", Value: d.Arch, Usage: "backbone"},
			&cli.StringFlag{Name: "task", Value: d.Task, Usage: "pretext task"},
			&cli.IntFlag{Name: "batch", Value: d.Batch, Usage: "source images per step (0: the task's recipe)"},
			&cli.Float64Flag{Name: "lr", Value: d.LR, Usage: "peak learning rate (0: the task's recipe)"},
			&cli.IntFlag{Name: "probe-train", Value: d.ProbeTrain, Usage: "training images for the linear probe (class-balanced subset; 0: all)"},
			&cli.StringFlag{Name: "probe-layer", Value: d.ProbeLayer, Usage: "backbone output the probes read: best (every pooled stage stageN_pool and features, each model's layer chosen on the validation split) or one output name"},
			&cli.Int64Flag{Name: "seed", Value: d.Seed},
			jsonFlag,
		},
		Action: func(c *cli.Context) error {
			res, err := pipeline.Demo(c.Context, pipeline.DemoConfig{
				Data: c.String("data"), Budget: c.Duration("budget"), Out: c.String("out"), Arch: c.String("arch"), Task: c.String("task"),
				Batch: c.Int("batch"), LR: c.Float64("lr"), ProbeTrain: c.Int("probe-train"), ProbeLayer: c.String("probe-layer"), Seed: c.Int64("seed"), Log: os.Stderr,
			})
			if err != nil {
				return err
			}
			pipeline.WriteDemoTable(os.Stdout, res)
			return jsonOut(c, res)
		},
	}
}
