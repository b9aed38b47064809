package runtime

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPoolConcurrentRunsMatchReference(t *testing.T) {
	needLibrary(t)
	p, err := OpenPool(tinyModel, Options{IntraOpThreads: 1, DisableSpinning: true}, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Size() != 3 || p.Path() != tinyModel || p.Session() == nil {
		t.Fatalf("pool: size %d, path %q, session %v", p.Size(), p.Path(), p.Session())
	}
	hammer(t, p.Run, 12, 4, 10)
	if len(p.free) != 3 {
		t.Errorf("%d sessions free after all runs, want 3 (a session was not given back)", len(p.free))
	}
}

// TestPoolBorrowing checks that at most Size runs hold a session at once,
// that a caller waits for a free one, that the wait honours its context
// and that Close wakes waiting callers.
func TestPoolBorrowing(t *testing.T) {
	needLibrary(t)
	p, err := OpenPool(tinyModel, Options{IntraOpThreads: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := p.borrow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.borrow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("the pool lent the same session twice")
	}
	x, shape := tinyBatch(1), []int64{1, tinyC, tinyH, tinyW}

	// Both sessions lent: a run with a short deadline gives up.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = p.RunContext(short, x, shape)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("RunContext with every session lent: %v, want a deadline error", err)
	}

	// A waiting Run proceeds once a session comes back.
	var finished atomic.Bool
	got := make(chan error, 1)
	go func() {
		_, err := p.Run(x, shape, "features")
		finished.Store(true)
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if finished.Load() {
		t.Fatal("Run finished while every session was lent")
	}
	p.giveBack(a)
	if err := <-got; err != nil {
		t.Fatalf("Run after a session came back: %v", err)
	}

	// Close wakes a caller that waits for a session.
	c, err := p.borrow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := p.Run(x, shape)
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if !errors.Is(err, errPoolClosed) {
			t.Errorf("waiting Run after Close: %v, want %v", err, errPoolClosed)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake a caller waiting for a session")
	}
	_, _ = b, c
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := p.Run(x, shape); !errors.Is(err, errPoolClosed) {
		t.Errorf("Run after Close: %v, want %v", err, errPoolClosed)
	}
	for i, s := range p.sessions {
		if _, err := s.Run(x, shape); !errors.Is(err, errClosed) {
			t.Errorf("session %d after pool Close: Run gave %v, want %v", i, err, errClosed)
		}
	}
}

func TestPoolOpenErrorsAndZeroClose(t *testing.T) {
	needLibrary(t)
	if _, err := OpenPool(tinyModel, Options{}, 0); err == nil || !strings.Contains(err.Error(), "at least 1") {
		t.Errorf("OpenPool size 0: %v", err)
	}
	if _, err := OpenPool("testdata/missing.onnx", Options{}, 2); err == nil || !strings.Contains(err.Error(), "session 1 of 2") {
		t.Errorf("OpenPool on a missing file: %v, want an error naming session 1 of 2", err)
	}
	if _, err := OpenPool(tinyModel, Options{Device: "tpu"}, 2); err == nil {
		t.Error("OpenPool with an unknown device succeeded")
	}
	var zero Pool
	if err := zero.Close(); err != nil {
		t.Errorf("zero Pool Close: %v", err)
	}
	if err := zero.Close(); err != nil {
		t.Errorf("zero Pool second Close: %v", err)
	}
	if _, err := zero.Run(tinyBatch(1), []int64{1, 3, 8, 8}); !errors.Is(err, errPoolClosed) {
		t.Errorf("zero Pool Run: %v", err)
	}
	var nilPool *Pool
	if err := nilPool.Close(); err != nil {
		t.Errorf("nil Pool Close: %v", err)
	}
}
