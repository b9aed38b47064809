package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/train"
)

func init() { benchCommands = append(benchCommands, benchTrainCommand()) }

func benchTrainCommand() *cli.Command {
	return &cli.Command{
		Name:  "train",
		Usage: "training throughput (forward + backward + SGD) and peak memory on random images",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "arch", Value: "resnet18c", Usage: "architecture"},
			&cli.IntFlag{Name: "batch", Value: 64, Usage: "images per step"},
			&cli.IntFlag{Name: "size", Usage: "input size in pixels (default: 32 for CIFAR variants, 224 otherwise)"},
			&cli.StringFlag{Name: "engine", Value: "fast", Usage: "fast (selfsup ops), stock (Gorgonia's own ops) or both (one child process each, so peak RSS is per engine)"},
			&cli.IntFlag{Name: "warmup", Value: 1, Usage: "untimed steps first"},
			&cli.IntFlag{Name: "steps", Value: 3, Usage: "timed steps"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a Go CPU profile of the timed steps to this file (go tool pprof reads it)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object as the last stdout line"},
		},
		Action: func(c *cli.Context) error {
			if c.String("engine") == "both" {
				return benchTrainBoth(c)
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
			r, err := train.BenchTrain(c.String("arch"), c.String("engine"), c.Int("batch"), c.Int("size"), c.Int("warmup"), c.Int("steps"))
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%s engine (%s conv, %s GEMM), %s batch %d at %d px: %.2f img/s, %.3f s/step, peak RSS %.0f MB, %.0f MB allocated/step\n",
				r.Engine, r.Conv, r.GEMM, r.Arch, r.Batch, r.Size, r.ImagesPerSec, r.StepSeconds, r.PeakRSSMB, r.AllocMBStep)
			if c.Bool("json") {
				return printJSON(r)
			}
			return nil
		},
	}
}

// benchTrainBoth runs each engine in its own child process and reports
// both with their ratio.
func benchTrainBoth(c *cli.Context) error {
	res := map[string]any{}
	var fast, stock float64
	for _, engine := range []string{"fast", "stock"} {
		args := []string{"bench", "train", "--engine", engine, "--arch", c.String("arch"), "--batch", fmt.Sprint(c.Int("batch")),
			"--size", fmt.Sprint(c.Int("size")), "--warmup", fmt.Sprint(c.Int("warmup")), "--steps", fmt.Sprint(c.Int("steps")), "--json"}
		cmd := exec.Command(os.Args[0], args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("bench train: %s engine: %w", engine, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var r train.BenchResult
		if err := jsonUnmarshal(lines[len(lines)-1], &r); err != nil {
			return fmt.Errorf("bench train: %s engine output: %w", engine, err)
		}
		res[engine] = r
		if engine == "fast" {
			fast = r.ImagesPerSec
		} else {
			stock = r.ImagesPerSec
		}
	}
	if stock > 0 {
		res["speedup"] = fast / stock
		fmt.Fprintf(os.Stderr, "fast / stock: %.2fx\n", fast/stock)
	}
	if c.Bool("json") {
		return printJSON(res)
	}
	return nil
}
