package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/bench"
)

func benchExtractCommand() *cli.Command {
	return &cli.Command{
		Name:  "extract",
		Usage: "feature extraction throughput: bare ONNX Runtime session on pre-decoded tensors vs the full pipeline (files to .npy)",
		Description: "Both are measured in the same run on the same images and session, alternating, --repeats times;\n" +
			"the medians are reported, and the median of the per-repeat ratios (pipeline_over_session_paired,\n" +
			"steadier when the machine's load changes). session_images_per_sec: Session.Run over batches of tensors decoded\n" +
			"beforehand. pipeline_images_per_sec: what `selfsup extract` does, from image files to the\n" +
			"features .npy, labels and index (decoding and resizing on a worker pool that overlaps ONNX\n" +
			"Runtime). Each also gets its process CPU time per image (all threads), which other load on\n" +
			"the machine disturbs less than the wall-clock rates. --data synthetic generates --images\n" +
			"photograph-like JPEG files of 320x240 pixels.",
		Flags: append(runtimeFlags(),
			&cli.StringFlag{Name: "model", Usage: "ONNX model", Required: true},
			&cli.StringFlag{Name: "data", Usage: "images: a folder or .tar (see extract), or \"synthetic\"", Required: true},
			&cli.StringFlag{Name: "split", Value: "test", Usage: `split of --data ("" for a folder without splits)`},
			&cli.IntFlag{Name: "size", Usage: "model input size in pixels (default: the model's; other sizes need a --dynamic-hw export)"},
			&cli.IntFlag{Name: "images", Value: 256, Usage: "images per measurement (the first ones of the split)"},
			&cli.IntFlag{Name: "workers", Usage: "image decoding goroutines in the pipeline (0: one per core)"},
			&cli.IntFlag{Name: "repeats", Value: 3, Usage: "measurements of each kind (alternating); medians are reported"},
			&cli.StringFlag{Name: "compare-device", Usage: "also extract the first batch on this device (e.g. cpu when --device cuda) and report the largest difference"},
			&cli.StringFlag{Name: "output", Usage: "the model output measured (default: features, or the last output of a stage-only export)"},
			&cli.StringFlag{Name: "compare", Usage: "a second model (e.g. the --quantize int8 export of the same backbone) measured alike in the same run: img/s of each, their ratio and the cosine of their features"},
			jsonFlag,
		),
		Action: func(c *cli.Context) error {
			res, err := bench.Extract(bench.ExtractConfig{Model: c.String("model"), Data: c.String("data"), Split: c.String("split"),
				Size: c.Int("size"), Images: c.Int("images"), Workers: c.Int("workers"), Repeats: c.Int("repeats"),
				CompareDevice: c.String("compare-device"), Compare: c.String("compare"), Output: c.String("output"), Runtime: runtimeOptions(c), Batch: c.Int("batch"), Log: os.Stderr})
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%s on %s, batch %d at %d px, %d images: session %.1f img/s, pipeline %.1f img/s (%.0f%%); CPU per image: session %.1f ms, pipeline %.1f ms; load %s\n",
				filepath.Base(res.Model), res.Device, res.Batch, res.Size, res.Images, res.SessionIPS, res.PipelineIPS, 100*res.Ratio, res.SessionCPU, res.PipelineCPU, res.LoadBefore)
			if res.CompareModel != "" {
				fmt.Fprintf(os.Stderr, "vs %s: session %.1f img/s (%s %.2fx), pipeline %.1f img/s (%.2fx); feature cosine mean %.5f, min %.5f\n", filepath.Base(res.CompareModel), res.CompareSessionIPS, filepath.Base(res.Model), res.SessionSpeedup, res.ComparePipelineIPS, res.PipelineSpeedup, res.FeatureCosine[0], res.FeatureCosine[1])
			}
			return maybeJSON(c, res)
		},
	}
}
