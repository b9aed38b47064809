package pipeline

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/data/scene"
	"github.com/selfsup/selfsup/pretext"
	"github.com/selfsup/selfsup/train"
)

// EvalPretextConfig is `selfsup eval pretext`: the pretext-task accuracy
// of a run on held-out images.
type EvalPretextConfig struct {
	Run string // pretraining run (its newest valid checkpoint)
	// Data is the images (default: the run's own data); Split is
	// "heldout" (the images the run held out of its training split) or a
	// split name such as test.
	Data, Split string
	SkipBad     bool
	// SaveInpaint, for inpainting runs, is a PNG file for the first 16
	// images (image, masked view, filled in).
	SaveInpaint string
	// SaveColorized, for colorization runs, is a PNG file for the first
	// 16 images (grey input, prediction, truth); for splitbrain runs
	// (grey input, the L half's colours, the ab half's lightness, truth).
	SaveColorized string
	// SaveScenes, for synthetic runs, is a PNG file for the first 8
	// held-out scenes (scene, depth, normals, contours: truth and
	// prediction).
	SaveScenes string
	// Scenes is the number of held-out scenes a synthetic run is scored
	// on (default 1024).
	Scenes int
	Log    io.Writer
}

// EvalPretext measures the run's pretext accuracy and, for inpainting
// runs, the masked-region reconstruction error against predicting the
// mean, for colorization runs the raw ab accuracy (AuC) against
// predicting grey, for splitbrain runs both halves' figures (the L -> ab
// half's as colorization's, the ab -> L half's L-bin top-1 and L* error
// against predicting the mean lightness), for synthetic runs depth, normal
// and contour errors on freshly generated scenes. The result is what
// `selfsup eval pretext --json` prints.
func EvalPretext(ctx context.Context, c EvalPretextConfig) (map[string]any, error) {
	log := logTo(c.Log)
	ck, path, err := LatestCheckpoint(c.Run, log)
	if err != nil {
		return nil, err
	}
	spec := c.Data
	if spec == "" {
		spec = ck.Config.Data
	}
	split := c.Split
	if split == "" {
		split = "heldout"
	}
	oo := data.OpenOptions{SkipBad: c.SkipBad, Channels: ck.Config.Pretext.Channels, Log: log}
	var ds data.Dataset
	if split == "heldout" {
		all, err := data.Load(spec, "train", oo)
		if err != nil {
			return nil, err
		}
		v := ck.Config.ValImages
		if v <= 0 || all.Len() <= 2*v {
			return nil, fmt.Errorf("eval pretext: the run held out no images (val_images %d); give --split test", v)
		}
		_, va := data.Split(all.Len(), float64(v)/float64(all.Len()), ck.Config.Seed)
		ds = data.Subset(all, va)
	} else if ds, err = data.Load(spec, split, oo); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if w := ck.Config.Weak; w != nil { // scored on the classes the head predicts, without flips
		if ds, err = w.Apply(ds, ck.Config.Seed, false); err != nil {
			return nil, err
		}
	}
	acc, n, err := train.EvaluatePretext(ck, ds)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "%s (%s, step %d): pretext accuracy %.4f on %d %s images\n", ck.Config.Task, path, ck.Step, acc, n, split)
	out := map[string]any{"task": ck.Config.Task, "checkpoint": path, "step": ck.Step, "pretext_acc": acc, "images": n, "split": split}
	// Classifiers (supervised, semi-supervised): the trained head's top-1
	// and top-5 on every image, unaugmented.
	if t, err := pretext.New(ck.Config.Task); err == nil && t.NeedsLabels() {
		ev, err := train.Evaluate(ck, ds)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "classifier: top-1 %.4f, top-5 %.4f on %d %s images\n", ev.Top1, ev.Top5, ev.Images, split)
		out["class_top1"], out["class_top5"], out["class_images"] = ev.Top1, ev.Top5, ev.Images
	}
	// Inpainting runs: the masked-region reconstruction error on every
	// image, unaugmented, against predicting the mean; colorization runs:
	// the ab accuracy against predicting grey.
	if t, err := pretext.New(ck.Config.Task); err == nil {
		if syn, ok := t.(pretext.Synthetic); ok {
			if err := evalSynthetic(syn, ck, c.Scenes, c.SaveScenes, out, log); err != nil {
				return nil, err
			}
		}
		if col, ok := t.(pretext.Colorization); ok {
			if err := evalColorization(col, ck, ds, split, c.SaveColorized, out, log); err != nil {
				return nil, err
			}
		}
		if sb, ok := t.(pretext.SplitBrain); ok {
			cfg := ck.Config
			sc, err := sb.Evaluate(cfg.Arch, ck.Backbone, ck.Heads, cfg.Pretext, cfg.Batch, ds)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(log, "L -> ab: raw ab accuracy (AuC of per-pixel ab error 0-%d) %.4f (predicting grey: %.4f); nearest ab bin most probable in %.4f of the cells\n",
				pretext.ABMaxError, sc.AuC, sc.GreyAuC, sc.ABAcc)
			fmt.Fprintf(log, "ab -> L: L-bin top-1 %.4f of the cells; mean |L* error| %.2f (predicting the mean lightness: %.2f); %d %s images\n",
				sc.LAcc, sc.LError, sc.LErrorMean, sc.Images, split)
			out["ab_auc"], out["ab_auc_grey"], out["ab_bin_acc"], out["l_bin_acc"] = sc.AuC, sc.GreyAuC, sc.ABAcc, sc.LAcc
			out["l_error"], out["l_error_mean"], out["split_images"] = sc.LError, sc.LErrorMean, sc.Images
			if f := c.SaveColorized; f != "" {
				img, err := sb.Picture(cfg.Arch, ck.Backbone, ck.Heads, cfg.Pretext, cfg.Batch, ds, 16)
				if err == nil {
					err = writePNG(f, img)
				}
				if err != nil {
					return nil, err
				}
				fmt.Fprintf(log, "wrote %s\n", f)
			}
		}
		if ip, ok := t.(pretext.Inpaint); ok {
			sc, err := ip.Evaluate(ck.Config.Arch, ck.Backbone, ck.Heads, ck.Config.Pretext, ck.Config.Batch, ds, ck.Config.Seed)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(log, "masked-region MSE %.4f (predicting the mean: %.4f; normalised units) on %d %s images\n", sc.MSE, sc.BaselineMSE, sc.Images, split)
			out["recon_mse"], out["recon_mse_baseline"], out["recon_images"] = sc.MSE, sc.BaselineMSE, sc.Images
			if f := c.SaveInpaint; f != "" {
				if err := saveInpaintPNG(ip, ck, ds, f); err != nil {
					return nil, err
				}
				fmt.Fprintf(log, "wrote %s\n", f)
			}
		}
	}
	return out, nil
}

// evalColorization adds the colorization figures to out and writes the
// picture to file when it is set.
func evalColorization(col pretext.Colorization, ck *train.Checkpoint, ds data.Dataset, split, file string, out map[string]any, log io.Writer) error {
	cfg := ck.Config
	sc, err := col.Evaluate(cfg.Arch, ck.Backbone, ck.Heads, cfg.Pretext, cfg.Batch, ds)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "raw ab accuracy (AuC of per-pixel ab error 0-%d) %.4f (predicting grey: %.4f); nearest bin most probable in %.4f of the cells; %d %s images\n",
		pretext.ABMaxError, sc.AuC, sc.GreyAuC, sc.Acc, sc.Images, split)
	out["ab_auc"], out["ab_auc_grey"], out["bin_acc"], out["ab_images"] = sc.AuC, sc.GreyAuC, sc.Acc, sc.Images
	if file == "" {
		return nil
	}
	img, err := col.Picture(cfg.Arch, ck.Backbone, ck.Heads, cfg.Pretext, cfg.Batch, ds, 16)
	if err != nil {
		return err
	}
	if err := writePNG(file, img); err != nil {
		return err
	}
	fmt.Fprintf(log, "wrote %s\n", file)
	return nil
}

// evalSynthetic adds the synthetic task's figures on n held-out scenes
// (default 1024; scene.Generate with pretext.SyntheticEvalSeed of the
// run's seed) to out and writes the picture of the first 8 to file when it
// is set.
func evalSynthetic(syn pretext.Synthetic, ck *train.Checkpoint, n int, file string, out map[string]any, log io.Writer) error {
	cfg := ck.Config
	if n <= 0 {
		n = 1024
	}
	seed := pretext.SyntheticEvalSeed(cfg.Seed)
	sc, err := syn.Evaluate(cfg.Arch, ck.Backbone, ck.Heads, cfg.Pretext, cfg.Batch, n, seed)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "synthetic, %d held-out scenes (seed %d, %dx%d grid): depth L1 %.4f of %g units (every pixel's mean depth: %.4f); normals %.2f° mean, %.2f° median, %.1f%% within 22.5° (every pixel's mean normal: %.2f°); contours F %.4f at %.3f, AP %.4f (%.1f%% of pixels are contours)\n",
		sc.Scenes, seed, sc.Grid, sc.Grid, sc.DepthL1, scene.MaxDepth, sc.DepthL1Mean, sc.NormalDeg, sc.NormalMedianDeg, 100*sc.NormalWithin[1], sc.NormalDegMean, sc.ContourF, sc.ContourThreshold, sc.ContourAP, 100*sc.ContourPositive)
	out["depth_l1"], out["depth_l1_mean_baseline"] = sc.DepthL1, sc.DepthL1Mean
	out["normal_deg"], out["normal_median_deg"], out["normal_within_11_22_30"], out["normal_deg_mean_baseline"] = sc.NormalDeg, sc.NormalMedianDeg, sc.NormalWithin, sc.NormalDegMean
	out["contour_f"], out["contour_threshold"], out["contour_ap"], out["contour_positive_fraction"] = sc.ContourF, sc.ContourThreshold, sc.ContourAP, sc.ContourPositive
	out["scenes"], out["scene_seed"] = sc.Scenes, seed
	if file == "" {
		return nil
	}
	img, err := syn.Picture(cfg.Arch, ck.Backbone, ck.Heads, cfg.Pretext, cfg.Batch, 8, seed)
	if err != nil {
		return err
	}
	if err := writePNG(file, img); err != nil {
		return err
	}
	fmt.Fprintf(log, "wrote %s\n", file)
	return nil
}

// writePNG encodes img to file.
func writePNG(file string, img image.Image) error {
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

// saveInpaintPNG writes the inpainting picture of the first 16 images of
// ds (see pretext.Inpaint.Picture) to file.
func saveInpaintPNG(ip pretext.Inpaint, ck *train.Checkpoint, ds data.Dataset, file string) error {
	img, err := ip.Picture(ck.Config.Arch, ck.Backbone, ck.Heads, ck.Config.Pretext, ck.Config.Batch, ds, 16, ck.Config.Seed)
	if err != nil {
		return err
	}
	return writePNG(file, img)
}
