// Command selfsup trains self-supervised ResNet backbones, exports them to
// ONNX, extracts features with ONNX Runtime and evaluates them. Every
// command that measures something accepts --json and then prints exactly
// one JSON object as the last line of stdout; progress goes to stderr.
//
// This package is the table of contents: each command parses its flags
// into a config and calls one library function (pipeline, runtime, eval,
// bench); the commands are all listed here.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/pipeline"
)

func main() {
	app := &cli.App{
		Name:    "selfsup",
		Usage:   "self-supervised visual representation learning: train, export, extract, evaluate",
		Version: pipeline.Version,
		Commands: []*cli.Command{
			demoCommand(),
			permsCommand(),
			pretrainCommand(),
			exportCommand(),
			extractCommand(),
			evalCommand(
				baselinesCommand(),
				evalPretextCommand(),
				clusterCommand(),
				apCommand(),
				denseCommand("segment", "frozen-feature segmentation probe: a per-pixel linear head on bilinearly upsampled stage maps; "+
					"mIoU, pixel accuracy, Jaccard, Dice with bootstrap 95% intervals", "stage2", pipeline.RunSegment),
				denseCommand("detect", "frozen-feature detection probe: CenterNet-style heads (linear 1x1 and a small conv) on stage maps, picked on validation; "+
					"COCO AP/AP50/AP75, VOC07 AP50, class-agnostic and person AP with bootstrap 95% intervals", "stage3", pipeline.RunDetect),
			),
			ablateCommand(),
			reproduceCommand(),
			jigsawPictureCommand(),
			reportCommand(),
			serveCommand(),
			benchCommand(benchExtractCommand(), benchTrainCommand(), benchServeCommand()),
		},
		Writer:    os.Stdout,
		ErrWriter: os.Stderr,
		Flags: []cli.Flag{&cli.Int64Flag{Name: "max-pixels", Value: data.DefaultMaxPixels,
			Usage: "refuse images whose header declares more pixels than this (every reader; serve has its own)"}},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "selfsup: %v\n", err)
		os.Exit(1)
	}
}

// maybeJSON prints v as the JSON line when --json is set.
func maybeJSON(c *cli.Context, v any) error {
	if c.Bool("json") {
		return printJSON(v)
	}
	return nil
}

// printJSON writes v as one line of JSON to stdout.
func printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(os.Stdout, string(b))
	return err
}
