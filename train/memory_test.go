package train

import (
	"bytes"
	"errors"
	"github.com/selfsup/selfsup/internal/testenv"
	"strings"
	"testing"
)

// Regression (issue 16): a configuration whose step cannot fit used to grow
// until the OOM killer or a segfault ended the process; Run now refuses it
// before the first step with one line naming the need, the free memory and
// the flags to lower.
func TestRunRefusesWhatDoesNotFit(t *testing.T) {
	saved := availableMemory
	defer func() { availableMemory = saved }()
	availableMemory = func() (int64, string, bool) { return 50 << 20, "test limit", true }
	dir := t.TempDir()
	var log bytes.Buffer
	_, err := Run(tinyConfig("rotation"), blobs(32, 1, 12, 1), nil, dir, Options{Progress: &log})
	if !errors.Is(err, ErrMemory) {
		t.Fatalf("err = %v, want ErrMemory", err)
	}
	msg := err.Error()
	for _, want := range []string{"resnet20c", "batch 8", "12 px", "50 MB free", "--batch", "--size"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans lines: %q", msg)
	}
}

func TestGraphEstimateGrowsWithBatch(t *testing.T) {
	est := func(batch int) int64 {
		cfg := tinyConfig("rotation")
		cfg.Batch = batch
		s, err := build(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.machine.Close()
		b, _ := graphBytes(s.model.Loss().Graph())
		return b
	}
	a, b := est(4), est(16)
	if a <= 0 || b < 3*a {
		t.Fatalf("estimate at batch 4: %d, at 16: %d; want positive and about 4x", a, b)
	}
}

func TestSystemAvailableMemory(t *testing.T) {
	free, what, ok := systemAvailableMemory()
	if !ok {
		testenv.Skip(t, testenv.ProcMeminfo, "no /proc/meminfo: not Linux")
	}
	if free <= 0 || what == "" {
		t.Fatalf("free %d (%s)", free, what)
	}
}
