package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/pretext"
	"github.com/selfsup/selfsup/train"
)

// PretrainConfig is one pretraining run from a dataset spec.
type PretrainConfig struct {
	// Train is the trainer's config; Data, Pretext's data-dependent parts
	// (channels, input size, normalisation, classes) are filled in here.
	Train train.Config
	// Data is the dataset spec (see data.Open) and Split the split to
	// train on (default "train").
	Data, Split string
	// Open converts and checks the images (SkipBad, Channels, Size).
	Open data.OpenOptions
	// Out is the run directory; Resume continues from its newest valid
	// checkpoint.
	Out    string
	Resume bool
	// Tweak, when set, adjusts the pretext config once the image size is
	// known (the task-specific flags).
	Tweak func(*pretext.Config) error
	// Weak, when set, trains on weak labels: "coarse:MAP" or "noisy:RATE"
	// (data.ParseWeak; tasks trained on labels only).
	Weak string
	// Labels chooses the images whose labels may be used (a fraction, a
	// count or a file; data.LabelledSubset): the only training images of
	// the supervised task, the labelled half of a semi-supervised one's
	// steps (required there), among the training images left after the
	// validation hold-out. UnsupWeight is the semi-supervised tasks'
	// weight of the self-supervised term.
	Labels      string
	UnsupWeight float64
	// Log receives progress (nil: discarded).
	Log io.Writer
}

// Pretrain loads the data, fills in the data-dependent parts of the
// config, holds out cfg.Train.ValImages images for the pretext accuracy
// and runs the trainer.
func Pretrain(ctx context.Context, c PretrainConfig) (*train.Result, error) {
	log := logTo(c.Log)
	if c.Split == "" {
		c.Split = "train"
	}
	t0 := time.Now()
	c.Open.Log = log
	if c.Open.Size == 0 && c.Open.Shrink == 0 { // photos larger than the arch's input are shrunk to it
		if a, err := train.ArchInputSize(c.Train.Arch); err == nil {
			c.Open.Shrink = a
		}
	}
	ds, err := data.Load(c.Data, c.Split, c.Open)
	if errors.Is(err, data.ErrNoSplit) && c.Split == "train" { // a flat folder of one's own photos
		c.Split = ""
		ds, err = data.Load(c.Data, c.Split, c.Open)
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "loaded %d %s images from %s in %.1fs\n", ds.Len(), c.Split, c.Data, time.Since(t0).Seconds())
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	first, err := ds.Image(0)
	if err != nil {
		return nil, err
	}
	cfg := c.Train
	cfg.Data = c.Data
	in := first.H
	if c.Open.Size == 0 && c.Open.Shrink > 0 {
		in = min(c.Open.Shrink, first.H, first.W)
	}
	cfg.Pretext = pretext.TaskConfig(cfg.Task, first.C, in)
	cfg.Pretext.NumClasses = len(ds.Classes())
	if cfg.Pretext.Mean, cfg.Pretext.Std, err = data.ChannelStats(ds, data.StatsImages); err != nil {
		return nil, err
	}
	if c.Tweak != nil {
		if err := c.Tweak(&cfg.Pretext); err != nil {
			return nil, err
		}
	}
	if c.Weak != "" {
		if cfg.Weak, err = data.ParseWeak(c.Weak, ds.Classes()); err != nil {
			return nil, err
		}
		cfg.Pretext.NumClasses = len(cfg.Weak.Classes(ds.Classes()))
	}
	var tr, va []int // the training and held-out images, by index
	if cfg.ValImages > 0 && ds.Len() > 2*cfg.ValImages {
		tr, va = data.Split(ds.Len(), float64(cfg.ValImages)/float64(ds.Len()), cfg.Seed)
	}
	trainSet, valSet, err := applyLabels(c, &cfg, ds, tr, va, log)
	if err != nil {
		return nil, err
	}
	return train.Run(cfg, trainSet, valSet, c.Out, train.Options{Resume: c.Resume, Progress: log})
}
