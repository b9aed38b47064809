package bench

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/selfsup/selfsup/internal/testenv"
)

// cpuTicks is a process's user + system time in clock ticks, from
// /proc/PID/stat.
func cpuTicks(t *testing.T, pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}

// The competing load really burns CPU, and stop ends it.
func TestContend(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		testenv.Skip(t, testenv.ProcStat, "reading a process's CPU time: %v", err)
	}
	pids, stop, err := Contend(1)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if len(pids) != 1 {
		t.Fatalf("pids %v", pids)
	}
	deadline := time.Now().Add(10 * time.Second)
	for cpuTicks(t, pids[0]) < 10 { // 0.1 s of CPU at 100 ticks/s
		if time.Now().After(deadline) {
			t.Fatalf("the busy loop used %d ticks in 10 s", cpuTicks(t, pids[0]))
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	stop()
	if _, err := os.Stat("/proc/" + strconv.Itoa(pids[0])); err == nil {
		t.Fatalf("process %d still there after stop", pids[0])
	}
}
