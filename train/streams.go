package train

import (
	"fmt"
	"math/rand"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
	"github.com/selfsup/selfsup/pretext"
)

// graphCopy is one copy of the training graph (Config.Streams > 1): its
// backbone, task model, parameters (bound to the first copy's values),
// gradients, machine and batch-norm states.
type graphCopy struct {
	bb            *models.Backbone
	model         pretext.Model
	params, grads G.Nodes
	machine       G.VM
	bns           []*ops.BNState
}

// buildCopies builds cfg.Streams copies of the graph, each on a stream of
// its own with cfg.Batch/cfg.Streams images, the first one's parts becoming
// the session's.
func (s *session) buildCopies(cfg Config, task pretext.Task, spec *models.Spec, w, heads models.Weights, rng *rand.Rand) error {
	n := cfg.Streams
	for r := 0; r < n; r++ {
		st, err := ops.NewStream(1)
		if err != nil {
			return err
		}
		s.streams = append(s.streams, st)
		var c graphCopy
		err = ops.OnStream(st, func() error {
			g := G.NewGraph()
			var err error
			if c.bb, err = models.NewBackbone(g, spec, w, tensor.Float32, s.mode); err != nil {
				return err
			}
			crng := rng
			if r > 0 { // heads come from copy 0 anyway
				crng = rand.New(rand.NewSource(cfg.Seed))
			}
			if c.model, err = task.Build(c.bb, cfg.Batch/n, cfg.Pretext, heads, crng); err != nil {
				return err
			}
			if r == 0 {
				if err := streamable(cfg.Task, c.model); err != nil {
					return err
				}
			}
			c.params = append(c.bb.Learnables(), c.model.Learnables()...)
			if r > 0 {
				p0 := s.copies[0].params
				if len(c.params) != len(p0) {
					return fmt.Errorf("train: streams: copy %d has %d parameters, copy 0 has %d", r, len(c.params), len(p0))
				}
				for i, p := range c.params {
					if err := G.Let(p, p0[i].Value()); err != nil {
						return fmt.Errorf("train: streams: bind %s: %w", p.Name(), err)
					}
				}
			}
			if c.grads, err = G.Grad(c.model.Loss(), c.params...); err != nil {
				return fmt.Errorf("train: gradient: %w", err)
			}
			c.bns = ops.BNStates(g)
			c.machine = G.NewTapeMachine(g)
			return nil
		})
		if err != nil {
			return err
		}
		s.copies = append(s.copies, &c)
	}
	c0 := s.copies[0]
	s.bb, s.model, s.params, s.grads, s.machine = c0.bb, c0.model, c0.params, c0.grads, c0.machine
	return nil
}

// streamable rejects the tasks whose models keep state or change the
// trainer's schedule: their state would have to be shared by the copies.
func streamable(task string, m pretext.Model) error {
	for what, ok := range map[string]bool{
		"keeps state (a memory bank)": isA[pretext.Stateful](m), "updates after each step": isA[pretext.StepHook](m),
		"reassigns its targets": isA[pretext.Reassigner](m), "mixes labelled images into each step": isA[pretext.Mixer](m),
		"initialises state from the backbone": isA[pretext.Initializer](m),
	} {
		if ok {
			return fmt.Errorf("train: --streams: task %s %s, which copies of the graph cannot share yet; train it with one stream", task, what)
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
	if len(s.copies) == 0 {
		return []pretext.Model{s.model}
	}
	ms := make([]pretext.Model, len(s.copies))
	for i, c := range s.copies {
		ms[i] = c.model
	}
	return ms
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

// runCopies runs every copy at once and returns their losses; the
// gradients are averaged into the first copy's, each element summed in
// copy order.
func (s *session) runCopies() ([]float64, error) {
	losses := make([]float64, len(s.copies))
	errs := make([]error, len(s.copies))
	var wg sync.WaitGroup
	for r, c := range s.copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.machine.Reset()
			if errs[r] = c.machine.RunAll(); errs[r] == nil {
				losses[r], errs[r] = lossValue(c.model)
			}
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("train: step (stream %d): %w", r, err)
		}
	}
	inv := 1 / float32(len(s.copies))
	eachParam(len(s.grads), len(s.copies), func(i int) {
		g0 := s.copies[0].grads[i].Value().Data().([]float32)
		for _, c := range s.copies[1:] {
			for j, v := range c.grads[i].Value().Data().([]float32) {
				g0[j] += v
			}
		}
		for j := range g0 {
			g0[j] *= inv
		}
	})
	return losses, nil
}

// eachParam calls f(i) for i in [0, n) on w goroutines.
func eachParam(n, w int, f func(i int)) {
	var wg sync.WaitGroup
	for k := 0; k < w; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < n; i += w {
				f(i)
			}
		}()
	}
	wg.Wait()
}

// syncBN averages the copies' running batch-norm statistics (in copy
// order) and gives every copy the average, so that the first copy's
// checkpoint holds the whole state.
func (s *session) syncBN() {
	if len(s.copies) < 2 {
		return
	}
	inv := 1 / float32(len(s.copies))
	for i, st0 := range s.copies[0].bns {
		for k := range 2 {
			avg := pick(st0, k)
			for _, c := range s.copies[1:] {
				for j, v := range pick(c.bns[i], k) {
					avg[j] += v
				}
			}
			for j := range avg {
				avg[j] *= inv
			}
			for _, c := range s.copies[1:] {
				copy(pick(c.bns[i], k), avg)
			}
		}
	}
}

// pick is a state's running mean (k 0) or variance (k 1).
func pick(st *ops.BNState, k int) []float32 {
	if k == 0 {
		return st.Mean
	}
	return st.Var
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

// close frees the copies' machines and streams.
func (s *session) close() {
	if len(s.copies) == 0 && s.machine != nil {
		s.machine.Close()
	}
	for _, c := range s.copies {
		c.machine.Close()
	}
	for _, st := range s.streams {
		st.Close()
	}
}
