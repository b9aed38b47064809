package pretext

import (
	"fmt"
	"math/rand"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// This file holds what the pretext evaluations (Evaluate, Picture) of the
// dense-prediction tasks share: checking a checkpoint's heads, building the
// task in inference mode and running it batch by batch.

// checkHeads returns an error naming the first of names (each under
// prefix) that heads lacks; task names the evaluation ("colorization") and
// kind the checkpoint with its article ("a colorization").
func checkHeads(task, kind string, heads models.Weights, prefix string, names ...string) error {
	for _, name := range names {
		if _, ok := heads[prefix+name]; !ok {
			return fmt.Errorf("pretext: evaluate %s: head weights lack %s%s (not %s checkpoint?)", task, prefix, name, kind)
		}
	}
	return nil
}

// buildInfer builds task t for arch (with the given input channels) on a
// new graph in inference mode from the backbone and head weights, for
// batch rows, and returns the model and a machine that runs it (the
// caller closes it); rng goes to t.Build.
func buildInfer(t Task, arch string, channels int, backbone, heads models.Weights, cfg Config, batch int, rng *rand.Rand) (Model, G.VM, error) {
	spec, err := models.New(arch, channels)
	if err != nil {
		return nil, nil, err
	}
	g := G.NewGraph()
	bb, err := models.NewBackbone(g, spec, backbone, tensor.Float32, &ops.Mode{Training: false})
	if err != nil {
		return nil, nil, err
	}
	mod, err := t.Build(bb, batch, cfg, heads, rng)
	if err != nil {
		return nil, nil, err
	}
	return mod, G.NewTapeMachine(g), nil
}

// runBatches runs m on vm over n inputs in batches of batch: for the
// batch starting at input lo with real rows of n (the rest padding), load
// returns its inputs, and visit sees it after the run. task and unit name
// the evaluation and the inputs in errors ("colorization", "images").
func runBatches(task, unit string, m Model, vm G.VM, n, batch int, load func(lo, real int) (*Batch, error), visit func(b *Batch, lo, real int) error) error {
	for lo := 0; lo < n; lo += batch {
		real := min(batch, n-lo)
		b, err := load(lo, real)
		if err != nil {
			return err
		}
		if err := m.Load(b); err != nil {
			return err
		}
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			return fmt.Errorf("pretext: evaluate %s: %s %d-%d: %w", task, unit, lo, lo+real-1, err)
		}
		if err := visit(b, lo, real); err != nil {
			return err
		}
	}
	return nil
}

// batchImages reads the batch of batch images of ds starting at lo,
// repeating image n-1 past it; rgb: each must have 3 channels. task names
// the evaluation in errors.
func batchImages(task string, ds data.Dataset, lo, n, batch int, rgb bool) ([]data.Image, error) {
	imgs := make([]data.Image, batch)
	for j := range imgs {
		var err error
		if imgs[j], err = ds.Image(min(lo+j, n-1)); err != nil {
			return nil, fmt.Errorf("pretext: evaluate %s: image %d: %w", task, min(lo+j, n-1), err)
		}
		if rgb && imgs[j].C != 3 {
			return nil, fmt.Errorf("pretext: evaluate %s: %s has %d channels, expected 3 (RGB)", task, ds.Source(min(lo+j, n-1)), imgs[j].C)
		}
	}
	return imgs, nil
}
