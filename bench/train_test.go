package bench

import (
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
)

// Both engines time a tiny network; the stock engine's BLAS choice does
// not outlive the measurement.
func TestTrainEngines(t *testing.T) {
	before := G.WhichBLAS()
	for _, c := range []TrainConfig{
		{Arch: "resnet20c", Engine: "fast", Batch: 2, Size: 16, Steps: 1},
		{Arch: "resnet20c", Engine: "stock", StockBLAS: "gonum", Batch: 2, Size: 16, Steps: 1},
		{Arch: "resnet20c", Engine: "stock", StockBLAS: "openblas", Batch: 2, Size: 16, Steps: 1},
	} {
		r, err := Train(c)
		if err != nil {
			if c.StockBLAS == "openblas" {
				t.Logf("%+v: %v (a build without OpenBLAS)", c, err)
				continue
			}
			t.Fatalf("%+v: %v", c, err)
		}
		if r.Engine != c.Engine || r.Steps != 1 || !(r.ImagesPerSec > 0) || math.Abs(r.ImagesPerSec*r.StepSeconds-2) > 1e-9 {
			t.Errorf("%+v: %+v", c, r)
		}
		if G.WhichBLAS() != before {
			t.Errorf("%+v left Gorgonia's BLAS changed", c)
		}
	}
	if _, err := Train(TrainConfig{Arch: "resnet20c", Engine: "turbo", Batch: 1, Steps: 1}); err == nil {
		t.Error("an unknown engine accepted")
	}
}
