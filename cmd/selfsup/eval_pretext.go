package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/train"
)

func init() { evalCommands = append(evalCommands, evalPretextCommand()) }

func evalPretextCommand() *cli.Command {
	return &cli.Command{
		Name:  "pretext",
		Usage: "pretext-task accuracy of a run (jigsaw permutation, rotation, PIRL positive-vs-negatives) on held-out images",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "run", Usage: "pretraining run (its newest valid checkpoint)", Required: true},
			&cli.StringFlag{Name: "data", Usage: "images (default: the run's own data)"},
			&cli.StringFlag{Name: "split", Value: "heldout", Usage: "heldout (the images the run held out of its training split) or a split name such as test"},
			&cli.BoolFlag{Name: "skip-bad", Usage: "skip images that fail to decode"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object as the last stdout line"},
		},
		Action: func(c *cli.Context) error {
			ck, path, warns, err := train.LatestCheckpoint(c.String("run"))
			for _, w := range warns {
				fmt.Fprintf(os.Stderr, "warning: %s\n", w)
			}
			if err != nil {
				return err
			}
			spec := c.String("data")
			if spec == "" {
				spec = ck.Config.Data
			}
			split := c.String("split")
			var ds data.Dataset
			if split == "heldout" {
				all, err := loadAll(spec, "train", c.Bool("skip-bad"), ck.Config.Pretext.Channels, 0)
				if err != nil {
					return err
				}
				v := ck.Config.ValImages
				if v <= 0 || all.Len() <= 2*v {
					return fmt.Errorf("eval pretext: the run held out no images (val_images %d); give --split test", v)
				}
				_, va := data.Split(all.Len(), float64(v)/float64(all.Len()), ck.Config.Seed)
				ds = data.Subset(all, va)
			} else if ds, err = loadAll(spec, split, c.Bool("skip-bad"), ck.Config.Pretext.Channels, 0); err != nil {
				return err
			}
			acc, n, err := train.EvaluatePretext(ck, ds)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%s (%s, step %d): pretext accuracy %.4f on %d %s images\n", ck.Config.Task, path, ck.Step, acc, n, split)
			if c.Bool("json") {
				return printJSON(map[string]any{"task": ck.Config.Task, "checkpoint": path, "step": ck.Step, "pretext_acc": acc, "images": n, "split": split})
			}
			return nil
		},
	}
}
