package bench

import (
	"fmt"
	"math/rand"
	"runtime"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
	"github.com/selfsup/selfsup/train"
)

// classifierCopies is a train.CopyBuilder: copy r is spec's backbone (weights w)
// on images [r*per, (r+1)*per) of x (3 x size x size each) with a linear
// head (seeded) and a cross-entropy loss against y.
func classifierCopies(spec *models.Spec, w models.Weights, x []float32, y []int, per, size int) train.CopyBuilder {
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

// trainStreams is Train's fast engine as train.Copies over c.Streams streams.
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
	rs, err := train.NewCopies(n, classifierCopies(spec, w, x, y, per, size))
	if rs != nil {
		defer rs.Close()
	}
	if err != nil {
		return nil, err
	}
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
		Engine: "fast", GEMM: ops.Backend, Conv: fastConv(), Precision: ops.ConvPrecision().String(), Arch: c.Arch, Batch: c.Batch, Size: size, Steps: c.Steps, Streams: n,
		StepSeconds: el / float64(c.Steps), ImagesPerSec: float64(c.Batch*c.Steps) / el,
		PeakRSSMB: peakRSSMB(), AllocMBStep: float64(ms1.TotalAlloc-ms0.TotalAlloc) / float64(c.Steps) / (1 << 20),
		Threads: runtime.GOMAXPROCS(0), Sched: sched,
	}, nil
}
