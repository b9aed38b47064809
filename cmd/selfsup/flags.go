package main

import (
	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/pipeline"
	"github.com/selfsup/selfsup/runtime"
)

// jsonFlag is --json, which every measuring command has.
var jsonFlag = &cli.BoolFlag{Name: "json", Usage: "print one JSON object as the last stdout line"}

// precisionFlag is --precision, the convolutions' arithmetic (train.Config.Precision).
var precisionFlag = &cli.StringFlag{Name: "precision", Value: "float32", Usage: "convolutions: float32, or bf16 (bfloat16 inputs, float32 accumulation and weights; faster where the CPU has AMX or AVX-512 BF16, see README)"}

// dataFlags are how a command reads --data (see data.Open).
func dataFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "data", Usage: "images: fashion-mnist, mnist, a folder (IDX, CIFAR-10 binary, <split>/<class>/<img>) or a .tar/.tar.gz", Required: true},
		&cli.BoolFlag{Name: "skip-bad", Usage: "skip (and count) images that fail to decode instead of stopping"},
		&cli.IntFlag{Name: "channels", Usage: "convert image folders to 1 or 3 channels (0: as stored)"},
		&cli.IntFlag{Name: "size", Usage: "resize image folders to SIZE x SIZE pixels (0: as stored)"},
	}
}

// openOptions reads dataFlags.
func openOptions(c *cli.Context) data.OpenOptions {
	return data.OpenOptions{SkipBad: c.Bool("skip-bad"), Channels: c.Int("channels"), Size: c.Int("size"), MaxPixels: c.Int64("max-pixels"), Log: c.App.ErrWriter}
}

// runtimeFlags are the ONNX Runtime settings of every command that runs a
// model.
func runtimeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu, cuda or cuda:N (needs ONNX Runtime's CUDA provider; see scripts/cuda_setup.sh)"},
		&cli.IntFlag{Name: "batch", Value: 64, Usage: "images per ONNX Runtime call (1-4096)"},
		&cli.IntFlag{Name: "threads", Usage: "ONNX Runtime intra-op threads (0: one per core)"},
		&cli.BoolFlag{Name: "spin", Value: true, Usage: "let ONNX Runtime's threads busy-wait for work (--spin=false leaves idle cores to image decoding or a training run alongside)"},
	}
}

// runtimeOptions reads runtimeFlags (all but --batch).
func runtimeOptions(c *cli.Context) runtime.Options {
	return runtime.Options{Device: c.String("device"), IntraOpThreads: c.Int("threads"), DisableSpinning: !c.Bool("spin")}
}

// openSession opens --model with runtimeFlags, checking --batch first.
func openSession(c *cli.Context) (*runtime.Session, error) {
	if err := pipeline.CheckBatch(c.Int("batch")); err != nil {
		return nil, err
	}
	return runtime.Open(c.String("model"), runtimeOptions(c))
}
