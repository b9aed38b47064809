package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/pipeline"
	"github.com/selfsup/selfsup/pretext"
	"github.com/selfsup/selfsup/train"
)

func pretrainCommand() *cli.Command {
	return &cli.Command{
		Name:  "pretrain",
		Usage: "train a backbone on a pretext task (or the supervised baseline)",
		Flags: append(dataFlags(),
			&cli.StringFlag{Name: "task", Value: "rotation", Usage: fmt.Sprintf("pretext task: %v", pretext.Names())},
			&cli.StringFlag{Name: "arch", Value: "resnet20c", Usage: "backbone: resnet18, resnet34, resnet50, resnet18c, resnet20c, or ARCH-split, two half-width ARCH on L and ab (splitbrain trains it for ARCH)"},
			&cli.StringFlag{Name: "out", Usage: "run directory (checkpoints, metrics.jsonl, config.json)", Required: true},
			&cli.StringFlag{Name: "split", Value: "train", Usage: "split to train on"},
			&cli.IntFlag{Name: "epochs", Value: 1, Usage: "epochs over the training images (ignored with --budget)"},
			&cli.DurationFlag{Name: "budget", Usage: "time budget for the training loop, e.g. 5m (overrides --epochs)"},
			&cli.StringFlag{Name: "budget-clock", Value: "wall", Usage: "what --budget measures: wall time, or cpu: the process's CPU time / GOMAXPROCS (other work on the machine then slows the run but does not shorten it)"},
			&cli.IntFlag{Name: "batch", Usage: "source images per step (1-4096; 0: the task's recipe, 64)"},
			&cli.Float64Flag{Name: "lr", Usage: "peak learning rate (SGD, cosine schedule; 0.01-0.5 is sensible; 0: the task's recipe, see the README)"},
			&cli.Float64Flag{Name: "weight-decay", Value: -1, Usage: "L2 weight decay on conv and linear weights (-1: the task's recipe)"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed for weights, data order and augmentation"},
			&cli.IntFlag{Name: "checkpoint-every", Value: 200, Usage: "write a checkpoint every N steps (0: only at the end)"},
			&cli.IntFlag{Name: "workers", Value: 2, Usage: "goroutines preparing batches ahead of the compute"},
			&cli.IntFlag{Name: "streams", Value: 1, Usage: "split each batch over this many graph copies on one-thread oneDNN streams, run at once: keeps its speed beside other load (not deepcluster, semi-*; see README)"},
			&cli.IntFlag{Name: "val-images", Value: 1024, Usage: "training images held out to measure pretext accuracy"},
			&cli.BoolFlag{Name: "resume", Usage: "continue from the newest valid checkpoint in --out"},
			&cli.IntFlag{Name: "jigsaw-n", Usage: "jigsaw: permutations in the set (default 100; the paper uses 1000)"},
			&cli.StringFlag{Name: "jigsaw-method", Usage: "jigsaw: permutation set maxavg (Algorithm 1), maxmin or random"},
			&cli.StringFlag{Name: "jigsaw-perms", Usage: "jigsaw: read the permutation set from a file written by selfsup perms"},
			&cli.StringFlag{Name: "jigsaw-head", Usage: "jigsaw: spatial (fc6 on each tile's map, the paper) or pooled"},
			&cli.BoolFlag{Name: "no-gap", Usage: "jigsaw tiles: no gap between tiles (shortcut ablation)"},
			&cli.BoolFlag{Name: "no-tile-norm", Usage: "jigsaw tiles: no per-tile normalisation (shortcut ablation)"},
			&cli.BoolFlag{Name: "no-jitter", Usage: "jigsaw tiles: no colour jitter (shortcut ablation)"},
			&cli.StringFlag{Name: "pirl-loss", Usage: "pirl-*/npid: pirl (softmax over the positive and negatives, default) or nce (VISSL's NCE with a fixed Z)"},
			&cli.BoolFlag{Name: "pirl-cold-bank", Usage: "pirl-*/npid: no warm start, and the random initial bank entries as the positives of images not yet seen (the behaviour before; for comparisons)"},
			&cli.IntFlag{Name: "pirl-negatives", Usage: "pirl-*/npid: negatives drawn from the memory bank per step (default min(4096, images-1))"},
			&cli.IntFlag{Name: "dc-k", Usage: "deepcluster: k-means clusters = pseudo-classes (default 100; the paper: 10000 on ImageNet; capped at --dc-images)"},
			&cli.IntFlag{Name: "dc-every", Usage: "deepcluster: steps between re-clusterings (default: one pass over the clustered images, dc-images/batch)"},
			&cli.IntFlag{Name: "dc-images", Usage: "deepcluster: training images embedded and clustered each time, a new random subset each time (default 10000; 5000 take about 3 s for resnet20c on 2 cores)"},
			&cli.IntFlag{Name: "dc-pca", Usage: "deepcluster: PCA dimensions before whitening (default min(256, features/8): 8 for resnet20c)"},
			&cli.IntFlag{Name: "dc-iters", Usage: "deepcluster: k-means iterations (default 20)"},
			&cli.StringFlag{Name: "dc-init", Usage: "deepcluster: k-means seeding kmeans++ (default) or random"},
			&cli.IntFlag{Name: "relpos-pairs", Usage: "relpos: (centre, neighbour) pairs per image and step (default 2)"},
			&cli.IntFlag{Name: "relpos-gap", Usage: "relpos: least gap between neighbouring patches, in pixels of the resized window (default a seventh of a cell)"},
			&cli.BoolFlag{Name: "no-color-drop", Usage: "relpos: keep all colour channels of the patches (default: keep one, noise in the others, against chromatic aberration)"},
			&cli.IntFlag{Name: "inpaint-overlap", Usage: "inpainting: also predict a border of this many pixels around the hole, weighted 10x (default 0)"},
			&cli.IntFlag{Name: "inpaint-width", Usage: "inpainting: channels of the decoder's first up-convolution, halved by each further one (default 128)"},
			&cli.StringFlag{Name: "synthetic-adapt", Usage: "synthetic: adapt to the unlabelled real images of this dataset (as --data): a domain discriminator on the pooled features behind a gradient-reversal layer, one batch of them beside every batch of scenes"},
			&cli.StringFlag{Name: "weak", Usage: "supervised on weak labels: coarse:MAP (a file of \"class superclass\" lines, or cifar10-animals-vehicles) or noisy:RATE (that share of the labels, 0-1, flipped to another class, fixed by --seed)"},
			&cli.StringFlag{Name: "labels", Usage: "supervised, semi-*: the labelled images: a fraction (0-1] of each class, a count (class-balanced; both fixed by --seed), or a file of image paths, one a line"},
			&cli.Float64Flag{Name: "unsup-weight", Value: 1, Usage: "semi-*: weight W of the self-supervised term (loss = cross-entropy + W * self-supervised; >= 0)"},
			precisionFlag, jsonFlag,
		),
		Action: func(c *cli.Context) error {
			cfg := train.DefaultConfig(c.String("task"), c.String("arch"))
			cfg.Epochs, cfg.Seed, cfg.Precision = c.Int("epochs"), c.Int64("seed"), c.String("precision")
			if c.Int("batch") != 0 {
				cfg.Batch = c.Int("batch")
			}
			if c.Float64("lr") != 0 {
				cfg.LR = c.Float64("lr")
			}
			if c.Float64("weight-decay") >= 0 {
				cfg.WeightDecay = c.Float64("weight-decay")
			}
			cfg.BudgetSeconds, cfg.BudgetClock = c.Duration("budget").Seconds(), c.String("budget-clock")
			cfg.CheckpointEvery, cfg.Workers, cfg.ValImages, cfg.Streams = c.Int("checkpoint-every"), c.Int("workers"), c.Int("val-images"), c.Int("streams")
			res, err := pipeline.Pretrain(c.Context, pipeline.PretrainConfig{Train: cfg, Data: c.String("data"), Split: c.String("split"),
				Open: openOptions(c), Out: c.String("out"), Resume: c.Bool("resume"), Tweak: taskFlags(c), Log: os.Stderr,
				Weak: c.String("weak"), Labels: c.String("labels"), UnsupWeight: c.Float64("unsup-weight")})
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "trained %d steps (%d images) in %.1fs, %.1f img/s; checkpoint %s\n", res.Steps, res.ImagesSeen, res.Seconds, res.ImagesPerSec, res.Checkpoint)
			return maybeJSON(c, res)
		},
	}
}
