package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/pipeline"
)

func evalPretextCommand() *cli.Command {
	return &cli.Command{
		Name:  "pretext",
		Usage: "pretext-task accuracy of a run (jigsaw permutation, rotation, PIRL positive-vs-negatives; inpainting, colorization, split-brain and synthetic-scene errors) on held-out images",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "run", Usage: "pretraining run (its newest valid checkpoint)", Required: true},
			&cli.StringFlag{Name: "data", Usage: "images (default: the run's own data)"},
			&cli.StringFlag{Name: "split", Value: "heldout", Usage: "heldout (the images the run held out of its training split) or a split name such as test"},
			&cli.BoolFlag{Name: "skip-bad", Usage: "skip images that fail to decode"},
			jsonFlag,
			&cli.StringFlag{Name: "save-inpaint", Usage: "inpaint runs: write a PNG of the first 16 images (image, masked view, filled in) to this file"},
			&cli.StringFlag{Name: "save-colorized", Usage: "colorization runs: write a PNG of the first 16 images (grey input, predicted colours, truth) to this file; splitbrain runs: (grey input, the L half's colours, the ab half's lightness, truth)"},
			&cli.StringFlag{Name: "save-scenes", Usage: "synthetic runs: write a PNG of 8 held-out scenes (scene; depth, normals, contours: truth and prediction) to this file"},
		},
		Action: func(c *cli.Context) error {
			out, err := pipeline.EvalPretext(c.Context, pipeline.EvalPretextConfig{Run: c.String("run"), Data: c.String("data"), Split: c.String("split"),
				SkipBad: c.Bool("skip-bad"), SaveInpaint: c.String("save-inpaint"), SaveColorized: c.String("save-colorized"), SaveScenes: c.String("save-scenes"), Log: os.Stderr})
			if err != nil {
				return err
			}
			return maybeJSON(c, out)
		},
	}
}
