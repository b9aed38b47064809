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
