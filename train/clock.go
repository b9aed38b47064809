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
	// system) divided by GOMAXPROCS: 45m on 2 cores is 90 CPU-minutes.
	// Other work on the machine makes the run take longer but not do
	// less, so the rows of a comparison stay comparable while the machine
	// does something else, and every method gets the same compute. A run
	// that keeps its cores only partly busy takes longer than the budget
	// in wall time even on a quiet machine (by the inverse of its core
	// utilisation: resnet20c keeps 2 cores 55-80% busy), so results
	// record the wall time too.
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
