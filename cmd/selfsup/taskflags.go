package main

import (
	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/pretext"
)

// taskFlags applies the task-specific flags of pretrain to the pretext
// config once the image size is known; nil when none is set.
func taskFlags(c *cli.Context) func(*pretext.Config) error {
	jig := c.IsSet("jigsaw-n") || c.IsSet("jigsaw-method") || c.IsSet("jigsaw-perms") || c.IsSet("jigsaw-head") ||
		c.Bool("no-gap") || c.Bool("no-tile-norm") || c.Bool("no-jitter")
	pirl := c.IsSet("pirl-loss") || c.IsSet("pirl-negatives") || c.IsSet("pirl-cold-bank")
	dc := c.IsSet("dc-k") || c.IsSet("dc-every") || c.IsSet("dc-images") || c.IsSet("dc-pca") || c.IsSet("dc-iters") || c.IsSet("dc-init")
	rp := c.IsSet("relpos-pairs") || c.IsSet("relpos-gap") || c.Bool("no-color-drop")
	ip := c.IsSet("inpaint-overlap") || c.IsSet("inpaint-width")
	if !jig && !pirl && !dc && !rp && !ip {
		return nil
	}
	return func(pc *pretext.Config) error {
		if jig {
			j := pretext.DefaultJigsawConfig(pc.InputSize)
			if c.IsSet("jigsaw-n") {
				j.N = c.Int("jigsaw-n")
			}
			if c.IsSet("jigsaw-method") {
				j.Method = c.String("jigsaw-method")
			}
			if c.IsSet("jigsaw-perms") {
				j.PermFile, j.N = c.String("jigsaw-perms"), 0
			}
			if c.IsSet("jigsaw-head") {
				j.Head = c.String("jigsaw-head")
			}
			j.Tiles.Gap = j.Tiles.Gap && !c.Bool("no-gap")
			j.Tiles.PerTileNorm = j.Tiles.PerTileNorm && !c.Bool("no-tile-norm")
			j.Tiles.Jitter = j.Tiles.Jitter && !c.Bool("no-jitter")
			if err := j.Validate(); err != nil {
				return err
			}
			pc.Jigsaw = &j
		}
		if pirl {
			p := pretext.DefaultPIRLConfig(0)
			p.Negatives = 0
			if c.IsSet("pirl-loss") {
				p.Loss = c.String("pirl-loss")
			}
			p.ColdBank = c.Bool("pirl-cold-bank")
			if c.IsSet("pirl-negatives") {
				p.Negatives = c.Int("pirl-negatives")
			}
			pc.PIRL = p
		}
		if dc {
			d := pretext.DefaultDeepClusterConfig()
			if c.IsSet("dc-k") {
				d.K = c.Int("dc-k")
			}
			if c.IsSet("dc-every") {
				d.Every = c.Int("dc-every")
			}
			if c.IsSet("dc-images") {
				d.Images = c.Int("dc-images")
			}
			if c.IsSet("dc-pca") {
				d.PCADim = c.Int("dc-pca")
			}
			if c.IsSet("dc-iters") {
				d.Iters = c.Int("dc-iters")
			}
			if c.IsSet("dc-init") {
				d.Init = c.String("dc-init")
			}
			pc.DeepCluster = d
		}
		if rp {
			r := pretext.DefaultRelPosConfig(pc.InputSize)
			if c.IsSet("relpos-pairs") {
				r.Pairs = c.Int("relpos-pairs")
			}
			if c.IsSet("relpos-gap") {
				r.Gap = c.Int("relpos-gap")
			}
			r.ColorDrop = r.ColorDrop && !c.Bool("no-color-drop")
			if err := r.Validate(); err != nil {
				return err
			}
			pc.RelPos = &r
		}
		if ip {
			in := pretext.DefaultInpaintConfig()
			if c.IsSet("inpaint-overlap") {
				in.Overlap = c.Int("inpaint-overlap")
			}
			if c.IsSet("inpaint-width") {
				in.Width = c.Int("inpaint-width")
			}
			if err := in.Validate(); err != nil {
				return err
			}
			pc.Inpaint = &in
		}
		return nil
	}
}
