package ops

import (
	"fmt"
	"sync"
	"sync/atomic"

	G "gorgonia.org/gorgonia"
)

// A Stream runs the oneDNN calls of the ops built on it (OnStream) with
// its own oneDNN stream, work buffers, primitive caches and OpenMP team
// size, on the calling goroutine's thread (bound for each call, one call
// at a time). Two graphs built on two streams of one thread each can run
// at the same time, each on a core, with no fork-join barrier between
// them: the data-parallel alternative to one graph whose every
// convolution is split over a team of two threads (see BENCHMARKS.md,
// "Two streams"). Ops built outside OnStream use the default state, one
// engine thread with a team of every core.
//
// Graphs that run on several streams at once do so inside Concurrently,
// which runs the Go kernels split over goroutines (parallelFor) in one
// piece: each stream is one core's worth of work. Builds without oneDNN
// accept streams and ignore them (their kernels are Go).
type Stream struct {
	st   *dnnlState
	once sync.Once
	err  error
}

var (
	buildMu     sync.Mutex
	buildSt     *dnnlState
	openStreams atomic.Int32
	concurrent  atomic.Int32 // callers inside Concurrently
)

// Concurrently runs f, which runs graphs on several streams at the same
// time, with every Go kernel in one piece (Workers returns 1) until f
// returns: each stream is one core's worth of work, and a kernel split
// over goroutines would compete with the other streams for the cores.
// Graphs run outside it (between steps, or while streams are merely
// open) split their kernels as usual.
func Concurrently(f func()) {
	concurrent.Add(1)
	defer concurrent.Add(-1)
	f()
}

// NewStream opens a stream whose oneDNN calls use an OpenMP team of
// threads threads (0: the OpenMP default). Close it when done.
func NewStream(threads int) (*Stream, error) {
	if threads < 0 {
		return nil, fmt.Errorf("ops: stream: %d threads, expected >= 0", threads)
	}
	openStreams.Add(1)
	return &Stream{st: newStreamState(threads)}, nil
}

// Close frees the stream's primitives, work buffers and thread; ops built
// on it must not run afterwards. Safe to call twice.
func (s *Stream) Close() error {
	s.once.Do(func() {
		s.err = s.st.close()
		openStreams.Add(-1)
	})
	return s.err
}

// OnStream calls f with every op made meanwhile (the graph f builds, and
// its gradient if f takes it) bound to s; nil s binds to the default
// state. Calls are serialised: graphs are built one at a time.
func OnStream(s *Stream, f func() error) error {
	buildMu.Lock()
	defer buildMu.Unlock()
	prev := buildSt
	buildSt = nil
	if s != nil {
		buildSt = s.st
	}
	defer func() { buildSt = prev }()
	return f()
}

// building is the state new ops bind to.
func building() *dnnlState { return buildSt }

// BNStates returns the running statistics of every batch norm in g, in
// node order, each once: two graphs built alike list theirs alike (see
// train's streams, which average them across copies after each step).
func BNStates(g *G.ExprGraph) []*BNState {
	var out []*BNState
	seen := map[*BNState]bool{}
	for _, n := range g.AllNodes() {
		if op, ok := n.Op().(*batchNorm); ok && !seen[op.st] {
			seen[op.st] = true
			out = append(out, op.st)
		}
	}
	return out
}
