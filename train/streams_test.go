package train

import (
	"errors"
	"math"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/pretext"
)

// A run on two streams resumes bit-identically: the copies' running
// batch-norm statistics are averaged after every step, and NPID's copies
// share one memory bank, so the first copy's checkpoint is the whole state.
func TestStreamsResumeIsBitIdentical(t *testing.T) {
	for _, task := range []string{"rotation", "npid"} {
		cfg := tinyConfig(task)
		cfg.Streams = 2
		ds := blobs(40, 1, 12, 4)
		a, err := Run(cfg, ds, blobs(16, 1, 12, 2), t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if math.IsNaN(a.FinalLoss) || a.FinalLoss <= 0 || a.Steps != 6 {
			t.Fatalf("%s: %+v", task, a)
		}
		part := t.TempDir()
		if _, err := Run(cfg, ds, nil, part, Options{StopAfter: 3}); err != nil {
			t.Fatal(err)
		}
		b, err := Run(cfg, ds, nil, part, Options{Resume: true})
		if err != nil {
			t.Fatal(err)
		}
		ca := sameCheckpoints(t, task, a.Checkpoint, b.Checkpoint)
		if ca.Config.Streams != 2 || (task == "npid") != (len(ca.State) > 0) {
			t.Fatalf("%s: checkpoint config streams %d, %d state tensors", task, ca.Config.Streams, len(ca.State))
		}
		// One stream (the same seed) trains differently: batch norm sees
		// halves, and each copy draws its own augmentation.
		c1, err := Run(tinyConfig(task), ds, nil, t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if c1.FinalLoss == a.FinalLoss {
			t.Fatalf("%s: one stream and two end at the same loss %v", task, a.FinalLoss)
		}
	}
}

// NPID's copies update one memory bank: after a step on two streams every
// image of the batch, from either copy's half, has its entry written.
func TestStreamsShareTheBank(t *testing.T) {
	cfg := tinyConfig("npid")
	cfg.Pretext.TrainImages = 8
	s, bs := twoStreams(t, cfg, blobs(8, 1, 12, 7))
	st0 := s.copyModels[0].(pretext.Stateful).State()
	st1 := s.copyModels[1].(pretext.Stateful).State()
	if !reflect.DeepEqual(st0, st1) {
		t.Fatal("the copies start with different banks")
	}
	if _, err := s.run(); err != nil {
		t.Fatal(err)
	}
	for r, m := range s.models() {
		if err := m.(pretext.StepHook).AfterStep(bs[r]); err != nil {
			t.Fatal(err)
		}
	}
	written := s.copyModels[1].(pretext.Stateful).State()["memory_bank_written"].Data
	for i, w := range written {
		if w != 1 {
			t.Fatalf("bank entry %d not written after a step that had its image (written flags %v)", i, written)
		}
	}
}

func TestStreamsRefused(t *testing.T) {
	cfg := tinyConfig("deepcluster")
	cfg.Streams = 2
	if _, err := Run(cfg, blobs(40, 1, 12, 4), nil, t.TempDir(), Options{}); !errors.Is(err, ErrStreams) || !strings.Contains(err.Error(), "--streams") {
		t.Fatalf("deepcluster on two streams: %v", err)
	}
	cfg = tinyConfig("rotation")
	cfg.Batch, cfg.Streams = 7, 2
	if err := cfg.Validate(); err == nil {
		t.Fatal("batch 7 on two streams accepted")
	}
}

// After a step the copies' running statistics differ (each saw its half);
// SyncBN gives every copy their average.
func TestStreamsSyncBN(t *testing.T) {
	s, _ := twoStreams(t, tinyConfig("rotation"), blobs(8, 1, 12, 5))
	if _, err := s.run(); err != nil {
		t.Fatal(err)
	}
	c0, c1 := s.copies.copies[0].bns, s.copies.copies[1].bns
	if len(c0) == 0 || len(c0) != len(c1) {
		t.Fatalf("%d and %d batch norms", len(c0), len(c1))
	}
	want := make([][]float32, len(c0))
	differ := false
	for i := range c0 {
		for j := range c0[i].Mean {
			want[i] = append(want[i], (c0[i].Mean[j]+c1[i].Mean[j])*0.5)
			differ = differ || c0[i].Mean[j] != c1[i].Mean[j]
		}
	}
	if !differ {
		t.Fatal("the copies' running means agree before syncing: the test shows nothing")
	}
	s.copies.SyncBN()
	for i := range c0 {
		for j, w := range want[i] {
			if c0[i].Mean[j] != w || c1[i].Mean[j] != w {
				t.Fatalf("batch norm %d channel %d: copies %v, %v after sync, average %v", i, j, c0[i].Mean[j], c1[i].Mean[j], w)
			}
		}
	}
}

// The copies' results do not depend on timing: running them one after
// another and at the same time gives the same averaged gradient, and the
// same second copy's, bit for bit.
func TestCopiesConcurrentBitExact(t *testing.T) {
	s, _ := twoStreams(t, tinyConfig("rotation"), blobs(8, 1, 12, 6))
	grads := func() [][]float32 {
		var out [][]float32
		for _, c := range s.copies.copies {
			for _, g := range c.grads {
				out = append(out, append([]float32(nil), g.Value().Data().([]float32)...))
			}
		}
		return out
	}
	s.copies.sequential = true
	if _, err := s.run(); err != nil {
		t.Fatal(err)
	}
	want := grads()
	s.copies.sequential = false
	for rep := 0; rep < 3; rep++ {
		if _, err := s.run(); err != nil {
			t.Fatal(err)
		}
		for i, g := range grads() {
			for j := range g {
				if math.Float32bits(g[j]) != math.Float32bits(want[i][j]) {
					t.Fatalf("run %d: gradient %d[%d] = %v at once, %v one after another", rep, i, j, g[j], want[i][j])
				}
			}
		}
	}
}

// twoStreams builds cfg (on two streams) and loads one batch of the eight
// images of ds into its copies.
func twoStreams(t *testing.T, cfg Config, ds *memSet) (*session, []*pretext.Batch) {
	t.Helper()
	cfg.Streams = 2
	s, err := build(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	bs, err := makeBatches(s.models(), ds, []int{0, 1, 2, 3, 4, 5, 6, 7}, func(r int) *rand.Rand { return copyRNG(cfg.Seed, 0, r, 2) })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.load(bs); err != nil {
		t.Fatal(err)
	}
	return s, bs
}
