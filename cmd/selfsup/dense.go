package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/pipeline"
)

// denseFlags are the flags of eval segment and eval detect; layer is the default --layer.
func denseFlags(layer string) []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "model", Required: true, Usage: "ONNX model with stage-map outputs (selfsup export --outputs all)"},
		&cli.StringFlag{Name: "data", Required: true, Usage: "annotated images, folder or .tar: COCO128's layout (YOLO boxes, class-index PNG masks), Pascal VOC XML or COCO JSON"},
		&cli.StringFlag{Name: "layer", Value: layer, Usage: "stage map output(s), comma-separated; with several the head's layer is picked on the validation split; baselines: pixels (4x4 input patches flattened), prior (a constant input: the head learns the class prior)"},
		&cli.IntFlag{Name: "size", Usage: "square input size in px (0: the model's; a model with fixed height and width takes only its own)"},
		&cli.IntFlag{Name: "tile", Usage: "cut images larger than TILE x TILE px into tiles first (large aerial photographs; split train/test by image)"},
		&cli.StringFlag{Name: "train-split", Value: "train2017"}, &cli.StringFlag{Name: "test-split", Value: "val2017"},
		&cli.StringFlag{Name: "cache", Usage: "folder keeping extracted stage maps (.npy, named by the model's sha256, split, layer, size)"},
		&cli.StringFlag{Name: "picture", Usage: "write a PNG of a few test images with truth and prediction here"},
		&cli.BoolFlag{Name: "skip-bad", Usage: "skip images whose annotation or mask file is malformed (counted on stderr)"},
		&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the validation split, head training and bootstrap"}, jsonFlag,
	}, runtimeFlags()...)
}

func denseConfig(c *cli.Context) pipeline.DenseConfig {
	return pipeline.DenseConfig{Model: c.String("model"), Data: c.String("data"), TrainSplit: c.String("train-split"), TestSplit: c.String("test-split"),
		Layers: strings.Split(c.String("layer"), ","), Size: c.Int("size"), Tile: c.Int("tile"), Cache: c.String("cache"), SkipBad: c.Bool("skip-bad"), Seed: c.Int64("seed"),
		Picture: c.String("picture"), Runtime: runtimeOptions(c), Batch: c.Int("batch"), Log: os.Stderr}
}

// denseCommand is eval segment or eval detect: run gets the flags' config.
func denseCommand(name, usage, layer string, run func(pipeline.DenseConfig) (any, error)) *cli.Command {
	return &cli.Command{Name: name, Usage: usage, Flags: denseFlags(layer), Action: func(c *cli.Context) error {
		res, err := run(denseConfig(c))
		if err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, res)
		return maybeJSON(c, res)
	}}
}
