package main

import (
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/pipeline"
)

func reproduceCommand() *cli.Command {
	return &cli.Command{
		Name: "reproduce",
		Usage: "the seed's tables at small scale: every method pretrained for the same budget, batch norm recalibrated, " +
			"linear probe per stage, kNN, low-shot, the random-init and raw-pixel floors, Jigsaw Tables 4 and 5, PIRL vs its pretext task; " +
			"writes report.md, results.json and plots; a rerun skips finished work and resumes interrupted pretraining",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "labelled images with train/test splits (e.g. ../shared/data/cifar10-jpg.tar)", Required: true},
			&cli.StringFlag{Name: "out", Value: "reproduce-out", Usage: "results folder (reused by a rerun)"},
			&cli.DurationFlag{Name: "budget", Value: 45 * time.Minute, Usage: "pretraining time per method"},
			&cli.DurationFlag{Name: "ablation-budget", Usage: "pretraining time per Table 4/5 row (0: a third of --budget)"},
			&cli.StringFlag{Name: "budget-clock", Value: "cpu", Usage: "what the budgets measure: cpu (the process's CPU time / GOMAXPROCS: other work on the machine slows a run but does not shorten it) or wall"},
			&cli.StringFlag{Name: "arch", Value: "resnet20c", Usage: "backbone of every row"},
			&cli.StringFlag{Name: "methods", Value: strings.Join(pipeline.DefaultReproduceMethods, ","), Usage: "comma-separated pretraining tasks, in order; TASK:DURATION gives one its own budget (e.g. relpos:15m)"},
			&cli.BoolFlag{Name: "ablations", Value: true, Usage: "run the Jigsaw Table 4 and Table 5 ablations"},
			&cli.StringFlag{Name: "perm-rows", Value: pipeline.DefaultPermRows, Usage: "Table 4 rows N:method,..."},
			&cli.IntFlag{Name: "probe-train", Value: 20000, Usage: "training images (class-balanced) the probes fit on (0: all)"},
			&cli.IntFlag{Name: "steps", Usage: "train every row for exactly this many steps instead of the budgets (smoke runs)"},
			&cli.IntFlag{Name: "streams", Value: 1, Usage: "train the method rows on this many streams (as pretrain --streams; a task that cannot trains on one)"},
			&cli.StringFlag{Name: "dense", Usage: "also probe every backbone frozen on this annotated set (COCO128 layout, e.g. ../shared/data/coco128.tar): segmentation / detection heads, with the pixel and prior baselines"},
			&cli.IntFlag{Name: "dense-size", Value: 128, Usage: "with --dense: input size in pixels"},
			&cli.StringFlag{Name: "dense-tasks", Value: "segment", Usage: "with --dense: segment, detect or both (comma-separated)"},
			&cli.Int64Flag{Name: "seed", Value: 1},
			precisionFlag, jsonFlag,
		},
		Action: func(c *cli.Context) error {
			res, err := pipeline.Reproduce(c.Context, pipeline.ReproduceConfig{
				Data: c.String("data"), Out: c.String("out"), Budget: c.Duration("budget"), AblationBudget: c.Duration("ablation-budget"),
				Arch: c.String("arch"), Methods: pipeline.SplitList(c.String("methods")), Ablations: c.Bool("ablations"), PermRows: c.String("perm-rows"),
				ProbeTrain: c.Int("probe-train"), Steps: c.Int("steps"), Streams: c.Int("streams"), Precision: c.String("precision"), BudgetClock: c.String("budget-clock"), Seed: c.Int64("seed"), Log: os.Stderr,
				Dense: c.String("dense"), DenseSize: c.Int("dense-size"), DenseTasks: pipeline.SplitList(c.String("dense-tasks")),
			})
			if err != nil {
				return err
			}
			pipeline.WriteOrderings(os.Stderr, res)
			return maybeJSON(c, res)
		},
	}
}
