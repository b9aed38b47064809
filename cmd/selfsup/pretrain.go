package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/pretext"
	"github.com/selfsup/selfsup/train"
)

func dataFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "data", Usage: "images: fashion-mnist, mnist, a folder (IDX, CIFAR-10 binary, <split>/<class>/<img>) or a .tar/.tar.gz", Required: true},
		&cli.BoolFlag{Name: "skip-bad", Usage: "skip (and count) images that fail to decode instead of stopping"},
		&cli.IntFlag{Name: "channels", Usage: "convert image folders to 1 or 3 channels (0: as stored)"},
		&cli.IntFlag{Name: "size", Usage: "resize image folders to SIZE x SIZE pixels (0: as stored)"},
	}
}

func pretrainCommand() *cli.Command {
	return &cli.Command{
		Name:  "pretrain",
		Usage: "train a backbone on a pretext task (or the supervised baseline)",
		Flags: append(dataFlags(),
			&cli.StringFlag{Name: "task", Value: "rotation", Usage: fmt.Sprintf("pretext task: %v", pretext.Names())},
			&cli.StringFlag{Name: "arch", Value: "resnet20c", Usage: "backbone: resnet18, resnet34, resnet50, resnet18c, resnet20c"},
			&cli.StringFlag{Name: "out", Usage: "run directory (checkpoints, metrics.jsonl, config.json)", Required: true},
			&cli.StringFlag{Name: "split", Value: "train", Usage: "split to train on"},
			&cli.IntFlag{Name: "epochs", Value: 1, Usage: "epochs over the training images (ignored with --budget)"},
			&cli.DurationFlag{Name: "budget", Usage: "wall-time budget for the training loop, e.g. 5m (overrides --epochs)"},
			&cli.IntFlag{Name: "batch", Value: 64, Usage: "source images per step (1-4096)"},
			&cli.Float64Flag{Name: "lr", Value: 0.05, Usage: "peak learning rate (SGD, cosine schedule; 0.01-0.5 is sensible)"},
			&cli.Float64Flag{Name: "weight-decay", Value: 5e-4, Usage: "L2 weight decay on conv and linear weights"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed for weights, data order and augmentation"},
			&cli.IntFlag{Name: "checkpoint-every", Value: 200, Usage: "write a checkpoint every N steps (0: only at the end)"},
			&cli.IntFlag{Name: "workers", Value: 2, Usage: "goroutines preparing batches ahead of the compute"},
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
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object as the last stdout line"},
		),
		Action: func(c *cli.Context) error {
			cfg := train.DefaultConfig(c.String("task"), c.String("arch"))
			cfg.Epochs, cfg.Batch, cfg.LR, cfg.WeightDecay, cfg.Seed = c.Int("epochs"), c.Int("batch"), c.Float64("lr"), c.Float64("weight-decay"), c.Int64("seed")
			cfg.BudgetSeconds = c.Duration("budget").Seconds()
			cfg.CheckpointEvery, cfg.Workers, cfg.ValImages = c.Int("checkpoint-every"), c.Int("workers"), c.Int("val-images")
			res, err := pretrain(cfg, c.String("data"), c.String("split"), c.String("out"), c.Bool("skip-bad"), c.Int("channels"), c.Int("size"), c.Bool("resume"), taskFlags(c))
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "trained %d steps (%d images) in %.1fs, %.1f img/s; checkpoint %s\n", res.Steps, res.ImagesSeen, res.Seconds, res.ImagesPerSec, res.Checkpoint)
			if c.Bool("json") {
				return printJSON(res)
			}
			return nil
		},
	}
}

// pretrain loads the data, fills in the data-dependent parts of cfg
// (channels, input size, normalisation, classes) and runs the trainer.
func pretrain(cfg train.Config, dataSpec, split, out string, skipBad bool, channels, size int, resume bool, tweak func(*pretext.Config) error) (*train.Result, error) {
	t0 := time.Now()
	if a, err := train.ArchInputSize(cfg.Arch); err == nil && size == 0 {
		size = -a // shrink photos larger than the architecture's input to it
	}
	ds, err := loadAll(dataSpec, split, skipBad, channels, size)
	if errors.Is(err, data.ErrNoSplit) && split == "train" { // a flat folder of one's own photos
		split = ""
		ds, err = loadAll(dataSpec, split, skipBad, channels, size)
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "loaded %d %s images from %s in %.1fs\n", ds.Len(), split, dataSpec, time.Since(t0).Seconds())
	first, err := ds.Image(0)
	if err != nil {
		return nil, err
	}
	cfg.Data = dataSpec
	in := first.H
	if size < 0 {
		in = min(-size, first.H, first.W)
	}
	cfg.Pretext = pretext.DefaultConfig(first.C, in)
	cfg.Pretext.NumClasses = len(ds.Classes())
	if cfg.Pretext.Mean, cfg.Pretext.Std, err = channelStats(ds, 2000); err != nil {
		return nil, err
	}
	if tweak != nil {
		if err := tweak(&cfg.Pretext); err != nil {
			return nil, err
		}
	}
	trainSet, valSet := ds, data.Dataset(nil)
	if cfg.ValImages > 0 && ds.Len() > 2*cfg.ValImages {
		tr, va := data.Split(ds.Len(), float64(cfg.ValImages)/float64(ds.Len()), cfg.Seed)
		trainSet, valSet = data.Subset(ds, tr), data.Subset(ds, va)
	}
	return train.Run(cfg, trainSet, valSet, out, train.Options{Resume: resume, Progress: os.Stderr})
}

// channelStats estimates per-channel mean and standard deviation of pixel
// values in [0, 1] from up to n images spread evenly over ds.
func channelStats(ds data.Dataset, n int) ([]float32, []float32, error) {
	step := max(1, ds.Len()/n)
	var sum, sq []float64
	var count float64
	for i := 0; i < ds.Len(); i += step {
		img, err := ds.Image(i)
		if err != nil {
			return nil, nil, err
		}
		if sum == nil {
			sum, sq = make([]float64, img.C), make([]float64, img.C)
		}
		hw := img.H * img.W
		for c := 0; c < img.C && c < len(sum); c++ {
			for _, p := range img.Pix[c*hw : (c+1)*hw] {
				v := float64(p) / 255
				sum[c] += v
				sq[c] += v * v
			}
		}
		count += float64(hw)
	}
	mean, std := make([]float32, len(sum)), make([]float32, len(sum))
	for c := range sum {
		m := sum[c] / count
		mean[c] = float32(m)
		std[c] = float32(math.Max(math.Sqrt(sq[c]/count-m*m), 1e-3))
	}
	return mean, std, nil
}

// taskFlags applies the task-specific flags of pretrain to the pretext
// config once the image size is known; nil when none is set.
func taskFlags(c *cli.Context) func(*pretext.Config) error {
	jig := c.IsSet("jigsaw-n") || c.IsSet("jigsaw-method") || c.IsSet("jigsaw-perms") || c.IsSet("jigsaw-head") ||
		c.Bool("no-gap") || c.Bool("no-tile-norm") || c.Bool("no-jitter")
	pirl := c.IsSet("pirl-loss") || c.IsSet("pirl-negatives")
	dc := c.IsSet("dc-k") || c.IsSet("dc-every") || c.IsSet("dc-images") || c.IsSet("dc-pca") || c.IsSet("dc-iters") || c.IsSet("dc-init")
	rp := c.IsSet("relpos-pairs") || c.IsSet("relpos-gap") || c.Bool("no-color-drop")
	ip := c.IsSet("inpaint-overlap") || c.IsSet("inpaint-width")
	if !jig && !pirl && !dc && !rp && !ip {
		return nil
	}
	return func(pc *pretext.Config) error {
		if jig {
			j := pretext.DefaultJigsawConfig(pc.InputSize)
			if c.IsSet("jigsaw-n") {
				j.N = c.Int("jigsaw-n")
			}
			if c.IsSet("jigsaw-method") {
				j.Method = c.String("jigsaw-method")
			}
			if c.IsSet("jigsaw-perms") {
				j.PermFile, j.N = c.String("jigsaw-perms"), 0
			}
			if c.IsSet("jigsaw-head") {
				j.Head = c.String("jigsaw-head")
			}
			j.Tiles.Gap = j.Tiles.Gap && !c.Bool("no-gap")
			j.Tiles.PerTileNorm = j.Tiles.PerTileNorm && !c.Bool("no-tile-norm")
			j.Tiles.Jitter = j.Tiles.Jitter && !c.Bool("no-jitter")
			if err := j.Validate(); err != nil {
				return err
			}
			pc.Jigsaw = &j
		}
		if pirl {
			p := pretext.DefaultPIRLConfig(0)
			p.Negatives = 0
			if c.IsSet("pirl-loss") {
				p.Loss = c.String("pirl-loss")
			}
			if c.IsSet("pirl-negatives") {
				p.Negatives = c.Int("pirl-negatives")
			}
			pc.PIRL = p
		}
		if dc {
			d := pretext.DefaultDeepClusterConfig()
			if c.IsSet("dc-k") {
				d.K = c.Int("dc-k")
			}
			if c.IsSet("dc-every") {
				d.Every = c.Int("dc-every")
			}
			if c.IsSet("dc-images") {
				d.Images = c.Int("dc-images")
			}
			if c.IsSet("dc-pca") {
				d.PCADim = c.Int("dc-pca")
			}
			if c.IsSet("dc-iters") {
				d.Iters = c.Int("dc-iters")
			}
			if c.IsSet("dc-init") {
				d.Init = c.String("dc-init")
			}
			pc.DeepCluster = d
		}
		if rp {
			r := pretext.DefaultRelPosConfig(pc.InputSize)
			if c.IsSet("relpos-pairs") {
				r.Pairs = c.Int("relpos-pairs")
			}
			if c.IsSet("relpos-gap") {
				r.Gap = c.Int("relpos-gap")
			}
			r.ColorDrop = r.ColorDrop && !c.Bool("no-color-drop")
			if err := r.Validate(); err != nil {
				return err
			}
			pc.RelPos = &r
		}
		if ip {
			in := pretext.DefaultInpaintConfig()
			if c.IsSet("inpaint-overlap") {
				in.Overlap = c.Int("inpaint-overlap")
			}
			if c.IsSet("inpaint-width") {
				in.Width = c.Int("inpaint-width")
			}
			if err := in.Validate(); err != nil {
				return err
			}
			pc.Inpaint = &in
		}
		return nil
	}
}
