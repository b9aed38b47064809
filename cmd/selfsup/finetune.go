package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/pipeline"
)

func finetuneFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "finetune", Usage: "fine-tune the whole backbone of --run (plus a new linear head) on each subset instead of a linear probe on frozen features"},
		&cli.StringFlag{Name: "run", Usage: "with --finetune: the pretraining run (its newest valid checkpoint) to start from"},
		&cli.BoolFlag{Name: "finetune-scratch", Usage: "with --finetune: start from the random init each seed draws instead of --run's weights (same arch, augmentation, schedule and subsets: the from-scratch baseline)"},
		&cli.IntFlag{Name: "finetune-epochs", Value: 30, Usage: "with --finetune: epochs over each subset"},
		&cli.Float64Flag{Name: "finetune-lr", Value: 0.01, Usage: "with --finetune: peak learning rate (cosine schedule)"},
		&cli.IntFlag{Name: "finetune-batch", Value: 32, Usage: "with --finetune: images per step (capped at the subset size)"},
		&cli.StringFlag{Name: "work", Usage: "with --finetune: folder for the fine-tuning runs (default: a temporary one, removed after)"},
	}
}

// finetuneLowShot is `selfsup eval lowshot --finetune`.
func finetuneLowShot(c *cli.Context) error {
	cfg, err := lowShotConfig(c)
	if err != nil {
		return err
	}
	res, err := pipeline.FinetuneLowShot(c.Context, pipeline.FinetuneConfig{
		Run: c.String("run"), Data: c.String("data"), TrainSplit: c.String("train-split"), TestSplit: c.String("test-split"),
		SkipBad: c.Bool("skip-bad"), Fractions: cfg.Fractions, Seeds: cfg.Seeds,
		Scratch: c.Bool("finetune-scratch"), Epochs: c.Int("finetune-epochs"), LR: c.Float64("finetune-lr"), Batch: c.Int("finetune-batch"), Work: c.String("work"), Log: os.Stderr,
	})
	if err != nil {
		return err
	}
	pipeline.WriteLowShot(os.Stderr, c.String("run"), *res)
	return maybeJSON(c, res)
}
