package train

import (
	"testing"

	"github.com/selfsup/selfsup/pretext"
)

// BenchmarkStep times one training step of rotation on resnet20c at 28 px
// with 64 source images (256 views).
func BenchmarkStep(b *testing.B) {
	cfg := DefaultConfig("rotation", "resnet20c")
	cfg.Pretext = pretext.DefaultConfig(1, 28)
	cfg.Steps = 1
	s, err := build(cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ds := blobs(64, 1, 28, 1)
	batch, err := makeBatch(s.model, ds, batchIndices(cfg, 64, 0), stepRNG(1, 0))
	if err != nil {
		b.Fatal(err)
	}
	if err := s.model.Load(batch); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.run(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cfg.Batch*b.N)/b.Elapsed().Seconds(), "img/s")
}

// BenchmarkSynthetic times the two halves of a synthetic training step on
// resnet20c at 32 px with 64 scenes: "batch" renders the scenes and their
// labels (pretext.Synthetic's MakeBatch, which the trainer's workers run
// ahead of the compute), "step" runs the graph forward and backward. Both
// report the process's CPU time per op (cpu-ms/op, all threads), which a
// loaded machine inflates less than the wall time.
func BenchmarkSynthetic(b *testing.B) {
	cfg := DefaultConfig("synthetic", "resnet20c")
	cfg.Pretext = pretext.DefaultConfig(3, 32)
	s, err := build(cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.machine.Close()
	ds := blobs(64, 3, 32, 1)
	idx := batchIndices(cfg, 64, 0)
	b.Run("batch", func(b *testing.B) {
		c0 := processCPU()
		for i := 0; i < b.N; i++ {
			if _, err := makeBatch(s.model, ds, idx, stepRNG(1, i)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(processCPU()-c0)/1e6/float64(b.N), "cpu-ms/op")
	})
	b.Run("step", func(b *testing.B) {
		batch, err := makeBatch(s.model, ds, idx, stepRNG(1, 0))
		if err != nil {
			b.Fatal(err)
		}
		if err := s.model.Load(batch); err != nil {
			b.Fatal(err)
		}
		if _, err := s.run(); err != nil { // warm-up
			b.Fatal(err)
		}
		b.ResetTimer()
		c0 := processCPU()
		for i := 0; i < b.N; i++ {
			if _, err := s.run(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(processCPU()-c0)/1e6/float64(b.N), "cpu-ms/op")
	})
}
