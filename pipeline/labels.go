package pipeline

import (
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/pretext"
	"github.com/selfsup/selfsup/train"
)

// applyLabels returns the training and held-out images of a pretraining
// run from the images of ds at tr and va (nil: no hold-out, every image
// trains) after c.Labels: the supervised task trains on the labelled
// images alone; a semi-supervised task trains on all of tr and finds the
// labelled ones in cfg.Pretext.Semi. A fraction or a count picks the
// labelled images among tr (class-balanced, by cfg.Seed), so that the
// supervised and the semi-supervised runs of one seed share them; a file
// may also name held-out images, which then train instead.
func applyLabels(c PretrainConfig, cfg *train.Config, ds data.Dataset, tr, va []int, log io.Writer) (data.Dataset, data.Dataset, error) {
	semi := pretext.IsSemi(cfg.Task)
	if c.Labels == "" && !semi && tr == nil {
		return ds, nil, nil
	}
	if tr == nil {
		tr = make([]int, ds.Len())
		for i := range tr {
			tr[i] = i
		}
	}
	if c.Labels == "" {
		if semi {
			return nil, nil, fmt.Errorf("pretrain: task %s needs --labels (a fraction, a count or a file of image paths)", cfg.Task)
		}
		return data.Subset(ds, tr), subsetOrNil(ds, va), nil
	}
	if !semi && cfg.Task != "supervised" {
		return nil, nil, fmt.Errorf("pretrain: --labels is for the supervised and semi-supervised tasks, not %s", cfg.Task)
	}
	if !(c.UnsupWeight >= 0) {
		return nil, nil, fmt.Errorf("pretrain: --unsup-weight %g, expected >= 0", c.UnsupWeight)
	}
	var lab []int // indices of ds
	if _, err := strconv.ParseFloat(c.Labels, 64); err == nil {
		sub, err := data.LabelledSubset(data.Subset(ds, tr), c.Labels, cfg.Seed)
		if err != nil {
			return nil, nil, err
		}
		for _, i := range sub {
			lab = append(lab, tr[i])
		}
	} else {
		var err error
		if lab, err = data.LabelledSubset(ds, c.Labels, cfg.Seed); err != nil {
			return nil, nil, err
		}
		listed := map[int]bool{}
		for _, i := range lab {
			listed[i] = true
		}
		var keep []int
		for _, i := range va {
			if listed[i] {
				tr = append(tr, i)
			} else {
				keep = append(keep, i)
			}
		}
		if moved := len(va) - len(keep); moved > 0 {
			sort.Ints(tr)
			fmt.Fprintf(log, "labels: %d of the listed images were among the held-out ones; they train instead\n", moved)
		}
		va = keep
	}
	perClass := map[int]int{}
	for _, i := range lab {
		perClass[ds.Label(i)]++
	}
	fmt.Fprintf(log, "labels (%s): %d labelled training images, %d classes, %d to %d a class\n", c.Labels, len(lab), len(perClass), minCount(perClass), maxCount(perClass))
	cfg.Labels = c.Labels
	if !semi {
		// The kNN monitor's "once an epoch" would be every few steps on a
		// few hundred images and eat a budget run: keep the cadence of an
		// epoch of the whole training split, as the semi-supervised run has.
		if cfg.KNNEvery == 0 {
			cfg.KNNEvery = max(1, len(tr)/max(1, cfg.Batch))
		}
		return data.Subset(ds, lab), subsetOrNil(ds, va), nil
	}
	pos := make([]int, len(lab))
	for k, i := range lab {
		pos[k] = sort.SearchInts(tr, i)
	}
	cfg.Pretext.Semi = &pretext.SemiConfig{Labelled: pos, UnsupWeight: c.UnsupWeight, Seed: cfg.Seed}
	return data.Subset(ds, tr), subsetOrNil(ds, va), nil
}

func subsetOrNil(ds data.Dataset, idx []int) data.Dataset {
	if len(idx) == 0 {
		return nil
	}
	return data.Subset(ds, idx)
}

func minCount(m map[int]int) int {
	out := -1
	for _, v := range m {
		if out < 0 || v < out {
			out = v
		}
	}
	return out
}

func maxCount(m map[int]int) int {
	out := 0
	for _, v := range m {
		out = max(out, v)
	}
	return out
}
