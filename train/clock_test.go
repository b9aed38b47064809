package train

import (
	"strings"
	"testing"
	"time"
)

// The CPU clock stands still while the process sleeps and advances with
// the CPU time it burns, divided by the thread count.
func TestCPUClock(t *testing.T) {
	c1, c2 := CPUClock(1), CPUClock(2)
	a1, a2 := c1(), c2()
	time.Sleep(300 * time.Millisecond)
	if d := c1().Sub(a1); d > 100*time.Millisecond {
		t.Fatalf("CPU clock advanced %v while the process slept 300ms", d)
	}
	b1, b2 := c1(), c2()
	spinCPU(400 * time.Millisecond)
	d1, d2 := c1().Sub(b1), c2().Sub(b2)
	if d1 < 300*time.Millisecond {
		t.Fatalf("CPU clock advanced %v over 400ms of CPU work, want >= 300ms", d1)
	}
	if r := float64(d2) / float64(d1); r < 0.4 || r > 0.6 {
		t.Fatalf("clock over 2 threads advanced %v, over 1 thread %v: ratio %.2f, want 0.5", d2, d1, r)
	}
	if d := c2().Sub(a2); d < d2 {
		t.Fatalf("clock went backwards: %v since start < %v since the spin began", d, d2)
	}
}

// spinCPU keeps one core busy until the process has used d more CPU time.
func spinCPU(d time.Duration) {
	start := processCPU()
	x := 1.0
	for processCPU()-start < d {
		for i := 0; i < 100000; i++ {
			x = x*1.0000001 + 1e-9
		}
	}
	_ = x
}

func TestBudgetClockValidated(t *testing.T) {
	cfg := DefaultConfig("rotation", "resnet20c")
	cfg.Pretext.Channels, cfg.Pretext.InputSize = 3, 32
	cfg.BudgetClock = "sundial"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), `"sundial"`) {
		t.Fatalf("want an error naming the bad clock, got %v", err)
	}
	for _, ok := range []string{"", BudgetWall, BudgetCPU} {
		cfg.BudgetClock = ok
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%q: %v", ok, err)
		}
	}
}
