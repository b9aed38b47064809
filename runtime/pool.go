package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Pool holds several Sessions on one model for concurrent callers (a
// feature server's request handlers): Run borrows a free session, runs on it
// and gives it back, so up to Size runs proceed at once, each on its own
// ONNX Runtime thread pool. A single Session also accepts concurrent Runs,
// but they share one intra-op thread pool; a Pool of N sessions with
// Options.IntraOpThreads = cores/N serves N small requests in parallel
// without them queueing inside ORT. Set Options.DisableSpinning when the
// pool shares the cores with other work. Close releases every session.
type Pool struct {
	path     string
	sessions []*Session
	free     chan *Session
	done     chan struct{} // closed by Close: wakes callers waiting for a session
	once     sync.Once
	mu       sync.Mutex
	closeErr error
}

var errPoolClosed = errors.New("runtime: session pool is closed")

// OpenPool opens n sessions (n >= 1) on the model at modelPath with the
// same options. When one fails, those already open are closed and the
// error is returned. The caller must Close the Pool.
func OpenPool(modelPath string, opts Options, n int) (*Pool, error) {
	if n < 1 {
		return nil, fmt.Errorf("runtime: open pool on %s: size %d, need at least 1 session", modelPath, n)
	}
	p := &Pool{path: modelPath, free: make(chan *Session, n), done: make(chan struct{})}
	for k := 0; k < n; k++ {
		s, err := Open(modelPath, opts)
		if err != nil {
			if cerr := p.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
			return nil, fmt.Errorf("runtime: open pool: session %d of %d: %w", k+1, n, err)
		}
		p.sessions = append(p.sessions, s)
		p.free <- s
	}
	return p, nil
}

// Size is the number of sessions in the pool.
func (p *Pool) Size() int { return len(p.sessions) }

// Path returns the model file the pool's sessions were opened from.
func (p *Pool) Path() string { return p.path }

// Session returns the pool's first session, for reading the model's inputs,
// outputs, metadata and preprocessing. Running on it directly bypasses the
// pool's borrowing (it is still safe).
func (p *Pool) Session() *Session {
	if len(p.sessions) == 0 {
		return nil
	}
	return p.sessions[0]
}

// borrow waits for a free session, for ctx to end or for Close.
func (p *Pool) borrow(ctx context.Context) (*Session, error) {
	select {
	case <-p.done:
		return nil, errPoolClosed
	default:
	}
	select {
	case s := <-p.free:
		return s, nil
	case <-p.done:
		return nil, errPoolClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("runtime: pool on %s: waiting for a free session: %w", p.path, ctx.Err())
	}
}

// giveBack returns a borrowed session (never blocks: free holds them all).
func (p *Pool) giveBack(s *Session) { p.free <- s }

// Run borrows a free session, waiting as long as it takes, and calls
// Session.Run on it. See RunContext.
func (p *Pool) Run(input []float32, shape []int64, outputNames ...string) (map[string]Output, error) {
	return p.RunContext(context.Background(), input, shape, outputNames...)
}

// RunContext is Run with a context that bounds the wait for a free session
// (a run already started is not interrupted). Safe for concurrent use; after
// Close it returns an error.
func (p *Pool) RunContext(ctx context.Context, input []float32, shape []int64, outputNames ...string) (map[string]Output, error) {
	if p == nil || len(p.sessions) == 0 {
		return nil, errPoolClosed
	}
	s, err := p.borrow(ctx)
	if err != nil {
		return nil, err
	}
	defer p.giveBack(s)
	return s.Run(input, shape, outputNames...)
}

// Close closes every session, waiting for runs in progress to end; callers
// waiting for a session get an error. It is safe to call twice (the second
// call returns the first call's result), on a nil *Pool and on a zero or
// half-opened Pool.
func (p *Pool) Close() error {
	if p == nil {
		return nil
	}
	p.once.Do(func() {
		if p.done != nil {
			close(p.done)
		}
		var errs []error
		for _, s := range p.sessions {
			if err := s.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		p.mu.Lock()
		p.closeErr = errors.Join(errs...)
		p.mu.Unlock()
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closeErr
}
