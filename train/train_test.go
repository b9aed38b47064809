package train

import (
	"bytes"
	"errors"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/pretext"
)

// memSet is an in-memory labelled dataset of random-blob images.
type memSet struct {
	imgs   []data.Image
	labels []int
}

func (m *memSet) Len() int                        { return len(m.imgs) }
func (m *memSet) Image(i int) (data.Image, error) { return m.imgs[i], nil }
func (m *memSet) Label(i int) int                 { return m.labels[i] }
func (m *memSet) Classes() []string               { return []string{"a", "b"} }
func (m *memSet) Source(i int) string             { return "mem" }

// blobs makes n images of size s with an off-centre bright blob, so that
// rotation is learnable.
func blobs(n, c, s int, seed int64) *memSet {
	rng := rand.New(rand.NewSource(seed))
	m := &memSet{}
	for i := 0; i < n; i++ {
		img := data.Image{C: c, H: s, W: s, Pix: make([]uint8, c*s*s)}
		cy, cx := rng.Intn(s/3), s/2+rng.Intn(s/2)
		for ch := 0; ch < c; ch++ {
			for y := 0; y < s; y++ {
				for x := 0; x < s; x++ {
					v := 30 + rng.Intn(20)
					if (y-cy)*(y-cy)+(x-cx)*(x-cx) < s*s/16 {
						v = 220
					}
					img.Pix[(ch*s+y)*s+x] = uint8(v)
				}
			}
		}
		m.imgs = append(m.imgs, img)
		m.labels = append(m.labels, i%2)
	}
	return m
}

func tinyConfig(task string) Config {
	c := DefaultConfig(task, "resnet20c")
	c.Batch, c.Steps, c.CheckpointEvery, c.LogEvery, c.Seed = 8, 6, 2, 1, 3
	c.Pretext = pretext.DefaultConfig(1, 12)
	c.Pretext.NumClasses = 2
	c.WarmupSteps = 1
	return c
}

func TestRunWritesCheckpointAndMetrics(t *testing.T) {
	dir := t.TempDir()
	var log bytes.Buffer
	res, err := Run(tinyConfig("rotation"), blobs(32, 1, 12, 1), blobs(16, 1, 12, 2), dir, Options{Progress: &log})
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 6 || res.ImagesSeen != 48 {
		t.Fatalf("steps %d images %d, expected 6 and 48", res.Steps, res.ImagesSeen)
	}
	if math.IsNaN(res.FinalLoss) || res.FinalLoss <= 0 {
		t.Fatalf("final loss %v", res.FinalLoss)
	}
	ck, err := LoadCheckpoint(res.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Step != 6 || ck.Config.Task != "rotation" || len(ck.Velocity) == 0 || len(ck.Heads) != 2 {
		t.Fatalf("checkpoint: step %d task %q velocity %d heads %d", ck.Step, ck.Config.Task, len(ck.Velocity), len(ck.Heads))
	}
	spec, _ := models.New("resnet20c", 1)
	if err := spec.Validate(ck.Backbone); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "metrics.jsonl")); err != nil {
		t.Fatal(err)
	}
	// A second run into the same directory without --resume is refused.
	if _, err := Run(tinyConfig("rotation"), blobs(32, 1, 12, 1), nil, dir, Options{}); err == nil {
		t.Fatal("expected an error for a directory with checkpoints")
	}
}

// A run stopped mid-way and resumed ends with weights bit-identical to an
// uninterrupted run with the same seed.
func TestResumeIsBitIdentical(t *testing.T) {
	for _, task := range []string{"rotation", "supervised"} {
		ds := blobs(40, 1, 12, 4)
		full := t.TempDir()
		a, err := Run(tinyConfig(task), ds, nil, full, Options{})
		if err != nil {
			t.Fatal(err)
		}
		part := t.TempDir()
		if _, err := Run(tinyConfig(task), ds, nil, part, Options{StopAfter: 3}); err != nil {
			t.Fatal(err)
		}
		// Truncate a newer, half-written checkpoint: resume must skip it.
		bad := filepath.Join(part, checkpointName(5))
		if err := os.WriteFile(bad, []byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\""), 0o644); err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		b, err := Run(tinyConfig(task), ds, nil, part, Options{Resume: true, Progress: &log})
		if err != nil {
			t.Fatal(err)
		}
		if !b.Resumed || !bytes.Contains(log.Bytes(), []byte("ignoring unreadable checkpoint")) {
			t.Fatalf("%s: resumed %v, log:\n%s", task, b.Resumed, log.String())
		}
		ca, err := LoadCheckpoint(a.Checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		cb, err := LoadCheckpoint(b.Checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		for _, grp := range [][2]models.Weights{{ca.Backbone, cb.Backbone}, {ca.Heads, cb.Heads}, {ca.Velocity, cb.Velocity}} {
			for name, ta := range grp[0] {
				tb := grp[1][name]
				if len(ta.Data) != len(tb.Data) {
					t.Fatalf("%s: %s: sizes differ", task, name)
				}
				for i := range ta.Data {
					if math.Float32bits(ta.Data[i]) != math.Float32bits(tb.Data[i]) {
						t.Fatalf("%s: %s[%d]: uninterrupted %v, resumed %v", task, name, i, ta.Data[i], tb.Data[i])
					}
				}
			}
		}
	}
}

func TestNaNLossStopsAndKeepsLastGoodCheckpoint(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig("rotation")
	cfg.LR = 1e30 // diverges within a few steps
	cfg.CheckpointEvery = 1
	_, err := Run(cfg, blobs(32, 1, 12, 1), nil, dir, Options{})
	if !errors.Is(err, ErrNonFinite) {
		t.Fatalf("expected a non-finite loss error, got %v", err)
	}
	c, _, _, err := LatestCheckpoint(dir)
	if err != nil {
		t.Fatalf("last good checkpoint: %v", err)
	}
	for name, w := range c.Backbone {
		for _, v := range w.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("checkpoint at step %d holds non-finite %s", c.Step, name)
			}
		}
	}
}

func TestTruncatedCheckpointError(t *testing.T) {
	dir := t.TempDir()
	res, err := Run(tinyConfig("rotation"), blobs(32, 1, 12, 1), nil, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(res.Checkpoint)
	half := filepath.Join(dir, "half.safetensors")
	os.WriteFile(half, b[:len(b)/2], 0o644)
	_, err = LoadCheckpoint(half)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("truncated")) {
		t.Fatalf("expected a truncation error, got %v", err)
	}
}

func TestCosineLR(t *testing.T) {
	if v := CosineLR(1, 0, 100, 10); math.Abs(v-0.1) > 1e-12 {
		t.Errorf("warm-up start %v", v)
	}
	if v := CosineLR(1, 10, 110, 10); v != 1 {
		t.Errorf("peak %v", v)
	}
	if v := CosineLR(1, 60, 110, 10); math.Abs(v-0.5) > 1e-12 {
		t.Errorf("half-way %v", v)
	}
	if v := CosineLR(1, 110, 110, 10); math.Abs(v) > 1e-12 {
		t.Errorf("end %v", v)
	}
}

// A budget run fits its length to the measured step time and stays within
// the budget.
func TestBudgetRun(t *testing.T) {
	cfg := tinyConfig("rotation")
	cfg.Steps, cfg.BudgetSeconds, cfg.CheckpointEvery = 0, 2, 0
	res, err := Run(cfg, blobs(64, 1, 12, 1), nil, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps <= 12 || res.Seconds > 2*1.15 {
		t.Fatalf("budget 2s: %d steps in %.2fs", res.Steps, res.Seconds)
	}
	ck, err := LoadCheckpoint(res.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Config.Steps != res.Steps {
		t.Fatalf("checkpoint config says %d steps, run did %d", ck.Config.Steps, res.Steps)
	}
}
