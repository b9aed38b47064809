package bench

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/selfsup/selfsup/train"
)

// SchedStats is where a process's threads spent a measured interval, from
// Linux's per-thread schedstat (/proc/self/task/*/schedstat, and the
// context-switch counts in status), summed over the threads alive at both
// ends of it. RunQueueWaitSeconds is time a thread was runnable but not
// running: the share other work took from us. VoluntarySwitches counts a
// thread going to sleep (a wait at a barrier or a channel), after which
// it must be scheduled back; InvoluntarySwitches counts preemptions.
type SchedStats struct {
	RunSeconds          float64 `json:"run_s"`
	RunQueueWaitSeconds float64 `json:"runqueue_wait_s"`
	VoluntarySwitches   int64   `json:"voluntary_switches"`
	InvoluntarySwitches int64   `json:"involuntary_switches"`
	Threads             int     `json:"threads"`
}

// threadSched is one thread's counters at one moment.
type threadSched struct {
	runNS, waitNS, vol, invol int64
}

// schedSnapshot reads every thread of the process; nil where the kernel
// has no schedstat (not Linux, or built without it).
func schedSnapshot(proc string) map[string]threadSched {
	ents, err := os.ReadDir(filepath.Join(proc, "task"))
	if err != nil {
		return nil
	}
	snap := map[string]threadSched{}
	for _, e := range ents {
		dir := filepath.Join(proc, "task", e.Name())
		b, err := os.ReadFile(filepath.Join(dir, "schedstat"))
		if err != nil {
			continue // the thread has exited
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		var t threadSched
		t.runNS, _ = strconv.ParseInt(f[0], 10, 64)
		t.waitNS, _ = strconv.ParseInt(f[1], 10, 64)
		t.vol, _ = train.ProcField(filepath.Join(dir, "status"), "voluntary_ctxt_switches:")
		t.invol, _ = train.ProcField(filepath.Join(dir, "status"), "nonvoluntary_ctxt_switches:")
		snap[e.Name()] = t
	}
	if len(snap) == 0 {
		return nil
	}
	return snap
}

// schedDelta sums the change of every thread present in both snapshots;
// nil when either is.
func schedDelta(a, b map[string]threadSched) *SchedStats {
	if a == nil || b == nil {
		return nil
	}
	s := &SchedStats{}
	for tid, t1 := range b {
		t0, ok := a[tid]
		if !ok {
			continue
		}
		s.RunSeconds += float64(t1.runNS-t0.runNS) / 1e9
		s.RunQueueWaitSeconds += float64(t1.waitNS-t0.waitNS) / 1e9
		s.VoluntarySwitches += t1.vol - t0.vol
		s.InvoluntarySwitches += t1.invol - t0.invol
		s.Threads++
	}
	return s
}
