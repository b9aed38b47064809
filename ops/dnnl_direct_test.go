//go:build cgo && !purego && !nodnnl

package ops

import "testing"

// With SELFSUP_DNNL_CALLS=direct every goroutine makes its own oneDNN calls
// on its own (then locked) thread and team: concurrent callers, each ending
// locked, get the engine thread's results bit for bit.
func TestConv32DirectCalls(t *testing.T) {
	defer func(prev bool) { directCalls = prev }(directCalls)
	checkConcurrent(t, func() { directCalls = true })
}
