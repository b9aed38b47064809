package train

import (
	"fmt"
	"runtime"
	"syscall"
	"time"
)

// Budget clocks (Config.BudgetClock).
const (
	// BudgetWall measures a budget in wall time: on a shared machine a
	// run gets fewer steps the busier the machine is.
	BudgetWall = "wall"
	// BudgetCPU measures a budget in the process's CPU time (user +
	// system) divided by GOMAXPROCS: the time the run would have taken
	// had it had every core to itself. Other work on the machine makes
	// the run take longer but not do less, so runs of a comparison stay
	// comparable while the machine does something else. On a quiet
	// machine the engine keeps its cores about 80% busy, so a CPU budget
	// takes about a quarter longer than the same wall budget.
	BudgetCPU = "cpu"
)

// checkBudgetClock validates a Config.BudgetClock ("" is wall).
func checkBudgetClock(s string) error {
	switch s {
	case "", BudgetWall, BudgetCPU:
		return nil
	}
	return fmt.Errorf("train: budget clock must be %q or %q, got %q", BudgetWall, BudgetCPU, s)
}

// processCPU returns the CPU time (user + system, all threads) the process
// has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// CPUClock returns a clock that advances by the process's CPU time divided
// by threads (<= 0: GOMAXPROCS): BudgetCPU's clock. It starts at the
// present wall time.
func CPUClock(threads int) func() time.Time {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	base, cpu0 := time.Now(), processCPU()
	return func() time.Time {
		return base.Add((processCPU() - cpu0) / time.Duration(threads))
	}
}
