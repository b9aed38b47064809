package eval

import (
	"fmt"

	"github.com/selfsup/selfsup/data"
)

// PixelFeatures returns the raw-pixel baseline features of ds, [ds.Len(),
// C*H*W]: each image scaled to [0, 1], normalised per channel as
// (x - mean[c]) / std[c] and flattened in [channels, height, width] order.
// Every image must have the shape of the first (convert and resize with
// data.Convert first). Images are decoded on workers goroutines (<= 0:
// GOMAXPROCS); the result does not depend on their number.
func PixelFeatures(ds data.Dataset, mean, std []float32, workers int) ([]float32, int, error) {
	n := ds.Len()
	if n == 0 {
		return nil, 0, fmt.Errorf("eval: raw pixels: empty dataset")
	}
	first, err := ds.Image(0)
	if err != nil {
		return nil, 0, fmt.Errorf("eval: raw pixels: %s: %w", ds.Source(0), err)
	}
	if len(mean) != first.C || len(std) != first.C {
		return nil, 0, fmt.Errorf("eval: raw pixels: %d means and %d deviations for %d-channel images", len(mean), len(std), first.C)
	}
	for c, s := range std {
		if !(s > 0) {
			return nil, 0, fmt.Errorf("eval: raw pixels: std[%d] = %v, want > 0", c, s)
		}
	}
	d := first.C * first.H * first.W
	out := make([]float32, n*d)
	errs := make([]error, n)
	parallelFor(n, defaultWorkers(workers), func(_, i int) {
		img, err := ds.Image(i)
		if err != nil {
			errs[i] = fmt.Errorf("eval: raw pixels: %s: %w", ds.Source(i), err)
			return
		}
		if img.C != first.C || img.H != first.H || img.W != first.W {
			errs[i] = fmt.Errorf("eval: raw pixels: %s is %dx%dx%d, the first image %dx%dx%d", ds.Source(i), img.C, img.H, img.W, first.C, first.H, first.W)
			return
		}
		row := out[i*d : (i+1)*d]
		hw := img.H * img.W
		for c := 0; c < img.C; c++ {
			m, s := mean[c], std[c]
			for j, p := range img.Pix[c*hw : (c+1)*hw] {
				row[c*hw+j] = (float32(p)/255 - m) / s
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, 0, err
		}
	}
	return out, d, nil
}
