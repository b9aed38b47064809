package ops

import (
	"runtime"
	"testing"
)

// TestConcurrentlyKeepsKernelsWhole checks that the Go kernels split over
// the cores while streams are merely open (a bank warm start or an
// evaluation between two steps runs then) and run in one piece only
// inside Concurrently, where the streams' graphs run at the same time.
func TestConcurrentlyKeepsKernelsWhole(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	s, err := NewStream(1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if w := Workers(100); w != 2 {
		t.Fatalf("a stream open, nothing running on it: %d workers, expected 2", w)
	}
	Concurrently(func() {
		if w := Workers(100); w != 1 {
			t.Fatalf("inside Concurrently: %d workers, expected 1", w)
		}
	})
	if w := Workers(100); w != 2 {
		t.Fatalf("after Concurrently: %d workers, expected 2", w)
	}
}
