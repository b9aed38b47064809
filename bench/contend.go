package bench

import (
	"fmt"
	"os/exec"
	"syscall"
)

// Contend starts n competing processes, each a shell busy loop that keeps
// one core busy at the default priority: the documented load of `bench
// train --contend N` (and of issue 17's targets). stop kills them and
// waits for them; it is safe to call more than once. The PIDs are
// returned for the record.
func Contend(n int) (pids []int, stop func(), err error) {
	var cmds []*exec.Cmd
	stop = func() {
		for _, c := range cmds {
			if c.Process != nil {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
		}
		cmds = nil
	}
	for i := 0; i < n; i++ {
		c := exec.Command("/bin/sh", "-c", "while :; do :; done")
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the benchmark
		if err := c.Start(); err != nil {
			stop()
			return nil, func() {}, fmt.Errorf("bench: --contend: starting a busy loop: %w", err)
		}
		cmds = append(cmds, c)
		pids = append(pids, c.Process.Pid)
	}
	return pids, stop, nil
}
