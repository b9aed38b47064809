package train

import (
	"fmt"
	"math/rand"
	"strings"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
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
	if pretext.IsSemi(cfg.Task) {
		ck = semiClassifier(ck)
		cfg = ck.Config
	}
	cfg.Pretext.NoAugment = true
	cfg.Streams = 1 // inference: one graph
	s, err := build(cfg, ck, nil)
	if err != nil {
		return nil, err
	}
	defer s.close()
	ev, _, err := s.classify(ds)
	return ev, err
}

// classify is Evaluate on a built session; it also returns each image's
// rank of its class.
func (s *session) classify(ds data.Dataset) (*EvalResult, []int, error) {
	cfg := s.cfg
	ranker, ok := s.model.(pretext.Ranker)
	if !ok {
		return nil, nil, fmt.Errorf("train: evaluate: task %s is not a classifier", cfg.Task)
	}
	s.mode.Training = false
	n := ds.Len()
	if n == 0 {
		return nil, nil, fmt.Errorf("train: evaluate: no images")
	}
	var top1, top5 int
	var ranks []int
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
			return nil, nil, err
		}
		if err := s.model.Load(b); err != nil {
			return nil, nil, err
		}
		if _, err := s.run(); err != nil {
			return nil, nil, err
		}
		ranks = append(ranks, ranker.Ranks()[:real]...)
		for _, r := range ranker.Ranks()[:real] {
			if r == 0 {
				top1++
			}
			if r < 5 {
				top5++
			}
		}
	}
	return &EvalResult{Top1: float64(top1) / float64(n), Top5: float64(top5) / float64(n), Images: n}, ranks, nil
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
	defer s.close()
	acc, err := s.evaluate(ds)
	return acc, (ds.Len() / ck.Config.Batch) * ck.Config.Batch, err
}

// semiClassifier returns a semi-supervised checkpoint as the supervised
// one of its classifier alone (head "head.class" as "head.fc", no
// self-supervised head or state): the same predictions without running
// the self-supervised half of the graph.
func semiClassifier(ck *Checkpoint) *Checkpoint {
	c := *ck
	c.Config.Task, c.Config.Pretext.Semi, c.State, c.Velocity = "supervised", nil, nil, nil
	c.Heads = models.Weights{}
	for k, v := range ck.Heads {
		if rest, ok := strings.CutPrefix(k, "head.class."); ok {
			c.Heads["head.fc."+rest] = v
		}
	}
	return &c
}
