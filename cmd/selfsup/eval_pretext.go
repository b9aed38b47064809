package main

import (
	"fmt"
	"image/png"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/pretext"
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
			&cli.StringFlag{Name: "save-inpaint", Usage: "inpaint runs: write a PNG of the first 16 images (image, masked view, filled in) to this file"},
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
			out := map[string]any{"task": ck.Config.Task, "checkpoint": path, "step": ck.Step, "pretext_acc": acc, "images": n, "split": split}
			// Inpainting runs: the masked-region reconstruction error on
			// every image, unaugmented, against predicting the mean.
			if t, err := pretext.New(ck.Config.Task); err == nil {
				if ip, ok := t.(pretext.Inpaint); ok {
					sc, err := ip.Evaluate(ck.Config.Arch, ck.Backbone, ck.Heads, ck.Config.Pretext, ck.Config.Batch, ds, ck.Config.Seed)
					if err != nil {
						return err
					}
					fmt.Fprintf(os.Stderr, "masked-region MSE %.4f (predicting the mean: %.4f; normalised units) on %d %s images\n", sc.MSE, sc.BaselineMSE, sc.Images, split)
					out["recon_mse"], out["recon_mse_baseline"], out["recon_images"] = sc.MSE, sc.BaselineMSE, sc.Images
					if f := c.String("save-inpaint"); f != "" {
						if err := saveInpaintPNG(ip, ck, ds, f); err != nil {
							return err
						}
						fmt.Fprintf(os.Stderr, "wrote %s\n", f)
					}
				}
			}
			if c.Bool("json") {
				return printJSON(out)
			}
			return nil
		},
	}
}

// saveInpaintPNG writes the inpainting picture of the first 16 images of
// ds (see pretext.Inpaint.Picture) to file.
func saveInpaintPNG(ip pretext.Inpaint, ck *train.Checkpoint, ds data.Dataset, file string) error {
	img, err := ip.Picture(ck.Config.Arch, ck.Backbone, ck.Heads, ck.Config.Pretext, ck.Config.Batch, ds, 16, ck.Config.Seed)
	if err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("eval pretext: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("eval pretext: writing %s: %w", file, err)
	}
	return f.Close()
}
