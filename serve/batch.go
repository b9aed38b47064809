package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/selfsup/selfsup/data"
)

// Requests are batched across clients: a request decodes its images
// straight to the model's input size (in its own goroutine, so decoding
// overlaps inference) under a memory budget, then queues the tensors as a
// job; whichever waiting request takes a free compute slot becomes the
// leader and runs, as one session batch, the queued jobs in arrival order
// up to MaxBatch images (at least one job), then hands each job its rows.
// Many clients posting one image each thus get the throughput of batched
// extraction. The budget (Options.MemoryBudget) covers each decoder's
// buffer, from the image header, and the decoded tensors until they are
// computed, so neither many requests nor large images can exhaust memory.

type job struct {
	ctx   context.Context
	n     int            // images
	in    []float32      // their decoded, normalised inputs [n, C, Size, Size]
	done  chan jobResult // buffered: the leader never blocks on it
	taken bool           // guarded by Server.mu
}

type jobResult struct {
	feats []float32
	dim   int
	err   error
}

// submit queues raw's images and waits for their features: at most
// QueueTimeout until a leader takes them (then 503), then until they are
// computed.
func (s *Server) submit(ctx context.Context, raw [][]byte) ([]float32, int, error) {
	timer := time.NewTimer(s.opts.QueueTimeout)
	defer timer.Stop()
	p := s.pre
	per := p.Channels * p.Size * p.Size
	tensors := int64(len(raw)) * int64(per) * 4
	var decode int64
	for _, b := range raw {
		decode = max(decode, decodeCost(b, p.Size, p.DecodeChannels()))
	}
	want := min(decode+tensors, s.opts.MemoryBudget)
	if err := s.budget.acquire(ctx, timer.C, want); err != nil {
		if ctx.Err() != nil {
			return nil, 0, err
		}
		return nil, 0, fail(http.StatusServiceUnavailable, "server busy: no memory for %d images within %s", len(raw), s.opts.QueueTimeout)
	}
	held := want
	defer func() { s.budget.release(held) }()
	in := make([]float32, len(raw)*per)
	if err := s.decodeJob(raw, in); err != nil {
		return nil, 0, err
	}
	keep := min(tensors, want) // the decoders' share goes back now
	s.budget.release(held - keep)
	held = keep
	j := &job{ctx: ctx, n: len(raw), in: in, done: make(chan jobResult, 1)}
	s.mu.Lock()
	s.pending = append(s.pending, j)
	s.mu.Unlock()
	for {
		s.mu.Lock()
		taken := j.taken
		s.mu.Unlock()
		if taken {
			select {
			case r := <-j.done:
				return r.feats, r.dim, r.err
			case <-ctx.Done():
				return nil, 0, ctx.Err()
			}
		}
		select {
		case r := <-j.done:
			return r.feats, r.dim, r.err
		case s.slots <- struct{}{}:
			s.runBatch()
			<-s.slots
		case <-timer.C:
			if s.withdraw(j) {
				return nil, 0, fail(http.StatusServiceUnavailable, "server busy: not computed within %s", s.opts.QueueTimeout)
			}
		case <-ctx.Done():
			if s.withdraw(j) {
				return nil, 0, ctx.Err()
			}
		}
	}
}

// withdraw removes a job no leader has taken; false when one has.
func (s *Server) withdraw(j *job) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.taken {
		return false
	}
	for i, p := range s.pending {
		if p == j {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			break
		}
	}
	return true
}

// runBatch takes queued jobs (in order, up to MaxBatch images, at least
// one), runs the session once on their inputs and answers every job. It
// runs inside a compute slot.
func (s *Server) runBatch() {
	s.mu.Lock()
	var batch []*job
	n := 0
	for len(s.pending) > 0 {
		j := s.pending[0]
		if len(batch) > 0 && n+j.n > s.opts.MaxBatch {
			break
		}
		s.pending = s.pending[1:]
		j.taken = true
		if j.ctx.Err() != nil { // its client is gone
			j.done <- jobResult{err: j.ctx.Err()}
			continue
		}
		batch = append(batch, j)
		n += j.n
	}
	s.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	p := s.pre
	per := p.Channels * p.Size * p.Size
	in := batch[0].in
	if len(batch) > 1 {
		in = make([]float32, 0, n*per)
		for _, j := range batch {
			in = append(in, j.in...)
		}
	}
	ok, off := batch, n
	out, err := s.sess.Run(in[:off*per], []int64{int64(off), int64(p.Channels), int64(p.Size), int64(p.Size)}, s.opts.Output)
	if err == nil {
		if o := out[s.opts.Output]; len(o.Shape) != 2 || o.Shape[0] != int64(off) {
			err = fmt.Errorf("serve: output %q has shape %v, expected [%d, D]", s.opts.Output, o.Shape, off)
		}
	}
	if err != nil {
		for _, j := range ok {
			j.done <- jobResult{err: err}
		}
		return
	}
	o := out[s.opts.Output]
	dim := int(o.Shape[1])
	row := 0
	for _, j := range ok {
		k := j.n
		j.done <- jobResult{feats: o.Data[row*dim : (row+k)*dim], dim: dim}
		row += k
	}
}

// decodeJob decodes and normalises one job's images into dst.
func (s *Server) decodeJob(raw [][]byte, dst []float32) error {
	p := s.pre
	per := p.Channels * p.Size * p.Size
	for i, b := range raw {
		img, err := data.DecodeWith(b, data.DecodeOptions{MaxPixels: s.opts.MaxPixels, Channels: p.DecodeChannels(), Size: p.Size})
		if err != nil {
			return fail(http.StatusBadRequest, "images[%d]: not a decodable JPEG or PNG (%d bytes): %v", i, len(b), err)
		}
		if err := p.Fill(img, dst[i*per:(i+1)*per]); err != nil {
			return fail(http.StatusBadRequest, "images[%d]: %v", i, err)
		}
	}
	return nil
}

// decodeCost estimates the bytes decoding b to size x size with c channels
// holds at its peak, from the header alone: the decoder's buffer (JPEG at
// most 3 bytes a pixel, PNG at most 8, 16-bit RGBA) and the resize's
// intermediate rows.
func decodeCost(b []byte, size, c int) int64 {
	w, h, format, err := data.DecodeConfig(b, -1)
	if err != nil {
		return 0
	}
	per := int64(3)
	if format == "png" {
		per = 8
	}
	return int64(w)*int64(h)*per + int64(h)*int64(size)*int64(c)*4
}

// budget is a counting semaphore of bytes.
type budget struct {
	mu   sync.Mutex
	free int64
	wake chan struct{} // closed and replaced on every release
}

func newBudget(n int64) *budget { return &budget{free: n, wake: make(chan struct{})} }

// acquire takes n bytes, waiting until they are free, ctx is done or
// timeout fires.
func (b *budget) acquire(ctx context.Context, timeout <-chan time.Time, n int64) error {
	for {
		b.mu.Lock()
		if b.free >= n {
			b.free -= n
			b.mu.Unlock()
			return nil
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return errTimeout
		}
	}
}

func (b *budget) release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}

var errTimeout = errors.New("timed out")
