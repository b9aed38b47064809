package train

import (
	"fmt"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/pretext"
)

// weakSets returns the training images with the labels the model trains
// on (cfg.Weak applied, flips included) and the held-out images with the
// labels it is scored on (coarse classes, no flips); without cfg.Weak, ds
// and val as they are.
func weakSets(cfg Config, task pretext.Task, ds, val data.Dataset) (data.Dataset, data.Dataset, error) {
	if cfg.Weak == nil {
		return ds, val, nil
	}
	if !task.NeedsLabels() {
		return nil, nil, fmt.Errorf("train: weak labels (%s) need a task trained on labels; %s is not", cfg.Weak.Spec, cfg.Task)
	}
	w, err := cfg.Weak.Apply(ds, cfg.Seed, true)
	if err != nil {
		return nil, nil, err
	}
	if n := len(w.Classes()); cfg.Pretext.NumClasses != n {
		return nil, nil, fmt.Errorf("train: weak labels %s have %d classes, the config %d (Pretext.NumClasses)", cfg.Weak.Spec, n, cfg.Pretext.NumClasses)
	}
	if val == nil {
		return w, nil, nil
	}
	v, err := cfg.Weak.Apply(val, cfg.Seed, false)
	return w, v, err
}
