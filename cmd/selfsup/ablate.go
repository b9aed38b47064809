package main

import (
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/pipeline"
)

// ablateCommand is `selfsup ablate` and its studies.
func ablateCommand() *cli.Command {
	return &cli.Command{Name: "ablate", Usage: "ablation studies shaped like the papers' tables, at small scale (Markdown table; --json)",
		Subcommands: []*cli.Command{
			{
				Name:  "jigsaw-perms",
				Usage: "Noroozi & Favaro 2016 Table 4: permutation-set size and method vs Hamming distances, jigsaw accuracy and downstream linear-probe accuracy",
				Flags: append(ablateFlags(),
					&cli.StringFlag{Name: "rows", Value: "1000:maxavg,100:maxavg,10:maxavg,100:random,10:maxmin",
						Usage: "comma-separated N:METHOD rows (METHOD: maxavg, maxmin, random)"}),
				Action: func(c *cli.Context) error {
					rows, err := pipeline.PermRows(c.String("rows"))
					if err != nil {
						return err
					}
					return runAblation(c, "jigsaw-perms", rows, pipeline.WritePermsTable)
				},
			},
			{
				Name:  "jigsaw-shortcuts",
				Usage: "Noroozi & Favaro 2016 Table 5: gap, per-tile normalisation and colour jitter each off, and all on: jigsaw accuracy and downstream linear-probe accuracy",
				Flags: append(ablateFlags(),
					&cli.IntFlag{Name: "n", Value: 100, Usage: "permutations (maxavg) in every row"}),
				Action: func(c *cli.Context) error {
					return runAblation(c, "jigsaw-shortcuts", pipeline.ShortcutRows(c.Int("n")), pipeline.WriteShortcutsTable)
				},
			},
		},
	}
}

func ablateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "data", Value: filepath.Join(sharedDataDir(), "cifar10-jpg.tar"), Usage: "labelled images with train/test splits"},
		&cli.DurationFlag{Name: "budget", Value: 2 * time.Minute, Usage: "pretraining wall-time budget of every row (e.g. 1m)"},
		&cli.IntFlag{Name: "steps", Usage: "train every row for exactly this many steps instead of --budget (comparable rows on a busy machine)"},
		&cli.StringFlag{Name: "arch", Value: "resnet20c", Usage: "backbone"},
		&cli.IntFlag{Name: "batch", Usage: "source images per step (each is 9 tiles; 0: the jigsaw recipe, 64)"},
		&cli.Float64Flag{Name: "lr", Usage: "peak learning rate (SGD, cosine schedule; 0: the jigsaw recipe, 0.025; jigsaw stays at chance with 0.1 on short budgets)"},
		&cli.IntFlag{Name: "probe-train", Value: 5000, Usage: "training images for the linear probe (class-balanced subset; 0: all)"},
		&cli.IntFlag{Name: "probe-test", Value: 0, Usage: "test images for the linear probe (class-balanced subset; 0: all)"},
		&cli.IntFlag{Name: "val-images", Value: 512, Usage: "training images held out for the jigsaw accuracy"},
		&cli.IntFlag{Name: "probe-size", Usage: "side in pixels the probe's images are resized to (the exported model's input size; 0: the dataset's image size). The tile scale is matched by the tile crop size (84 for 32 px images)"},
		&cli.BoolFlag{Name: "no-baseline", Usage: "skip the random-init backbone row"},
		&cli.StringFlag{Name: "out", Value: "ablate-out", Usage: "output folder (a fresh <ablation>-<time> folder is made inside)"},
		&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed for weights, data order, tiles and subsets"},
		jsonFlag,
	}
}

// sharedDataDir is $SELFSUP_DATA, or ../shared/data.
func sharedDataDir() string {
	if d := os.Getenv("SELFSUP_DATA"); d != "" {
		return d
	}
	return filepath.Join("..", "shared", "data")
}

// runAblation runs the rows (see pipeline.Ablate), prints the table with
// write and, with --json, the result as the last stdout line.
func runAblation(c *cli.Context, name string, rows []pipeline.AblateSpec, write func(io.Writer, *pipeline.AblateResult)) error {
	res, err := pipeline.Ablate(c.Context, pipeline.AblateConfig{Data: c.String("data"), Arch: c.String("arch"), Out: c.String("out"), Budget: c.Duration("budget"),
		Steps: c.Int("steps"), Batch: c.Int("batch"), ProbeTrain: c.Int("probe-train"), ProbeTest: c.Int("probe-test"),
		ValImages: c.Int("val-images"), ProbeSize: c.Int("probe-size"), LR: c.Float64("lr"), Seed: c.Int64("seed"), NoBaseline: c.Bool("no-baseline"),
		Log: os.Stderr}, name, rows)
	if err != nil {
		return err
	}
	write(os.Stdout, res)
	return jsonOut(c, res)
}
