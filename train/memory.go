package train

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	G "gorgonia.org/gorgonia"
)

// ErrMemory is wrapped by the error Run returns when the estimated memory
// of a training step exceeds what the machine has free.
var ErrMemory = fmt.Errorf("not enough memory")

// graphBytes estimates the bytes the values of a built training graph take
// once it has run: every node (forward activations, their gradients, the
// parameters and their gradients) holds one tensor of its shape, and the
// oneDNN bridge keeps up to three reorder buffers and a scratchpad the
// size of the largest tensor.
func graphBytes(g *G.ExprGraph) (total, largest int64) {
	for _, n := range g.AllNodes() {
		s := n.Shape()
		if len(s) == 0 {
			continue
		}
		el := int64(1)
		for _, d := range s {
			if d <= 0 {
				el = 0
				break
			}
			el *= int64(d)
		}
		b := el * int64(n.Dtype().Size())
		total += b
		largest = max(largest, b)
	}
	return total + 3*largest, largest
}

// A training step is estimated to need the larger of 1.35 times
// graphBytes plus memoryBase and graphBytes plus memorySlack. Measured
// (VmHWM, VmPeak less the virtual size at the check, 2 cores): resnet18c
// batch 64 at 32 px, graphBytes 3.7 GB, resident 3.8-4.0 GB, 4.1 GB more
// address space; resnet18 batch 8 at 224 px, graphBytes 2.0 GB, resident
// 2.7-3.5 GB, 3.0 GB more address space (Go's heap goal, thread stacks).
const (
	memoryBase  = 256 << 20
	memorySlack = 1 << 30
)

// availableMemory reports how many bytes this process may still allocate
// and what limits it: the smallest of MemAvailable (/proc/meminfo), the
// cgroup's memory.max less memory.current, and the address-space limit
// (ulimit -v) less the current virtual size. ok is false when nothing
// could be read (not Linux). A variable so tests can pretend.
var availableMemory = systemAvailableMemory

func systemAvailableMemory() (free int64, what string, ok bool) {
	consider := func(v int64, w string) {
		if v < 0 {
			v = 0
		}
		if !ok || v < free {
			free, what, ok = v, w, true
		}
	}
	if v, found := ProcField("/proc/meminfo", "MemAvailable:"); found {
		consider(v, "available memory")
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if lim, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			if cb, err := os.ReadFile("/sys/fs/cgroup/memory.current"); err == nil {
				if cur, err := strconv.ParseInt(strings.TrimSpace(string(cb)), 10, 64); err == nil {
					consider(lim-cur, "cgroup memory.max")
				}
			}
		}
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &rl); err == nil && rl.Cur < 1<<62 {
		if vm, found := ProcField("/proc/self/status", "VmSize:"); found {
			consider(int64(rl.Cur)-vm, "address-space limit (ulimit -v)")
		}
	}
	return free, what, ok
}

// procField reads a "Name:   123 kB" line of a /proc file, in bytes.
func ProcField(path, name string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		f := strings.Fields(line[len(name):])
		if len(f) == 0 {
			return 0, false
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		if len(f) > 1 && strings.EqualFold(f[1], "kB") {
			v <<= 10
		}
		return v, true
	}
	return 0, false
}

// gb formats bytes as gigabytes (or megabytes below one GB).
func gb(b int64) string {
	if b < 1<<30 {
		return fmt.Sprintf("%.0f MB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.1f GB", float64(b)/(1<<30))
}

// checkMemory refuses a step whose estimated memory exceeds what is free,
// in one line naming the need, the free memory and the flags to lower.
func checkMemory(cfg Config, g *G.ExprGraph, progress io.Writer) error {
	graph, largest := graphBytes(g)
	graph *= int64(max(cfg.Streams, 1)) // the copies are alike
	need := max(graph*27/20+memoryBase, graph+memorySlack)
	free, what, ok := availableMemory()
	// Kernels index with 32-bit integers in places: refuse a single
	// tensor of 2^31 elements or more as well.
	const maxElems = 1<<31 - 1
	if largest/4 > maxElems {
		return fmt.Errorf("train: %s at batch %d and %d px needs one tensor of %d elements, over the kernels' limit of 2^31-1; lower --batch or --size: %w",
			cfg.Arch, cfg.Batch, cfg.Pretext.InputSize, largest/4, ErrMemory)
	}
	if ok {
		fmt.Fprintf(progress, "memory: about %s for a training step, %s free (%s)\n", gb(need), gb(free), what)
	}
	if ok && need > free {
		return fmt.Errorf("train: %s at batch %d and %d px needs about %s for a training step, %s free (%s); lower --batch or --size: %w",
			cfg.Arch, cfg.Batch, cfg.Pretext.InputSize, gb(need), gb(free), what, ErrMemory)
	}
	return nil
}
