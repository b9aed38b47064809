package train

import (
	"errors"
	"fmt"
	"math/rand"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/pretext"
)

// buildCopies builds cfg.Streams copies of the graph (Copies), each with
// cfg.Batch/cfg.Streams images; the first one's parts become the
// session's.
func (s *session) buildCopies(cfg Config, task pretext.Task, spec *models.Spec, w, heads models.Weights, rng *rand.Rand) error {
	n := cfg.Streams
	bbs, ms := make([]*models.Backbone, n), make([]pretext.Model, n)
	cs, err := NewCopies(n, func(g *G.ExprGraph, r int) (G.Nodes, *G.Node, error) {
		bb, err := models.NewBackbone(g, spec, w, tensor.Float32, s.mode)
		if err != nil {
			return nil, nil, err
		}
		crng := rng
		if r > 0 { // the heads are bound to copy 0's
			crng = rand.New(rand.NewSource(cfg.Seed))
		}
		m, err := task.Build(bb, cfg.Batch/n, cfg.Pretext, heads, crng)
		if err != nil {
			return nil, nil, err
		}
		if err := streamable(cfg.Task, m); err != nil {
			return nil, nil, err
		}
		if sh, ok := m.(pretext.StateSharer); ok && r > 0 {
			if err := sh.ShareState(ms[0]); err != nil {
				return nil, nil, err
			}
		}
		bbs[r], ms[r] = bb, m
		return append(bb.Learnables(), m.Learnables()...), m.Loss(), nil
	})
	s.copies = cs
	if err != nil {
		return err
	}
	s.bb, s.model, s.params, s.grads, s.machine = bbs[0], ms[0], cs.Params, cs.Grads, cs.copies[0].machine
	s.copyModels = ms
	return nil
}

// ErrStreams is wrapped by the error of a run whose task cannot train on
// several streams (Config.Streams > 1).
var ErrStreams = errors.New("task cannot train on streams")

// streamable rejects the tasks whose models change the trainer's schedule
// or keep state that their copies cannot share (pretext.StateSharer).
func streamable(task string, m pretext.Model) error {
	_, share := m.(pretext.StateSharer)
	for what, ok := range map[string]bool{
		"keeps state":           !share && (isA[pretext.Stateful](m) || isA[pretext.StepHook](m) || isA[pretext.Initializer](m)),
		"reassigns its targets": isA[pretext.Reassigner](m), "mixes labelled images into each step": isA[pretext.Mixer](m),
	} {
		if ok {
			return fmt.Errorf("train: --streams: task %s %s, which copies of the graph cannot share yet; train it with one stream: %w", task, what, ErrStreams)
		}
	}
	return nil
}

func isA[T any](m pretext.Model) bool {
	_, ok := m.(T)
	return ok
}

// models are the task models a step's batches are made for: one per copy.
func (s *session) models() []pretext.Model {
	if s.copies == nil {
		return []pretext.Model{s.model}
	}
	return s.copyModels
}

// copyRNG is copy r's randomness for step (of n copies): stepRNG for one
// copy, so that a run without streams is what it always was.
func copyRNG(seed int64, step, r, n int) *rand.Rand {
	if n == 1 {
		return stepRNG(seed, step)
	}
	return stepRNG(seed*7919+int64(r)+1, step)
}

// makeBatches splits idx between ms (equal shares, in order) and makes
// each copy's batch with rng(r).
func makeBatches(ms []pretext.Model, ds data.Dataset, idx []int, rng func(r int) *rand.Rand) ([]*pretext.Batch, error) {
	per := len(idx) / len(ms)
	bs := make([]*pretext.Batch, len(ms))
	for r, m := range ms {
		b, err := makeBatch(m, ds, idx[r*per:(r+1)*per], rng(r))
		if err != nil {
			return nil, err
		}
		bs[r] = b
	}
	return bs, nil
}

// load copies each copy's batch into its graph.
func (s *session) load(bs []*pretext.Batch) error {
	for r, m := range s.models() {
		if err := m.Load(bs[r]); err != nil {
			return err
		}
	}
	return nil
}

// runCopies runs every copy at once (Copies.Run) and returns the mean of
// their losses.
func (s *session) runCopies() (float64, error) {
	if err := s.copies.Run(); err != nil {
		return 0, err
	}
	sum := 0.0
	for _, m := range s.copyModels {
		l, err := lossValue(m)
		if err != nil {
			return 0, err
		}
		sum += l
	}
	return sum / float64(len(s.copyModels)), nil
}

// metrics is the step's figures averaged over the copies.
func (s *session) metrics() map[string]float64 {
	ms := s.models()
	if len(ms) == 1 {
		return s.model.Metrics()
	}
	sum := map[string]float64{}
	for _, m := range ms {
		for k, v := range m.Metrics() {
			sum[k] += v
		}
	}
	for k := range sum {
		sum[k] /= float64(len(ms))
	}
	return sum
}

// close frees the session's machine, or its copies and streams.
func (s *session) close() {
	if s.copies != nil {
		s.copies.Close()
	} else if s.machine != nil {
		s.machine.Close()
	}
}
