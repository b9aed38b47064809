package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/train"
)

func finetuneFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "finetune", Usage: "fine-tune the whole backbone of --run (plus a new linear head) on each subset instead of a linear probe on frozen features"},
		&cli.StringFlag{Name: "run", Usage: "with --finetune: the pretraining run (its newest valid checkpoint) to start from"},
		&cli.IntFlag{Name: "finetune-epochs", Value: 30, Usage: "with --finetune: epochs over each subset"},
		&cli.Float64Flag{Name: "finetune-lr", Value: 0.01, Usage: "with --finetune: peak learning rate (cosine schedule)"},
		&cli.IntFlag{Name: "finetune-batch", Value: 32, Usage: "with --finetune: images per step (capped at the subset size)"},
		&cli.StringFlag{Name: "work", Usage: "with --finetune: folder for the fine-tuning runs (default: a temporary one, removed after)"},
	}
}

// finetuneLowShot fine-tunes the run's backbone with a new linear head on
// class-balanced subsets of the training labels (supervised task, the
// same augmentation as pretraining) and scores each on the whole test split
// without augmentation.
func finetuneLowShot(c *cli.Context) error {
	t0 := time.Now()
	if c.String("run") == "" || c.String("data") == "" {
		return fmt.Errorf("eval lowshot --finetune: give --run (a pretraining run) and --data")
	}
	ck, _, warns, err := train.LatestCheckpoint(c.String("run"))
	for _, w := range warns {
		fmt.Fprintf(os.Stderr, "warning: %s\n", w)
	}
	if err != nil {
		return err
	}
	cfg, err := lowShotConfig(c)
	if err != nil {
		return err
	}
	trainDS, err := loadAll(c.String("data"), c.String("train-split"), c.Bool("skip-bad"), ck.Config.Pretext.Channels, 0)
	if err != nil {
		return err
	}
	testDS, err := loadAll(c.String("data"), c.String("test-split"), c.Bool("skip-bad"), ck.Config.Pretext.Channels, 0)
	if err != nil {
		return err
	}
	classes := len(trainDS.Classes())
	if classes < 2 {
		return fmt.Errorf("eval lowshot --finetune: %s has %d classes", c.String("data"), classes)
	}
	work := c.String("work")
	if work == "" {
		if work, err = os.MkdirTemp("", "selfsup-finetune-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	res := eval.LowShotResult{Classifier: "finetune", TopK: min(5, classes), NTrainAll: trainDS.Len(), NTest: testDS.Len(), Classes: classes}
	labels := data.Labels(trainDS)
	for _, frac := range cfg.Fractions {
		sum := eval.LowShotSummary{Fraction: frac}
		var t1, t5 []float64
		for _, seed := range cfg.Seeds {
			ts := time.Now()
			idx := data.StratifiedSubset(labels, frac, seed)
			sub := data.Subset(trainDS, idx)
			tc := train.DefaultConfig("supervised", ck.Config.Arch)
			tc.Pretext = ck.Config.Pretext
			tc.Pretext.NumClasses, tc.Pretext.TrainImages, tc.Pretext.Jigsaw, tc.Pretext.PIRL = classes, 0, nil, nil
			tc.Data = c.String("data")
			tc.Epochs, tc.LR, tc.Seed = c.Int("finetune-epochs"), c.Float64("finetune-lr"), seed
			tc.Batch = min(c.Int("finetune-batch"), sub.Len())
			tc.ValImages, tc.CheckpointEvery = 0, 0
			dir := filepath.Join(work, fmt.Sprintf("frac%g-seed%d", frac, seed))
			r, err := train.Run(tc, sub, nil, dir, train.Options{InitBackbone: ck.Backbone})
			if err != nil {
				return fmt.Errorf("eval lowshot --finetune: %g of the labels, seed %d: %w", frac, seed, err)
			}
			fck, err := train.LoadCheckpoint(r.Checkpoint)
			if err != nil {
				return err
			}
			ev, err := train.Evaluate(fck, testDS)
			if err != nil {
				return err
			}
			run := eval.LowShotRun{Fraction: frac, Seed: seed, NTrain: sub.Len(), Top1: ev.Top1, Top5: ev.Top5, Seconds: time.Since(ts).Seconds()}
			sum.Runs = append(sum.Runs, run)
			sum.NTrain = sub.Len()
			t1, t5 = append(t1, ev.Top1), append(t5, ev.Top5)
			fmt.Fprintf(os.Stderr, "fine-tuned on %d images (%g of the labels, seed %d): test top-1 %.4f, top-5 %.4f (%.0fs)\n", sub.Len(), frac, seed, ev.Top1, ev.Top5, run.Seconds)
		}
		sum.Top1Mean, sum.Top1Std = meanStd(t1)
		sum.Top5Mean, sum.Top5Std = meanStd(t5)
		res.Fractions = append(res.Fractions, sum)
	}
	res.Seconds = time.Since(t0).Seconds()
	printLowShot(os.Stderr, c.String("run"), res)
	if c.Bool("json") {
		return printJSON(res)
	}
	return nil
}

// meanStd is the mean and the sample standard deviation (0 for one value).
func meanStd(v []float64) (float64, float64) {
	var m float64
	for _, x := range v {
		m += x
	}
	m /= float64(len(v))
	if len(v) < 2 {
		return m, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - m) * (x - m)
	}
	return m, math.Sqrt(ss / float64(len(v)-1))
}
