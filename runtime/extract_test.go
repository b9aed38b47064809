package runtime

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestExtractMatchesReference(t *testing.T) {
	s := openTiny(t, Options{IntraOpThreads: 1})
	const n = 37
	item := tinyC * tinyH * tinyW
	var calls atomic.Int64
	var progress [][2]int
	feats, dim, err := Extract(s, n, [3]int{tinyC, tinyH, tinyW}, func(i int, dst []float32) error {
		calls.Add(1)
		if len(dst) != item {
			return fmt.Errorf("dst has %d values, want %d", len(dst), item)
		}
		tinyImage(i, dst)
		return nil
	}, ExtractOptions{Batch: 8, Workers: 3, Progress: func(done, total int) {
		progress = append(progress, [2]int{done, total})
	}})
	if err != nil {
		t.Fatal(err)
	}
	if dim != tinyOut || len(feats) != n*tinyOut {
		t.Fatalf("dim %d, %d values; want %d, %d", dim, len(feats), tinyOut, n*tinyOut)
	}
	if calls.Load() != n {
		t.Errorf("load called %d times, want %d", calls.Load(), n)
	}
	x := make([]float32, item)
	for i := 0; i < n; i++ {
		tinyImage(i, x)
		_, want := tinyReference(x)
		assertClose(t, fmt.Sprintf("item %d", i), feats[i*dim:(i+1)*dim], want, 1e-5)
	}
	want := [][2]int{{8, n}, {16, n}, {24, n}, {32, n}, {37, n}}
	if fmt.Sprint(progress) != fmt.Sprint(want) {
		t.Errorf("progress calls %v, want %v", progress, want)
	}
}

func TestExtractOtherOutputAndDefaults(t *testing.T) {
	s := openTiny(t, Options{})
	const n = 5
	feats, dim, err := Extract(s, n, [3]int{tinyC, tinyH, tinyW}, func(i int, dst []float32) error {
		tinyImage(i, dst)
		return nil
	}, ExtractOptions{Output: "relu"})
	if err != nil {
		t.Fatal(err)
	}
	if dim != tinyOut*tinyH*tinyW || len(feats) != n*dim {
		t.Fatalf("dim %d, len %d", dim, len(feats))
	}
	x := make([]float32, tinyC*tinyH*tinyW)
	for i := 0; i < n; i++ {
		tinyImage(i, x)
		want, _ := tinyReference(x)
		assertClose(t, fmt.Sprintf("relu item %d", i), feats[i*dim:(i+1)*dim], want, 1e-5)
	}

	// No items: no calls, dim from the model's static output shape.
	feats, dim, err = Extract(s, 0, [3]int{tinyC, tinyH, tinyW}, func(int, []float32) error {
		t.Error("load called for n = 0")
		return nil
	}, ExtractOptions{})
	if err != nil || len(feats) != 0 || dim != tinyOut {
		t.Errorf("n=0: %d values, dim %d, %v; want 0, %d, nil", len(feats), dim, err, tinyOut)
	}
}

func TestExtractLoadError(t *testing.T) {
	s := openTiny(t, Options{IntraOpThreads: 1})
	const n, bad = 200, 20
	var inFlight, after atomic.Int64
	var returned atomic.Bool
	cause := errors.New("decode /data/cat/0020.jpg: unexpected EOF")
	_, _, err := Extract(s, n, [3]int{tinyC, tinyH, tinyW}, func(i int, dst []float32) error {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		if returned.Load() {
			after.Add(1)
		}
		time.Sleep(100 * time.Microsecond)
		if i == bad {
			return cause
		}
		tinyImage(i, dst)
		return nil
	}, ExtractOptions{Batch: 4, Workers: 4})
	returned.Store(true)
	if err == nil {
		t.Fatal("Extract succeeded despite a load error")
	}
	if !errors.Is(err, cause) || !strings.Contains(err.Error(), "item 20") || !strings.HasPrefix(err.Error(), "runtime: extract: ") {
		t.Errorf("error %q should start with \"runtime: extract: \", name item %d and wrap the load error", err, bad)
	}
	time.Sleep(10 * time.Millisecond)
	if inFlight.Load() != 0 || after.Load() != 0 {
		t.Errorf("load still running after Extract returned: %d in flight, %d calls after", inFlight.Load(), after.Load())
	}
}

func TestExtractArgumentErrors(t *testing.T) {
	s := openTiny(t, Options{})
	load := func(i int, dst []float32) error { tinyImage(i, dst); return nil }
	cases := []struct {
		name string
		chw  [3]int
		n    int
		opts ExtractOptions
		want string
	}{
		{"image shape", [3]int{3, 16, 16}, 2, ExtractOptions{}, "images are [C,H,W] = [3 16 16]"},
		{"output", [3]int{3, 8, 8}, 2, ExtractOptions{Output: "pool"}, `no output "pool"`},
		{"negative n", [3]int{3, 8, 8}, -1, ExtractOptions{}, "item count -1"},
		{"negative batch", [3]int{3, 8, 8}, 2, ExtractOptions{Batch: -2}, "must be >= 0"},
	}
	for _, c := range cases {
		if _, _, err := Extract(s, c.n, c.chw, load, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
	if _, _, err := Extract(nil, 1, [3]int{3, 8, 8}, load, ExtractOptions{}); err == nil {
		t.Error("nil session: no error")
	}
	closed, err := Open(tinyModel, Options{})
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if _, _, err := Extract(closed, 3, [3]int{3, 8, 8}, load, ExtractOptions{}); !errors.Is(err, errClosed) {
		t.Errorf("closed session: %v, want %v", err, errClosed)
	}
}

// BenchmarkExtractTiny measures the pipeline overhead on the tiny model.
func BenchmarkExtractTiny(b *testing.B) {
	if _, err := LibraryPath(); err != nil {
		b.Skip(err)
	}
	s, err := Open(tinyModel, Options{IntraOpThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	load := func(i int, dst []float32) error { tinyImage(i, dst); return nil }
	b.ResetTimer()
	for k := 0; k < b.N; k++ {
		if _, _, err := Extract(s, 1024, [3]int{tinyC, tinyH, tinyW}, load, ExtractOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(1024*b.N)/b.Elapsed().Seconds(), "img/s")
}
