package dense

import (
	"runtime"
	"sort"
	"sync"
)

func sortFloats(v []float64) { sort.Float64s(v) }

// sumRows returns the sum over rows of f(i, g_i), adding each row's
// gradient g_i to g. The rows run on up to GOMAXPROCS goroutines, each
// into a buffer of its own, and the losses and buffers are added in row
// order: since f adds to every entry of its buffer at most once, the
// result is bit-identical to calling f(i, g) row after row, whatever the
// number of cores.
func sumRows(rows []int, g []float64, f func(i int, g []float64) float64) float64 {
	workers := min(runtime.GOMAXPROCS(0), len(rows))
	if workers <= 1 {
		var loss float64
		for _, i := range rows {
			loss += f(i, g)
		}
		return loss
	}
	losses := make([]float64, len(rows))
	bufs := make([][]float64, len(rows))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				bufs[k] = make([]float64, len(g))
				losses[k] = f(rows[k], bufs[k])
			}
		}()
	}
	for k := range rows {
		next <- k
	}
	close(next)
	wg.Wait()
	var loss float64
	for k := range rows {
		loss += losses[k]
		for j, v := range bufs[k] {
			g[j] += v
		}
	}
	return loss
}

// ForEach calls f(k) for k in [0, n) on up to GOMAXPROCS goroutines; f
// must write only to slots of its own k.
func ForEach(n int, f func(k int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < min(runtime.GOMAXPROCS(0), n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				f(k)
			}
		}()
	}
	for k := 0; k < n; k++ {
		next <- k
	}
	close(next)
	wg.Wait()
}
