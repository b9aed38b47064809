package train

import (
	"fmt"
	"sync"

	G "gorgonia.org/gorgonia"

	"github.com/selfsup/selfsup/ops"
)

// Copies is data-parallel training over streams: n copies of a graph, each
// built on its own ops.Stream (an OpenMP team of one thread), each fed its
// share of the batch, all reading one set of parameters (the first copy's
// values; the others' parameter nodes are bound to them). Run runs the
// copies at the same time and averages their gradients into the first
// copy's, each element summed in copy order, so the result does not
// depend on timing. Batch norm sees each copy's share (as data-parallel
// training without synchronised batch norm); SyncBN averages the running
// statistics. Config.Streams trains with it; `bench train --streams`
// times it.
type Copies struct {
	// Params and Grads are the first copy's, for the optimiser.
	Params, Grads G.Nodes
	copies        []graphCore
	streams       []*ops.Stream
	sequential    bool // tests: run the copies one after another
}

type graphCore struct {
	machine       G.VM
	params, grads G.Nodes
	bns           []*ops.BNState
}

// CopyBuilder builds copy r of the graph in g and returns its learnable
// parameters (the same ones, in the same order, for every copy) and its
// scalar loss.
type CopyBuilder func(g *G.ExprGraph, r int) (params G.Nodes, loss *G.Node, err error)

// NewCopies builds n copies with build, each on a stream of its own, and
// binds every copy's parameters to the first copy's values. Close it when
// done (also after an error).
func NewCopies(n int, build CopyBuilder) (*Copies, error) {
	if n < 1 {
		return nil, fmt.Errorf("train: copies: %d copies, expected >= 1", n)
	}
	cs := &Copies{}
	for r := 0; r < n; r++ {
		st, err := ops.NewStream(1)
		if err != nil {
			return cs, err
		}
		cs.streams = append(cs.streams, st)
		var c graphCore
		err = ops.OnStream(st, func() error {
			g := G.NewGraph()
			params, loss, err := build(g, r)
			if err != nil {
				return err
			}
			if r > 0 {
				p0 := cs.copies[0].params
				if len(params) != len(p0) {
					return fmt.Errorf("train: copies: copy %d has %d parameters, copy 0 has %d", r, len(params), len(p0))
				}
				for i, p := range params {
					if err := G.Let(p, p0[i].Value()); err != nil {
						return fmt.Errorf("train: copies: bind %s: %w", p.Name(), err)
					}
				}
			}
			grads, err := G.Grad(loss, params...)
			if err != nil {
				return fmt.Errorf("train: gradient: %w", err)
			}
			c = graphCore{machine: G.NewTapeMachine(g), params: params, grads: grads, bns: ops.BNStates(g)}
			return nil
		})
		if err != nil {
			return cs, err
		}
		cs.copies = append(cs.copies, c)
	}
	cs.Params, cs.Grads = cs.copies[0].params, cs.copies[0].grads
	return cs, nil
}

// Len is the number of copies.
func (cs *Copies) Len() int { return len(cs.copies) }

// Run runs every copy once, at the same time, and averages the gradients
// into Grads.
func (cs *Copies) Run() error {
	errs := make([]error, len(cs.copies))
	run := func(r int) {
		m := cs.copies[r].machine
		m.Reset()
		errs[r] = m.RunAll()
	}
	ops.Concurrently(func() {
		if cs.sequential {
			for r := range cs.copies {
				run(r)
			}
			return
		}
		var wg sync.WaitGroup
		for r := range cs.copies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				run(r)
			}()
		}
		wg.Wait()
	})
	for r, err := range errs {
		if err != nil {
			return fmt.Errorf("train: step (stream %d): %w", r, err)
		}
	}
	if len(cs.copies) == 1 {
		return nil
	}
	inv := 1 / float32(len(cs.copies))
	var wg sync.WaitGroup // parameters split between as many goroutines as copies
	for k := range cs.copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < len(cs.Grads); i += len(cs.copies) {
				g0 := cs.Grads[i].Value().Data().([]float32)
				for _, c := range cs.copies[1:] {
					for j, v := range c.grads[i].Value().Data().([]float32) {
						g0[j] += v
					}
				}
				for j := range g0 {
					g0[j] *= inv
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

// SyncBN averages the copies' running batch-norm statistics (in copy
// order) and gives every copy the average, so that the first copy holds
// the whole state (for a checkpoint).
func (cs *Copies) SyncBN() {
	if len(cs.copies) < 2 {
		return
	}
	inv := 1 / float32(len(cs.copies))
	stat := func(st *ops.BNState, k int) []float32 {
		if k == 0 {
			return st.Mean
		}
		return st.Var
	}
	for i, st0 := range cs.copies[0].bns {
		for k := range 2 {
			avg := stat(st0, k)
			for _, c := range cs.copies[1:] {
				for j, v := range stat(c.bns[i], k) {
					avg[j] += v
				}
			}
			for j := range avg {
				avg[j] *= inv
			}
			for _, c := range cs.copies[1:] {
				copy(stat(c.bns[i], k), avg)
			}
		}
	}
}

// Close frees the copies' machines and streams.
func (cs *Copies) Close() {
	for _, c := range cs.copies {
		c.machine.Close()
	}
	for _, st := range cs.streams {
		st.Close()
	}
	cs.copies, cs.streams = nil, nil
}
