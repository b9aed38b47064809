package pretext_test

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/pretext"
	"github.com/selfsup/selfsup/train"
)

func synConfig(steps int, adapt string) train.Config {
	cfg := train.DefaultConfig("synthetic", "resnet20c")
	cfg.Batch, cfg.Steps, cfg.CheckpointEvery, cfg.LogEvery, cfg.Seed, cfg.WarmupSteps = 4, steps, 2, 1, 5, 1
	cfg.Pretext = pretext.DefaultConfig(3, 16)
	if adapt != "" {
		cfg.Pretext.Synthetic = &pretext.SyntheticConfig{Adapt: adapt}
	}
	return cfg
}

// A synthetic run stopped mid-way and resumed ends bit-identical to an
// uninterrupted one, with and without domain adaptation: the scenes (and
// the real images) come from the steps' generators. The run's config
// holds the resolved synthetic settings, and the metrics log the loss
// terms (and the discriminator's accuracy with adaptation).
func TestSyntheticResumeIsBitIdentical(t *testing.T) {
	tarPath := filepath.Join(t.TempDir(), "real.tar")
	testenv.ToyTar(t, tarPath, 10, 2, false)
	ds := noise(12, 16, 1)
	for _, adapt := range []string{"", tarPath} {
		full := t.TempDir()
		a, err := train.Run(synConfig(6, adapt), ds, nil, full, train.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ca, err := train.LoadCheckpoint(a.Checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		sc := ca.Config.Pretext.Synthetic
		if sc == nil || sc.Width != 32 || sc.Adapt != adapt || (adapt != "") != (sc.AdaptImages == 10) {
			t.Fatalf("adapt %q: checkpoint's synthetic config %+v", adapt, sc)
		}
		m := readMetrics(t, full)
		last := m[len(m)-1]
		if _, ok := last["depth_l1"]; !ok || (adapt != "") != (last["disc_acc"] > 0 || last["disc_loss"] > 0) {
			t.Fatalf("adapt %q: metrics %v", adapt, last)
		}
		part := t.TempDir()
		if _, err := train.Run(synConfig(6, adapt), ds, nil, part, train.Options{StopAfter: 3}); err != nil {
			t.Fatal(err)
		}
		b, err := train.Run(synConfig(6, adapt), ds, nil, part, train.Options{Resume: true})
		if err != nil {
			t.Fatal(err)
		}
		cb, err := train.LoadCheckpoint(b.Checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		if !b.Resumed || cb.Step != 6 {
			t.Fatalf("adapt %q: resumed %v at step %d", adapt, b.Resumed, cb.Step)
		}
		for _, g := range []struct {
			name string
			a, b models.Weights
		}{{"backbone", ca.Backbone, cb.Backbone}, {"heads", ca.Heads, cb.Heads}, {"velocity", ca.Velocity, cb.Velocity}} {
			if len(g.a) != len(g.b) {
				t.Fatalf("adapt %q: %s has %d tensors, uninterrupted %d", adapt, g.name, len(g.b), len(g.a))
			}
			for k, v := range g.a {
				u := g.b[k].Data
				if len(u) != len(v.Data) {
					t.Fatalf("adapt %q: %s %s has %d values, expected %d", adapt, g.name, k, len(u), len(v.Data))
				}
				for i := range v.Data {
					if math.Float32bits(u[i]) != math.Float32bits(v.Data[i]) {
						t.Fatalf("adapt %q: %s %s[%d]: resumed %v, uninterrupted %v", adapt, g.name, k, i, u[i], v.Data[i])
					}
				}
			}
		}
	}
}
