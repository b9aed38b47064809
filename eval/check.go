package eval

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// checkMatrix reports whether x holds an [n, d] matrix of finite values.
func checkMatrix(what string, x []float32, n, d int) error {
	if n < 1 {
		return fmt.Errorf("%s: empty set: n = %d, want at least 1 row", what, n)
	}
	if d < 1 {
		return fmt.Errorf("%s: feature dimension d = %d, want at least 1", what, d)
	}
	if len(x) != n*d {
		return fmt.Errorf("%s: got %d values, want n*d = %d*%d = %d", what, len(x), n, d, n*d)
	}
	if i := firstNonFinite(x); i >= 0 {
		return fmt.Errorf("%s: row %d, dim %d is %v, want a finite value", what, i/d, i%d, x[i])
	}
	return nil
}

// firstNonFinite returns the index of the first NaN or infinity in x, or -1.
func firstNonFinite(x []float32) int {
	const expMask = 0x7f800000 // all exponent bits set: Inf or NaN
	for i, v := range x {
		if math.Float32bits(v)&expMask == expMask {
			return i
		}
	}
	return -1
}

// checkLabels reports whether y holds n labels in [0, k).
func checkLabels(what string, y []int, n, k int) error {
	if k < 2 {
		return fmt.Errorf("%s: %d classes, want at least 2", what, k)
	}
	if len(y) != n {
		return fmt.Errorf("%s: got %d labels for %d rows", what, len(y), n)
	}
	for i, c := range y {
		if c < 0 || c >= k {
			return fmt.Errorf("%s: label %d of row %d is out of range [0, %d)", what, c, i, k)
		}
	}
	return nil
}

// rowsOf returns n = len(y), the row count implied by a label slice, after
// checking that the feature slice agrees with it.
func rowsOf(what string, x []float32, y []int, d int) (int, error) {
	n := len(y)
	if n == 0 {
		return 0, fmt.Errorf("%s: empty set: no labels", what)
	}
	if d < 1 {
		return 0, fmt.Errorf("%s: feature dimension d = %d, want at least 1", what, d)
	}
	if len(x) != n*d {
		return 0, fmt.Errorf("%s: got %d feature values for %d labels, want n*d = %d*%d = %d", what, len(x), n, n, d, n*d)
	}
	return n, nil
}

// defaultWorkers resolves a worker count: w if positive, else GOMAXPROCS.
func defaultWorkers(w int) int {
	if w > 0 {
		return w
	}
	return runtime.GOMAXPROCS(0)
}

// parallelFor runs fn(worker, task) for task in [0, tasks) on up to workers
// goroutines, handing out tasks in order. worker is in [0, workers) and lets
// fn use per-worker scratch space; results must depend on task only.
func parallelFor(tasks, workers int, fn func(worker, task int)) {
	workers = min(workers, tasks)
	if workers <= 1 {
		for t := 0; t < tasks; t++ {
			fn(0, t)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				t := int(next.Add(1) - 1)
				if t >= tasks {
					return
				}
				fn(w, t)
			}
		}()
	}
	wg.Wait()
}
