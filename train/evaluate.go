package train

import (
	"fmt"
	"math/rand"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/pretext"
)

// EvalResult is a classifier's accuracy on a labelled set.
type EvalResult struct {
	Top1   float64 `json:"top1"`
	Top5   float64 `json:"top5"`
	Images int     `json:"images"`
}

// Evaluate runs the classifier of a checkpoint (a task whose model is a
// pretext.Ranker trained on labels, such as supervised) over every image of ds in inference
// mode, without augmentation (images resized to the input size), and
// returns top-1 and top-5 accuracy against ds's labels.
func Evaluate(ck *Checkpoint, ds data.Dataset) (*EvalResult, error) {
	cfg := ck.Config
	task, err := pretext.New(cfg.Task)
	if err != nil {
		return nil, err
	}
	if !task.NeedsLabels() {
		return nil, fmt.Errorf("train: evaluate: task %s does not predict class labels", cfg.Task)
	}
	cfg.Pretext.NoAugment = true
	s, err := build(cfg, ck, nil)
	if err != nil {
		return nil, err
	}
	defer s.machine.Close()
	ranker, ok := s.model.(pretext.Ranker)
	if !ok {
		return nil, fmt.Errorf("train: evaluate: task %s is not a classifier", cfg.Task)
	}
	s.mode.Training = false
	n := ds.Len()
	if n == 0 {
		return nil, fmt.Errorf("train: evaluate: no images")
	}
	var top1, top5 int
	for lo := 0; lo < n; lo += cfg.Batch {
		idx := make([]int, cfg.Batch)
		real := 0
		for j := range idx {
			if lo+j < n {
				idx[j] = lo + j
				real++
			} else {
				idx[j] = n - 1 // pad the last batch; padded rows are not counted
			}
		}
		b, err := makeBatch(s.model, ds, heldOutIndices(s.model, idx), rand.New(rand.NewSource(0)))
		if err != nil {
			return nil, err
		}
		if err := s.model.Load(b); err != nil {
			return nil, err
		}
		if _, err := s.run(); err != nil {
			return nil, err
		}
		for _, r := range ranker.Ranks()[:real] {
			if r == 0 {
				top1++
			}
			if r < 5 {
				top5++
			}
		}
	}
	return &EvalResult{Top1: float64(top1) / float64(n), Top5: float64(top5) / float64(n), Images: n}, nil
}

// EvaluatePretext returns the pretext-task accuracy of a checkpoint on ds
// (inference mode, full batches only, fixed augmentation seed): the
// held-out figure the trainer reports at the end of a run, for any task.
// It also returns the number of images scored.
func EvaluatePretext(ck *Checkpoint, ds data.Dataset) (float64, int, error) {
	if ds.Len() < ck.Config.Batch {
		return 0, 0, fmt.Errorf("train: evaluate pretext: %d images, fewer than one batch of %d", ds.Len(), ck.Config.Batch)
	}
	s, err := build(ck.Config, ck, nil)
	if err != nil {
		return 0, 0, err
	}
	defer s.machine.Close()
	acc, err := s.evaluate(ds)
	return acc, (ds.Len() / ck.Config.Batch) * ck.Config.Batch, err
}
