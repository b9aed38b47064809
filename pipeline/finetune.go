package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/train"
)

// FinetuneConfig is `selfsup eval lowshot --finetune`: low-shot
// evaluation by fine-tuning the whole backbone of a run.
type FinetuneConfig struct {
	Run  string // the pretraining run (its newest valid checkpoint)
	Data string
	// TrainSplit and TestSplit name the splits (default train and test).
	TrainSplit, TestSplit string
	SkipBad               bool
	// Fractions and Seeds as in eval.LowShotConfig.
	Fractions []float64
	Seeds     []int64
	Epochs    int     // epochs over each subset
	LR        float64 // peak learning rate (cosine schedule)
	Batch     int     // images per step (capped at the subset size)
	// Scratch starts every fine-tuning run from the random init its seed
	// draws instead of the run's weights, with everything else (arch,
	// augmentation, schedule, subsets) the same: the from-scratch baseline
	// a pretrained backbone must beat under the identical protocol.
	Scratch bool
	// Work holds the fine-tuning runs (default: a temporary folder,
	// removed after).
	Work string
	Log  io.Writer
}

// FinetuneLowShot fine-tunes the run's backbone with a new linear head on
// class-balanced subsets of the training labels (supervised task, the
// same augmentation as pretraining) and scores each on the whole test
// split without augmentation.
func FinetuneLowShot(ctx context.Context, c FinetuneConfig) (*eval.LowShotResult, error) {
	t0 := time.Now()
	log := logTo(c.Log)
	if c.Run == "" || c.Data == "" {
		return nil, fmt.Errorf("eval lowshot --finetune: give --run (a pretraining run) and --data")
	}
	if c.TrainSplit == "" {
		c.TrainSplit = "train"
	}
	if c.TestSplit == "" {
		c.TestSplit = "test"
	}
	ck, _, err := LatestCheckpoint(c.Run, log)
	if err != nil {
		return nil, err
	}
	oo := data.OpenOptions{SkipBad: c.SkipBad, Channels: ck.Config.Pretext.Channels, Log: log}
	trainDS, err := data.Load(c.Data, c.TrainSplit, oo)
	if err != nil {
		return nil, err
	}
	testDS, err := data.Load(c.Data, c.TestSplit, oo)
	if err != nil {
		return nil, err
	}
	classes := len(trainDS.Classes())
	if classes < 2 {
		return nil, fmt.Errorf("eval lowshot --finetune: %s has %d classes", c.Data, classes)
	}
	work := c.Work
	if work == "" {
		if work, err = os.MkdirTemp("", "selfsup-finetune-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(work)
	}
	res := &eval.LowShotResult{Classifier: "finetune", TopK: min(5, classes), NTrainAll: trainDS.Len(), NTest: testDS.Len(), Classes: classes}
	init := ck.Backbone
	if c.Scratch {
		res.Classifier, init = "finetune-scratch", nil
	}
	labels := data.Labels(trainDS)
	for _, frac := range c.Fractions {
		sum := eval.LowShotSummary{Fraction: frac}
		var t1, t5 []float64
		for _, seed := range c.Seeds {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			ts := time.Now()
			idx := data.StratifiedSubset(labels, frac, seed)
			sub := data.Subset(trainDS, idx)
			tc := train.DefaultConfig("supervised", ck.Config.Arch)
			tc.Pretext = ck.Config.Pretext
			tc.Pretext.NumClasses, tc.Pretext.TrainImages, tc.Pretext.Jigsaw, tc.Pretext.PIRL, tc.Pretext.Semi = classes, 0, nil, nil, nil
			tc.Data = c.Data
			tc.Epochs, tc.LR, tc.Seed = c.Epochs, c.LR, seed
			tc.Batch = min(c.Batch, sub.Len())
			tc.ValImages, tc.CheckpointEvery = 0, 0
			dir := filepath.Join(work, fmt.Sprintf("frac%g-seed%d", frac, seed))
			r, err := train.Run(tc, sub, nil, dir, train.Options{InitBackbone: init})
			if err != nil {
				return nil, fmt.Errorf("eval lowshot --finetune: %g of the labels, seed %d: %w", frac, seed, err)
			}
			fck, err := train.LoadCheckpoint(r.Checkpoint)
			if err != nil {
				return nil, err
			}
			ev, err := train.Evaluate(fck, testDS)
			if err != nil {
				return nil, err
			}
			run := eval.LowShotRun{Fraction: frac, Seed: seed, NTrain: sub.Len(), Top1: ev.Top1, Top5: ev.Top5, Seconds: time.Since(ts).Seconds()}
			sum.Runs = append(sum.Runs, run)
			sum.NTrain = sub.Len()
			t1, t5 = append(t1, ev.Top1), append(t5, ev.Top5)
			fmt.Fprintf(log, "fine-tuned on %d images (%g of the labels, seed %d): test top-1 %.4f, top-5 %.4f (%.0fs)\n", sub.Len(), frac, seed, ev.Top1, ev.Top5, run.Seconds)
		}
		sum.Top1Mean, sum.Top1Std = eval.MeanStd(t1)
		sum.Top5Mean, sum.Top5Std = eval.MeanStd(t5)
		res.Fractions = append(res.Fractions, sum)
	}
	res.Seconds = time.Since(t0).Seconds()
	return res, nil
}

// WriteLowShot writes one line per fraction: mean +- std over the seeds.
func WriteLowShot(w io.Writer, source string, r eval.LowShotResult) {
	fmt.Fprintf(w, "low-shot %s (%s): %d seeds per fraction, %d test images\n", r.Classifier, source, len(r.Fractions[0].Runs), r.NTest)
	for _, f := range r.Fractions {
		fmt.Fprintf(w, "  %5.1f%% labels (%d images): top-1 %.4f +- %.4f, top-%d %.4f +- %.4f\n",
			100*f.Fraction, f.NTrain, f.Top1Mean, f.Top1Std, r.TopK, f.Top5Mean, f.Top5Std)
	}
}
