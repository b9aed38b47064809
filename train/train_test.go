package train

import (
	"bytes"
	"errors"
	"github.com/selfsup/selfsup/internal/testenv"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

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
		p, err := Run(tinyConfig(task), ds, nil, part, Options{StopAfter: 3})
		if err != nil {
			t.Fatal(err)
		}
		// The training time before the stop travels in the checkpoint and
		// is added to the resumed process's: pretend it was long.
		cp, err := LoadCheckpoint(p.Checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Seconds <= 0 || cp.WallSeconds <= 0 || cp.Seconds > p.Seconds {
			t.Fatalf("%s: checkpoint at the stop records %g s (wall %g), the run reported %g", task, cp.Seconds, cp.WallSeconds, p.Seconds)
		}
		cp.Seconds, cp.WallSeconds = 1000, 2000
		if err := cp.Save(p.Checkpoint); err != nil {
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
		if b.Seconds < 1000 || b.Seconds > 1000+120 || b.WallSeconds < 2000 || b.WallSeconds > 2000+120 {
			t.Errorf("%s: resumed run reports %g s (wall %g), want 1000 (2000) plus its own", task, b.Seconds, b.WallSeconds)
		}
		sameCheckpoints(t, task, a.Checkpoint, b.Checkpoint)
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
	clock := simulatedSteps(t, func(int) time.Duration { return 100 * time.Millisecond })
	cfg := tinyConfig("rotation")
	cfg.Steps, cfg.BudgetSeconds, cfg.CheckpointEvery = 0, 2, 0
	res, err := Run(cfg, blobs(64, 1, 12, 1), nil, t.TempDir(), Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	// 100 ms a step (simulated): the step-12 estimate plans the rest of
	// 95% of the budget, (1.9 s - 1.2 s) / 100 ms = 7 more steps.
	if res.Steps < 17 || res.Steps > 19 || res.Seconds > 2*1.15 || res.Seconds < 0.85*2 {
		t.Fatalf("budget 2s at 100 ms a step: %d steps in %.2fs, want about 19 in 1.9s", res.Steps, res.Seconds)
	}
	ck, err := LoadCheckpoint(res.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Config.Steps != res.Steps {
		t.Fatalf("checkpoint config says %d steps, run did %d", ck.Config.Steps, res.Steps)
	}
}

// A budget run whose first steps are slow (load that goes away) measures
// its step time again and still uses most of its budget, instead of
// ending where the step-12 estimate put it.
func TestBudgetRunRemeasures(t *testing.T) {
	testenv.Short(t, "trains a few hundred tiny steps")
	clock := simulatedSteps(t, func(step int) time.Duration {
		if step >= 0 && step < 16 {
			return 100 * time.Millisecond
		}
		return 25 * time.Millisecond
	})
	cfg := tinyConfig("rotation")
	const budget = 3.0
	cfg.Steps, cfg.BudgetSeconds, cfg.CheckpointEvery, cfg.KNNEvery = 0, budget, 0, -1
	res, err := Run(cfg, blobs(64, 1, 12, 1), nil, t.TempDir(), Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	// Without measuring again, the step-12 estimate (100 ms a step) would
	// end the run after about 30 steps and 1.9 s.
	if res.Seconds < 0.75*budget || res.Seconds > 1.15*budget {
		t.Fatalf("budget %.0fs with slow first steps: %d steps in %.2fs", budget, res.Steps, res.Seconds)
	}
}

// fakeClock is a simulated clock for the budget planner: it moves only
// when a test moves it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// simulatedSteps returns a clock that advances by cost(step) at each
// training step (and cost(-1) for the budget calibration's timed pass),
// whatever the machine's real speed and load.
func simulatedSteps(t *testing.T, cost func(step int) time.Duration) *fakeClock {
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	testStepHook = func(step int) { c.advance(cost(step)) }
	t.Cleanup(func() { testStepHook = nil })
	return c
}

// Fine-tuning starts from given backbone weights; Evaluate scores the
// classifier without augmentation, and its top-1 agrees with the labels of
// a set the classifier has memorised.
func TestFinetuneAndEvaluate(t *testing.T) {
	ds := blobs(16, 1, 12, 5)
	pre, err := Run(tinyConfig("rotation"), ds, nil, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ckPre, _ := LoadCheckpoint(pre.Checkpoint)
	cfg := tinyConfig("supervised")
	cfg.Steps, cfg.LR = 1, 1e-9 // a negligible step: the backbone must stay the pretrained one
	cfg.CheckpointEvery = 0
	res, err := Run(cfg, ds, nil, t.TempDir(), Options{InitBackbone: ckPre.Backbone})
	if err != nil {
		t.Fatal(err)
	}
	ck, _ := LoadCheckpoint(res.Checkpoint)
	w := ck.Backbone["stem.conv.weight"].Data
	w0 := ckPre.Backbone["stem.conv.weight"].Data
	for i := range w {
		if math.Abs(float64(w[i]-w0[i])) > 1e-6 {
			t.Fatalf("fine-tuned weights moved from the initial ones: %v vs %v", w[i], w0[i])
		}
	}
	ev, err := Evaluate(ck, ds)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Images != 16 || ev.Top1 < 0 || ev.Top1 > 1 || ev.Top5 != 1 { // 2 classes: top-5 always hits
		t.Fatalf("evaluate: %+v", ev)
	}
	// Train properly on a learnable set (class = blob in the top or the
	// bottom half): accuracy on it must become high.
	ud := &memSet{}
	rng := rand.New(rand.NewSource(6))
	for i := 0; i < 32; i++ {
		img := data.Image{C: 1, H: 12, W: 12, Pix: make([]uint8, 144)}
		cls := i % 2
		for y := 0; y < 12; y++ {
			for x := 0; x < 12; x++ {
				v := 30 + rng.Intn(20)
				if (cls == 0 && y < 5) || (cls == 1 && y >= 7) {
					v = 200 + rng.Intn(40)
				}
				img.Pix[y*12+x] = uint8(v)
			}
		}
		ud.imgs, ud.labels = append(ud.imgs, img), append(ud.labels, cls)
	}
	ds = ud
	cfg.Steps, cfg.LR, cfg.Batch = 60, 0.05, 8
	res, err = Run(cfg, ds, nil, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ck, _ = LoadCheckpoint(res.Checkpoint)
	if ev, err = Evaluate(ck, ds); err != nil || ev.Top1 < 0.8 {
		t.Fatalf("after training on it: %+v, %v", ev, err)
	}
	if _, err := Evaluate(ckPre, ds); err == nil {
		t.Fatal("expected an error evaluating a rotation checkpoint as a classifier")
	}
}

// sameCheckpoints loads two checkpoints and fails unless their backbone,
// heads, optimiser velocity and task state are equal bit for bit; it
// returns the first.
func sameCheckpoints(t *testing.T, task, pa, pb string) *Checkpoint {
	t.Helper()
	ca, err := LoadCheckpoint(pa)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := LoadCheckpoint(pb)
	if err != nil {
		t.Fatal(err)
	}
	for _, grp := range [][2]models.Weights{{ca.Backbone, cb.Backbone}, {ca.Heads, cb.Heads}, {ca.Velocity, cb.Velocity}, {ca.State, cb.State}} {
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
	return ca
}
