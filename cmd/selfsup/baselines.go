package main

import (
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/pipeline"
)

func baselinesCommand() *cli.Command {
	return &cli.Command{
		Name: "baselines",
		Usage: "evaluate pretrained runs against the three baselines by the same protocol: supervised pretraining (same architecture and budget), " +
			"a random-init backbone and raw pixels; linear probe, kNN and optionally low-shot, as one table",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "labelled images with train and test splits (folder or .tar, mnist, fashion-mnist)", Required: true},
			&cli.StringFlag{Name: "arch", Value: "resnet20c", Usage: "backbone of the supervised and random-init baselines"},
			&cli.DurationFlag{Name: "budget", Value: 2 * time.Minute, Usage: "wall-time budget of the supervised baseline's training (e.g. 2m; match the pretext runs')"},
			&cli.StringFlag{Name: "out", Value: "baselines-out", Usage: "folder for the supervised run, the ONNX models and the results (baselines.md, baselines.json); an existing supervised run there is reused"},
			&cli.StringSliceFlag{Name: "run", Usage: "pretrained run directory to evaluate beside the baselines (repeatable)"},
			&cli.BoolFlag{Name: "lowshot", Usage: "also low-shot linear evaluation (1% and 10% of the labels, 3 seeds)"},
			&cli.BoolFlag{Name: "svm", Usage: "also the one-vs-rest linear SVM probe"},
			&cli.IntFlag{Name: "max-train", Usage: "use at most this many training images for the evaluations (class-balanced; 0: all)"},
			&cli.IntFlag{Name: "train-batch", Value: 64, Usage: "images per step of the supervised baseline"},
			&cli.Float64Flag{Name: "lr", Value: 0.05, Usage: "peak learning rate of the supervised baseline"},
			&cli.IntFlag{Name: "checkpoint-every", Value: 200, Usage: "checkpoint the supervised baseline every N steps (the last 3 are kept; `report` measures kNN accuracy on each)"},
			&cli.BoolFlag{Name: "skip-bad", Usage: "skip images that fail to decode"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed for training, the random-init weights and subsets"},
			jsonFlag,
		}, runtimeFlags()...),
		Action: func(c *cli.Context) error {
			res, err := pipeline.Baselines(c.Context, pipeline.BaselinesConfig{
				Data: c.String("data"), Arch: c.String("arch"), Budget: c.Duration("budget"), Out: c.String("out"), Runs: c.StringSlice("run"),
				LowShot: c.Bool("lowshot"), SVM: c.Bool("svm"), MaxTrain: c.Int("max-train"), TrainBatch: c.Int("train-batch"), LR: c.Float64("lr"),
				CheckpointEvery: c.Int("checkpoint-every"), SkipBad: c.Bool("skip-bad"), Seed: c.Int64("seed"),
				Runtime: runtimeOptions(c), Batch: c.Int("batch"), Log: os.Stderr,
			})
			if err != nil {
				return err
			}
			pipeline.WriteBaselinesTable(os.Stderr, res)
			return jsonOut(c, res)
		},
	}
}
