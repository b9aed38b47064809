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

// TrainResult is one training-throughput measurement (the JSON of
// `selfsup bench train` for one engine).
type TrainResult struct {
	Engine       string  `json:"engine"`
	GEMM         string  `json:"gemm"`
	Conv         string  `json:"conv"`
	Arch         string  `json:"arch"`
	Batch        int     `json:"batch"`
	Size         int     `json:"size_px"`
	Steps        int     `json:"steps"`
	StepSeconds  float64 `json:"step_seconds"`
	ImagesPerSec float64 `json:"images_per_sec"`
	PeakRSSMB    float64 `json:"peak_rss_mb"`
	AllocMBStep  float64 `json:"alloc_mb_per_step"`
	Threads      int     `json:"threads"`
	// Streams is the number of data-parallel streams (TrainConfig.Streams;
	// 0 or 1: one graph).
	Streams int `json:"streams,omitempty"`
	// Precision of the fast engine's convolutions ("float32", "bf16"); Conv
	// then names the oneDNN release that ran them.
	Precision string `json:"precision,omitempty"`
	// Contend is the number of busy-looping processes beside the
	// measurement (--contend).
	Contend int `json:"contend"`
	// Sched is where the process's threads spent the timed steps (Linux;
	// absent elsewhere).
	Sched *SchedStats `json:"sched,omitempty"`
}

// TrainConfig is one `selfsup bench train` measurement.
type TrainConfig struct {
	Arch string
	// Engine is "fast" (selfsup's ops) or "stock" (Gorgonia's own, see
	// StockClassifier).
	Engine string
	// StockBLAS picks the stock engine's matrix products: "gonum"
	// (Gorgonia's default) or "openblas" (multithreaded over GOMAXPROCS).
	// Gorgonia's BLAS and OpenBLAS's thread count are process-wide state:
	// Train sets them for the run and puts them back when it returns.
	StockBLAS string
	// Batch images per step at Size x Size pixels (0: the architecture's
	// input size); Warmup untimed steps, then Steps timed ones.
	Batch, Size, Warmup, Steps int
	// Streams > 1 runs the fast engine as train.Copies: that many copies
	// of the graph, each on a stream of one thread with Batch/Streams
	// images.
	Streams int
	// Precision of the fast engine's convolutions: "" or "float32", "bf16"
	// (ops.BFloat16), or, for Compare, "both" (the fast engine twice).
	Precision string
}

// Train times whole training steps (forward, backward, SGD update) of
// arch on random images at size x size with batch images and 10 classes:
// engine "fast" uses selfsup's ops, "stock" Gorgonia's own (see
// StockClassifier). It runs warmup untimed steps, then steps timed
// ones. Peak RSS is the process's high-water mark (VmHWM), so run one
// engine per process to compare memory. stockBLAS picks the stock engine's
// matrix products (see TrainConfig).
func Train(c TrainConfig) (*TrainResult, error) {
	arch, engine, stockBLAS, batch, size, warmup, steps := c.Arch, c.Engine, c.StockBLAS, c.Batch, c.Size, c.Warmup, c.Steps
	spec, err := models.New(arch, 3)
	if err != nil {
		return nil, err
	}
	if size <= 0 {
		size = spec.InputSize
	}
	prec := ops.Float32
	if engine == "fast" && c.Precision != "" {
		if prec, err = ops.ParsePrecision(c.Precision); err != nil {
			return nil, fmt.Errorf("bench train: %w", err)
		}
	}
	if err := ops.SetPrecision(prec); err != nil {
		return nil, fmt.Errorf("bench train: %w", err)
	}
	defer ops.SetPrecision(ops.Float32)
	if c.Streams > 1 && engine == "fast" {
		return trainStreams(c, spec, size)
	}
	rng := rand.New(rand.NewSource(1))
	stockGEMM := "gonum (gorgonia's default)"
	g := G.NewGraph()
	var loss, input *G.Node
	var params G.Nodes
	labels := &ops.Labels{Y: make([]int, batch)}
	for i := range labels.Y {
		labels.Y[i] = rng.Intn(10)
	}
	switch engine {
	case "fast":
		bb, err := models.NewBackbone(g, spec, models.InitWeights(spec, rng), tensor.Float32, &ops.Mode{Training: true})
		if err != nil {
			return nil, err
		}
		x := make([]float32, batch*3*size*size)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		input = G.NewTensor(g, tensor.Float32, 4, G.WithShape(batch, 3, size, size), G.WithName("x"),
			G.WithValue(tensor.New(tensor.WithShape(batch, 3, size, size), tensor.WithBacking(x))))
		outs, err := bb.Forward(input, "features")
		if err != nil {
			return nil, err
		}
		head, err := models.NewLinear(g, "fc", spec.FeatureDim, 10, models.Weights{}, rng)
		if err != nil {
			return nil, err
		}
		logits, err := head.Apply(outs["features"])
		if err != nil {
			return nil, err
		}
		if loss, err = ops.SoftmaxCrossEntropy(logits, labels); err != nil {
			return nil, err
		}
		params = append(bb.Learnables(), head.W, head.B)
	case "stock":
		switch stockBLAS {
		case "gonum":
		case "openblas":
			b, name, err := ops.StockBLAS(runtime.GOMAXPROCS(0))
			if err != nil {
				return nil, fmt.Errorf("train: bench stock: %w (use --stock-blas gonum)", err)
			}
			// Gorgonia's BLAS and OpenBLAS's thread count are process-wide:
			// both go back to what the fast engine runs with (Gorgonia's
			// default and one OpenBLAS thread, see ops) when Train returns.
			prev := G.WhichBLAS()
			G.Use(b)
			defer func() {
				G.Use(prev)
				ops.StockBLAS(1)
			}()
			stockGEMM = name
		default:
			return nil, fmt.Errorf("train: bench: stock blas %q, expected gonum or openblas", stockBLAS)
		}
		var target *G.Node
		input, target, loss, params, err = StockClassifier(g, spec, batch, size, 10, rng)
		if err != nil {
			return nil, err
		}
		// One-hot targets, set once.
		if err := G.Let(target, oneHot(labels.Y, 10)); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("train: bench: engine %q, expected fast or stock", engine)
	}
	grads, err := G.Grad(loss, params...)
	if err != nil {
		return nil, fmt.Errorf("train: bench %s: gradient: %w", engine, err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	opt := train.NewSGD(0.9, 5e-4)
	step := func() error {
		m.Reset()
		if err := m.RunAll(); err != nil {
			return err
		}
		return opt.Step(params, grads, 1e-3)
	}
	for i := 0; i < warmup; i++ {
		if err := step(); err != nil {
			return nil, fmt.Errorf("train: bench %s: %w", engine, err)
		}
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	sched0 := schedSnapshot("/proc/self")
	t0 := time.Now()
	for i := 0; i < steps; i++ {
		if err := step(); err != nil {
			return nil, fmt.Errorf("train: bench %s: %w", engine, err)
		}
	}
	el := time.Since(t0).Seconds()
	sched := schedDelta(sched0, schedSnapshot("/proc/self"))
	runtime.ReadMemStats(&ms1)
	gemm, conv := ops.Backend, fastConv()
	if engine == "stock" {
		gemm, conv = stockGEMM, "gorgonia im2col"
	}
	return &TrainResult{
		Engine: engine, GEMM: gemm, Conv: conv, Precision: prec.String(), Arch: arch, Batch: batch, Size: size, Steps: steps,
		StepSeconds: el / float64(steps), ImagesPerSec: float64(batch*steps) / el,
		PeakRSSMB: peakRSSMB(), AllocMBStep: float64(ms1.TotalAlloc-ms0.TotalAlloc) / float64(steps) / (1 << 20),
		Threads: runtime.GOMAXPROCS(0), Sched: sched,
	}, nil
}

// fastConv names the fast engine's convolutions: the backend and, with
// oneDNN, its release and precision ("onednn (oneDNN 3.2.0, bf16)").
func fastConv() string {
	if e, err := ops.ConvEngine(); err == nil && e != ops.ConvBackend+", float32" {
		return ops.ConvBackend + " (" + e + ")"
	}
	return ops.ConvBackend
}

func oneHot(y []int, k int) *tensor.Dense {
	d := make([]float32, len(y)*k)
	for i, c := range y {
		d[i*k+c] = 1
	}
	return tensor.New(tensor.WithShape(len(y), k), tensor.WithBacking(d))
}

// peakRSSMB reads the process's peak resident set size (VmHWM) from
// /proc/self/status; 0 where that file does not exist.
func peakRSSMB() float64 {
	b, _ := train.ProcField("/proc/self/status", "VmHWM:")
	return float64(b) / (1 << 20)
}
