package main

import (
	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/pretext"
)

// setFlags copies every flag of fields that is set into its field (*int,
// *string or *float64).
func setFlags(c *cli.Context, fields map[string]any) {
	for name, p := range fields {
		if !c.IsSet(name) {
			continue
		}
		switch p := p.(type) {
		case *int:
			*p = c.Int(name)
		case *string:
			*p = c.String(name)
		case *float64:
			*p = c.Float64(name)
		default:
			panic("setFlags: --" + name + ": unsupported field type")
		}
	}
}

// anySet reports whether any of the flags is set.
func anySet(c *cli.Context, names ...string) bool {
	for _, n := range names {
		if c.IsSet(n) {
			return true
		}
	}
	return false
}

// taskFlags applies the task-specific flags of pretrain to the pretext
// config once the image size is known; nil when none is set.
func taskFlags(c *cli.Context) func(*pretext.Config) error {
	jig := anySet(c, "jigsaw-n", "jigsaw-method", "jigsaw-perms", "jigsaw-head", "no-gap", "no-tile-norm", "no-jitter")
	pirl := anySet(c, "pirl-loss", "pirl-negatives", "pirl-cold-bank")
	dc := anySet(c, "dc-k", "dc-every", "dc-images", "dc-pca", "dc-iters", "dc-init")
	rp := anySet(c, "relpos-pairs", "relpos-gap", "no-color-drop")
	ip := anySet(c, "inpaint-overlap", "inpaint-width")
	sy := anySet(c, "synthetic-adapt")
	if !jig && !pirl && !dc && !rp && !ip && !sy {
		return nil
	}
	return func(pc *pretext.Config) error {
		if jig {
			j := pretext.DefaultJigsawConfig(pc.InputSize)
			setFlags(c, map[string]any{"jigsaw-n": &j.N, "jigsaw-method": &j.Method, "jigsaw-head": &j.Head})
			if c.IsSet("jigsaw-perms") {
				j.PermFile, j.N = c.String("jigsaw-perms"), 0
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
			setFlags(c, map[string]any{"pirl-loss": &p.Loss, "pirl-negatives": &p.Negatives})
			p.ColdBank = c.Bool("pirl-cold-bank")
			pc.PIRL = p
		}
		if dc {
			d := pretext.DefaultDeepClusterConfig()
			setFlags(c, map[string]any{"dc-k": &d.K, "dc-every": &d.Every, "dc-images": &d.Images, "dc-pca": &d.PCADim, "dc-iters": &d.Iters, "dc-init": &d.Init})
			pc.DeepCluster = d
		}
		if rp {
			r := pretext.DefaultRelPosConfig(pc.InputSize)
			setFlags(c, map[string]any{"relpos-pairs": &r.Pairs, "relpos-gap": &r.Gap})
			r.ColorDrop = r.ColorDrop && !c.Bool("no-color-drop")
			if err := r.Validate(); err != nil {
				return err
			}
			pc.RelPos = &r
		}
		if ip {
			in := pretext.DefaultInpaintConfig()
			setFlags(c, map[string]any{"inpaint-overlap": &in.Overlap, "inpaint-width": &in.Width})
			if err := in.Validate(); err != nil {
				return err
			}
			pc.Inpaint = &in
		}
		if sy {
			pc.Synthetic = &pretext.SyntheticConfig{Adapt: c.String("synthetic-adapt")}
		}
		return nil
	}
}
