package train

import (
	"fmt"
	"math/rand"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// RecalibOptions configures RecalibrateBN.
type RecalibOptions struct {
	// Images is the number of images the statistics are estimated from
	// (default 4096, or all of ds when it has fewer); they are drawn
	// without replacement with Seed.
	Images int
	// Batch is the number of images per forward pass (default 128). Only
	// whole batches are used, so every batch statistic has the same weight.
	Batch int
	Seed  int64
	// Channels, Size, Mean and Std are the preprocessing feature
	// extraction applies (the exported model's metadata): each image is
	// resized to Size x Size (data.Resize), scaled to [0, 1] and
	// normalised per channel. Space is the backbone's input space
	// (data.SpaceChannels): with data.SpaceLabL the images are RGB and
	// the backbone (Channels 1) sees their lightness (data.ToSpace).
	Channels, Size int
	Mean, Std      []float32
	Space          string
}

// RecalibrateBN re-estimates the running statistics of every batch norm of
// the backbone (spec, w) on whole images of ds, preprocessed as feature
// extraction does, and returns a copy of w with the new statistics; the
// learned weights are untouched. Each batch norm's running mean and
// (unbiased) variance become the cumulative average of its batch
// statistics over the batches (PyTorch's momentum=None), with the layers
// below it already recalibrated in the same pass. Pretext tasks train the
// backbone on tiles, rotated or colour-dropped views, whose statistics are
// not those of the images a probe feeds it; a random-init backbone ships
// mean 0 / variance 1. Both are re-estimated here, the same way, so a
// comparison between them is fair.
func RecalibrateBN(spec *models.Spec, w models.Weights, ds data.Dataset, opts RecalibOptions) (models.Weights, error) {
	if opts.Images <= 0 {
		opts.Images = 4096
	}
	if opts.Batch <= 0 {
		opts.Batch = 128
	}
	c, s := opts.Channels, opts.Size
	switch {
	case c != spec.InC:
		return nil, fmt.Errorf("train: batch-norm recalibration: images with %d channels for %s, which expects %d", c, spec.Arch, spec.InC)
	case s < 8:
		return nil, fmt.Errorf("train: batch-norm recalibration: input size %d, expected >= 8", s)
	case len(opts.Mean) != c || len(opts.Std) != c:
		return nil, fmt.Errorf("train: batch-norm recalibration: mean/std of %d/%d values for %d channels", len(opts.Mean), len(opts.Std), c)
	case ds == nil || ds.Len() == 0:
		return nil, fmt.Errorf("train: batch-norm recalibration: no images")
	}
	_, dc, err := data.SpaceChannels(opts.Space, c)
	if err != nil {
		return nil, fmt.Errorf("train: batch-norm recalibration: %w", err)
	}
	n := min(opts.Images, ds.Len())
	batch := min(opts.Batch, n)
	steps := n / batch
	idx := rand.New(rand.NewSource(opts.Seed*7_777 + 3)).Perm(ds.Len())[:steps*batch]

	g := G.NewGraph()
	mode := &ops.Mode{Training: true}
	bb, err := models.NewBackbone(g, spec, w, tensor.Float32, mode)
	if err != nil {
		return nil, err
	}
	per := c * s * s
	in := G.NewTensor(g, tensor.Float32, 4, G.WithShape(batch, c, s, s), G.WithName("recalib"),
		G.WithValue(tensor.New(tensor.WithShape(batch, c, s, s), tensor.Of(tensor.Float32))))
	if _, err := bb.Forward(in, "features"); err != nil {
		return nil, err
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	buf := in.Value().Data().([]float32)
	for k := 0; k < steps; k++ {
		for j, i := range idx[k*batch : (k+1)*batch] {
			img, err := ds.Image(i)
			if err != nil {
				return nil, fmt.Errorf("train: batch-norm recalibration: %w", err)
			}
			if img.C != dc {
				return nil, fmt.Errorf("train: batch-norm recalibration: %s has %d channels, expected %d", ds.Source(i), img.C, dc)
			}
			t, err := data.ToSpace(data.Resize(data.ToTensor(img), s, s), opts.Space)
			if err == nil {
				t, err = data.Normalize(t, opts.Mean, opts.Std)
			}
			if err != nil {
				return nil, err
			}
			copy(buf[j*per:(j+1)*per], t.Data)
		}
		bb.SetBNMomentum(1 / float64(k+1))
		m.Reset()
		if err := m.RunAll(); err != nil {
			return nil, fmt.Errorf("train: batch-norm recalibration: %w", err)
		}
	}
	out := models.Weights{}
	for k, v := range w {
		out[k] = v
	}
	for k, v := range bb.Weights() {
		if _, learned := w[k]; learned && !isRunningStat(k) {
			continue // learned weights stay exactly as given
		}
		out[k] = v
	}
	return out, nil
}

func isRunningStat(name string) bool {
	const m, v = ".running_mean", ".running_var"
	return len(name) > len(m) && name[len(name)-len(m):] == m || len(name) > len(v) && name[len(name)-len(v):] == v
}
