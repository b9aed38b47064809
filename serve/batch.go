package serve

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/selfsup/selfsup/data"
)

// Requests are batched across clients: a request queues its images as a
// job; whichever waiting request takes a free compute slot becomes the
// leader and runs, as one session batch, the queued jobs in arrival order
// up to MaxBatch images (at least one job), then hands each job its rows.
// Many clients posting one image each thus get the throughput of batched
// extraction, and all decoding still happens inside a slot, one image at a
// time per slot, so MaxConcurrent bounds decode memory.

type job struct {
	ctx   context.Context
	raw   [][]byte
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
	j := &job{ctx: ctx, raw: raw, done: make(chan jobResult, 1)}
	s.mu.Lock()
	s.pending = append(s.pending, j)
	s.mu.Unlock()
	timer := time.NewTimer(s.opts.QueueTimeout)
	defer timer.Stop()
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
// one), decodes their images straight to the model's input size, runs the
// session once and answers every job. It runs inside a compute slot.
func (s *Server) runBatch() {
	s.mu.Lock()
	var batch []*job
	n := 0
	for len(s.pending) > 0 {
		j := s.pending[0]
		if len(batch) > 0 && n+len(j.raw) > s.opts.MaxBatch {
			break
		}
		s.pending = s.pending[1:]
		j.taken = true
		if j.ctx.Err() != nil { // its client is gone
			j.done <- jobResult{err: j.ctx.Err()}
			continue
		}
		batch = append(batch, j)
		n += len(j.raw)
	}
	s.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	p := s.pre
	per := p.Channels * p.Size * p.Size
	in := make([]float32, n*per)
	var ok []*job
	off := 0
	for _, j := range batch {
		if err := s.decodeJob(j.raw, in[off*per:(off+len(j.raw))*per]); err != nil {
			j.done <- jobResult{err: err}
			continue
		}
		ok = append(ok, j)
		off += len(j.raw)
	}
	if off == 0 {
		return
	}
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
		k := len(j.raw)
		j.done <- jobResult{feats: o.Data[row*dim : (row+k)*dim], dim: dim}
		row += k
	}
}

// decodeJob decodes and normalises one job's images into dst.
func (s *Server) decodeJob(raw [][]byte, dst []float32) error {
	p := s.pre
	per := p.Channels * p.Size * p.Size
	for i, b := range raw {
		img, err := data.DecodeWith(b, data.DecodeOptions{MaxPixels: s.opts.MaxPixels, Channels: p.Channels, Size: p.Size})
		if err != nil {
			return fail(http.StatusBadRequest, "images[%d]: not a decodable JPEG or PNG (%d bytes): %v", i, len(b), err)
		}
		if err := p.Fill(img, dst[i*per:(i+1)*per]); err != nil {
			return fail(http.StatusBadRequest, "images[%d]: %v", i, err)
		}
	}
	return nil
}
