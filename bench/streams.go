package bench

import (
	"fmt"
	"math/rand"
	"runtime"
	"sync"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
	"github.com/selfsup/selfsup/train"
)

// Replicas is a data-parallel training step over streams: n copies of a
// graph, each on its own ops.Stream (one OpenMP thread), each fed 1/n of
// the batch, sharing one set of parameters. A step runs the copies at the
// same time, averages their gradients into the first copy's (in copy
// order, so the result does not depend on timing) and leaves the update to
// the caller. Batch normalisation sees each copy's share of the batch
// (as in data-parallel training without synchronised batch norm).
type Replicas struct {
	Params, Grads G.Nodes // the first copy's; the others' are bound to these parameters
	copies        []replica
	streams       []*ops.Stream
}

type replica struct {
	m             G.VM
	params, grads G.Nodes
}

// BuildFunc builds copy r of the graph in g and returns its learnable
// parameters (in the same order for every copy) and its scalar loss.
type BuildFunc func(g *G.ExprGraph, r int) (params G.Nodes, loss *G.Node, err error)

// NewReplicas builds n copies with build, each on a stream of its own, and
// binds every copy's parameters to the first copy's values. Close it when
// done.
func NewReplicas(n int, build BuildFunc) (*Replicas, error) {
	if n < 1 {
		return nil, fmt.Errorf("bench: replicas: %d copies, expected >= 1", n)
	}
	rs := &Replicas{}
	for r := 0; r < n; r++ {
		st, err := ops.NewStream(1)
		if err != nil {
			rs.Close()
			return nil, err
		}
		rs.streams = append(rs.streams, st)
		var c replica
		err = ops.OnStream(st, func() error {
			g := G.NewGraph()
			params, loss, err := build(g, r)
			if err != nil {
				return err
			}
			if r > 0 && len(params) != len(rs.copies[0].params) {
				return fmt.Errorf("bench: replicas: copy %d has %d parameters, copy 0 has %d", r, len(params), len(rs.copies[0].params))
			}
			for i, p := range params {
				if r > 0 {
					if err := G.Let(p, rs.copies[0].params[i].Value()); err != nil {
						return fmt.Errorf("bench: replicas: bind %s: %w", p.Name(), err)
					}
				}
			}
			grads, err := G.Grad(loss, params...)
			if err != nil {
				return fmt.Errorf("bench: replicas: gradient: %w", err)
			}
			c = replica{m: G.NewTapeMachine(g), params: params, grads: grads}
			return nil
		})
		if err != nil {
			rs.Close()
			return nil, err
		}
		rs.copies = append(rs.copies, c)
	}
	rs.Params, rs.Grads = rs.copies[0].params, rs.copies[0].grads
	return rs, nil
}

// Run runs every copy once, at the same time, and averages the gradients
// into Grads.
func (rs *Replicas) Run() error {
	errs := make([]error, len(rs.copies))
	var wg sync.WaitGroup
	for r := range rs.copies {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			m := rs.copies[r].m
			m.Reset()
			errs[r] = m.RunAll()
		}(r)
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			return fmt.Errorf("bench: replicas: copy %d: %w", r, err)
		}
	}
	if len(rs.copies) == 1 {
		return nil
	}
	// Average, parameters split between the copies' goroutines; each
	// element is summed in copy order.
	inv := 1 / float32(len(rs.copies))
	parallelParams(len(rs.Grads), len(rs.copies), func(i int) {
		g0 := rs.Grads[i].Value().Data().([]float32)
		for _, c := range rs.copies[1:] {
			gr := c.grads[i].Value().Data().([]float32)
			for j := range g0 {
				g0[j] += gr[j]
			}
		}
		for j := range g0 {
			g0[j] *= inv
		}
	})
	return nil
}

// parallelParams calls f(i) for i in [0, n) on w goroutines.
func parallelParams(n, w int, f func(i int)) {
	var wg sync.WaitGroup
	for k := 0; k < w; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			for i := k; i < n; i += w {
				f(i)
			}
		}(k)
	}
	wg.Wait()
}

// Close frees the copies' machines and streams.
func (rs *Replicas) Close() {
	for _, c := range rs.copies {
		c.m.Close()
	}
	for _, st := range rs.streams {
		st.Close()
	}
	rs.copies, rs.streams = nil, nil
}

// classifierCopies is a BuildFunc: copy r is spec's backbone (weights w)
// on images [r*per, (r+1)*per) of x (3 x size x size each) with a linear
// head (seeded) and a cross-entropy loss against y.
func classifierCopies(spec *models.Spec, w models.Weights, x []float32, y []int, per, size int) BuildFunc {
	return func(g *G.ExprGraph, r int) (G.Nodes, *G.Node, error) {
		bb, err := models.NewBackbone(g, spec, w, tensor.Float32, &ops.Mode{Training: true})
		if err != nil {
			return nil, nil, err
		}
		n := per * 3 * size * size
		input := G.NewTensor(g, tensor.Float32, 4, G.WithShape(per, 3, size, size), G.WithName("x"),
			G.WithValue(tensor.New(tensor.WithShape(per, 3, size, size), tensor.WithBacking(x[r*n:(r+1)*n]))))
		outs, err := bb.Forward(input, "features")
		if err != nil {
			return nil, nil, err
		}
		head, err := models.NewLinear(g, "fc", spec.FeatureDim, 10, models.Weights{}, rand.New(rand.NewSource(2)))
		if err != nil {
			return nil, nil, err
		}
		logits, err := head.Apply(outs["features"])
		if err != nil {
			return nil, nil, err
		}
		loss, err := ops.SoftmaxCrossEntropy(logits, &ops.Labels{Y: y[r*per : (r+1)*per]})
		if err != nil {
			return nil, nil, err
		}
		return append(bb.Learnables(), head.W, head.B), loss, nil
	}
}

// trainStreams is Train's fast engine as Replicas over c.Streams streams.
func trainStreams(c TrainConfig, spec *models.Spec, size int) (*TrainResult, error) {
	n := c.Streams
	if c.Batch%n != 0 {
		return nil, fmt.Errorf("bench train: batch %d does not split into %d streams", c.Batch, n)
	}
	per := c.Batch / n
	rng := rand.New(rand.NewSource(1))
	w := models.InitWeights(spec, rng)
	x := make([]float32, c.Batch*3*size*size)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y := make([]int, c.Batch)
	for i := range y {
		y[i] = rng.Intn(10)
	}
	rs, err := NewReplicas(n, classifierCopies(spec, w, x, y, per, size))
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	opt := train.NewSGD(0.9, 5e-4)
	step := func() error {
		if err := rs.Run(); err != nil {
			return err
		}
		return opt.Step(rs.Params, rs.Grads, 1e-3)
	}
	for i := 0; i < c.Warmup; i++ {
		if err := step(); err != nil {
			return nil, fmt.Errorf("train: bench fast: %w", err)
		}
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	sched0 := schedSnapshot("/proc/self")
	t0 := time.Now()
	for i := 0; i < c.Steps; i++ {
		if err := step(); err != nil {
			return nil, fmt.Errorf("train: bench fast: %w", err)
		}
	}
	el := time.Since(t0).Seconds()
	sched := schedDelta(sched0, schedSnapshot("/proc/self"))
	runtime.ReadMemStats(&ms1)
	return &TrainResult{
		Engine: "fast", GEMM: ops.Backend, Conv: ops.ConvBackend, Arch: c.Arch, Batch: c.Batch, Size: size, Steps: c.Steps, Streams: n,
		StepSeconds: el / float64(c.Steps), ImagesPerSec: float64(c.Batch*c.Steps) / el,
		PeakRSSMB: peakRSSMB(), AllocMBStep: float64(ms1.TotalAlloc-ms0.TotalAlloc) / float64(c.Steps) / (1 << 20),
		Threads: runtime.GOMAXPROCS(0), Sched: sched,
	}, nil
}
