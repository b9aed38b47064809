package bench

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/selfsup/selfsup/internal/testenv"
)

// writeTask writes one thread's schedstat and status under proc/task/tid.
func writeTask(t *testing.T, proc, tid, schedstat string, vol, invol int) {
	t.Helper()
	dir := filepath.Join(proc, "task", tid)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	status := "Name:\tselfsup\nvoluntary_ctxt_switches:\t" + itoa(vol) + "\nnonvoluntary_ctxt_switches:\t" + itoa(invol) + "\n"
	for name, body := range map[string]string{"schedstat": schedstat, "status": status} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// The delta sums the threads present at both ends and ignores the rest.
func TestSchedDelta(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeTask(t, a, "10", "1000000000 200000000 50\n", 7, 1)
	writeTask(t, a, "11", "500000000 0 3\n", 2, 0)
	writeTask(t, a, "12", "1 1 1\n", 1, 1) // exits before b
	writeTask(t, b, "10", "3000000000 700000000 90\n", 107, 5)
	writeTask(t, b, "11", "600000000 100000000 4\n", 12, 2)
	writeTask(t, b, "13", "9000000000 9000000000 9\n", 99, 99) // starts after a
	s := schedDelta(schedSnapshot(a), schedSnapshot(b))
	if s == nil {
		t.Fatal("no delta")
	}
	want := SchedStats{RunSeconds: 2.1, RunQueueWaitSeconds: 0.6, VoluntarySwitches: 110, InvoluntarySwitches: 6, Threads: 2}
	if math.Abs(s.RunSeconds-want.RunSeconds) > 1e-9 || math.Abs(s.RunQueueWaitSeconds-want.RunQueueWaitSeconds) > 1e-9 ||
		s.VoluntarySwitches != want.VoluntarySwitches || s.InvoluntarySwitches != want.InvoluntarySwitches || s.Threads != want.Threads {
		t.Fatalf("delta %+v, want %+v", *s, want)
	}
	if schedDelta(nil, schedSnapshot(b)) != nil || schedSnapshot(filepath.Join(a, "absent")) != nil {
		t.Fatal("a missing snapshot gave a delta")
	}
}

// On Linux the process's own threads are read, and spinning shows up as
// run time of this process.
func TestSchedSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		testenv.Skip(t, testenv.ProcStat, "reading per-thread scheduler statistics: %v", err)
	}
	a := schedSnapshot("/proc/self")
	if a == nil {
		testenv.Skip(t, testenv.ProcStat, "no /proc/self/task/*/schedstat")
	}
	x := 0
	for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); {
		x++
	}
	s := schedDelta(a, schedSnapshot("/proc/self"))
	if s == nil || s.Threads < 1 || s.RunSeconds <= 0 || s.RunQueueWaitSeconds < 0 || x == 0 {
		t.Fatalf("self delta %+v", s)
	}
}
