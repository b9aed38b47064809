package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/bench"
)

// benchCommand is `selfsup bench` and its kinds.
func benchCommand(kinds ...*cli.Command) *cli.Command {
	return &cli.Command{Name: "bench", Usage: "benchmarks (speed and memory): " + fmt.Sprint(len(kinds)) + " kinds", Subcommands: kinds}
}

func benchTrainCommand() *cli.Command {
	return &cli.Command{
		Name:  "train",
		Usage: "training throughput (forward + backward + SGD) and peak memory on random images",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "arch", Value: "resnet18c", Usage: "architecture"},
			&cli.IntFlag{Name: "batch", Value: 64, Usage: "images per step"},
			&cli.IntFlag{Name: "size", Usage: "input size in pixels (default: 32 for CIFAR variants, 224 otherwise)"},
			&cli.StringFlag{Name: "engine", Value: "fast", Usage: "fast (selfsup ops), stock (Gorgonia's own ops) or both (one child process each, so peak RSS is per engine)"},
			&cli.StringFlag{Name: "stock-blas", Value: "openblas", Usage: "matrix products of the stock engine: openblas (multithreaded, GOMAXPROCS threads: stock Gorgonia at its best) or gonum (Gorgonia's default)"},
			&cli.IntFlag{Name: "warmup", Value: 1, Usage: "untimed steps first"},
			&cli.IntFlag{Name: "steps", Value: 3, Usage: "timed steps"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a Go CPU profile of the timed steps to this file (go tool pprof reads it; one engine only)"},
			&cli.StringFlag{Name: "peer", Usage: "after the Go engine(s), time a peer on the same network, batch, size, steps and threads (GOMAXPROCS): " +
				"torch (PyTorch CPU, NCHW-contiguous, channels_last and channels_last under bfloat16 autocast, each in its own process; " + bench.SetupHint + " first)"},
			&cli.StringFlag{Name: "python", Value: bench.DefaultPython, EnvVars: []string{"SELFSUP_PYTHON"},
				Usage: "Python interpreter with torch for --peer torch (a relative default is looked up in the working directory, then next to the binary's folder)"},
			&cli.IntFlag{Name: "streams", Value: 1, Usage: "fast engine: split each batch over this many streams of one thread each, run at once (data-parallel, see BENCHMARKS.md)"},
			&cli.StringFlag{Name: "precision", Value: "float32", Usage: "fast engine's convolutions: float32, bf16, or both (one child process each)"},
			&cli.IntFlag{Name: "contend", Usage: "start this many busy-looping processes (one core each) for the whole benchmark, stopped at its end: the documented competing load"},
			jsonFlag,
		},
		Action: func(c *cli.Context) error {
			_, stop, err := bench.Contend(c.Int("contend"))
			if err != nil {
				return err
			}
			defer stop()
			tc := bench.TrainConfig{Arch: c.String("arch"), Engine: c.String("engine"), StockBLAS: c.String("stock-blas"),
				Batch: c.Int("batch"), Size: c.Int("size"), Warmup: c.Int("warmup"), Steps: c.Int("steps"), Streams: c.Int("streams"), Precision: c.String("precision")}
			switch c.String("peer") {
			case "":
			case "torch":
				return benchCompare(c, tc)
			default:
				return fmt.Errorf("bench train: --peer %q, expected torch", c.String("peer"))
			}
			if tc.Engine == "both" || tc.Precision == "both" {
				return benchCompare(c, tc)
			}
			if p := c.String("cpuprofile"); p != "" {
				f, err := os.Create(p)
				if err != nil {
					return fmt.Errorf("bench train: --cpuprofile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("bench train: --cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			r, err := bench.Train(tc)
			if err != nil {
				return err
			}
			r.Contend = c.Int("contend")
			fmt.Fprintf(os.Stderr, "%s engine (%s conv, %s GEMM), %s batch %d at %d px: %.2f img/s, %.3f s/step, peak RSS %.0f MB, %.0f MB allocated/step\n",
				r.Engine, r.Conv, r.GEMM, r.Arch, r.Batch, r.Size, r.ImagesPerSec, r.StepSeconds, r.PeakRSSMB, r.AllocMBStep)
			return maybeJSON(c, r)
		},
	}
}

// benchCompare is `bench train` with --engine both or --peer: each engine
// in a child process of this binary.
func benchCompare(c *cli.Context, tc bench.TrainConfig) error {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	rep, err := bench.Compare(bench.CompareConfig{Train: tc, CPUProfile: c.String("cpuprofile"), Peer: c.String("peer"),
		Python: c.String("python"), PythonExplicit: c.IsSet("python"), Exe: exe, Log: os.Stderr})
	if err != nil {
		return err
	}
	rep.Contend = c.Int("contend")
	return maybeJSON(c, rep)
}
