package scene

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGenerate draws and renders one scene at 32 px per iteration
// (scene i of seed 1, i cycling over 256 scenes), as the synthetic task
// does for every image of a batch. cpu-ns/op is the process's CPU time per
// scene, which other work on a loaded machine does not inflate.
func BenchmarkGenerate(b *testing.B) {
	for _, c := range []struct {
		name string
		opt  Options
	}{{"boundary-2x2", DefaultOptions()}, {"centre-only", Options{Supersample: 1}}, {"all-2x2", Options{Supersample: 2, All: true}}} {
		b.Run(c.name, func(b *testing.B) {
			c0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if _, err := Generate(1, i%256).Render(32, c.opt); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
		})
	}
}
