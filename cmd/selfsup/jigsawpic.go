package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/pipeline"
	"github.com/selfsup/selfsup/pretext"
)

// jigsawPictureCommand returns `selfsup jigsaw-picture`: a PNG showing an
// image, its 3x3 Jigsaw tiles with their gaps, and the tiles shuffled by one
// permutation of the set, so a user can see what the network must solve.
func jigsawPictureCommand() *cli.Command {
	return &cli.Command{
		Name:      "jigsaw-picture",
		Usage:     "draw an image, its Jigsaw tiles with gaps, and the tiles shuffled by one permutation (PNG)",
		UsageText: "selfsup jigsaw-picture --data DATA --index I --perm K [--n N] [--method M] [--perm-seed S] [--perms FILE] [--out jigsaw.png]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Required: true, Usage: "images: fashion-mnist, mnist, a folder or a .tar"},
			&cli.StringFlag{Name: "split", Value: "train", Usage: "split to take the image from"},
			&cli.IntFlag{Name: "index", Usage: "`I`: the image's index in the split"},
			&cli.IntFlag{Name: "perm", Usage: "`K`: index of the permutation in the set (0-based, as the network's class)"},
			&cli.IntFlag{Name: "n", Value: 100, Usage: "permutations in the set (as pretrain's jigsaw default)"},
			&cli.StringFlag{Name: "method", Value: pretext.PermMethodMaxAvg, Usage: "permutation-set method: maxavg, maxmin, random"},
			&cli.Int64Flag{Name: "perm-seed", Value: 1, Usage: "permutation-set seed"},
			&cli.StringFlag{Name: "perms", Usage: "read the permutation set from `FILE` (written by selfsup perms) instead"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed for the crop and tile positions"},
			&cli.BoolFlag{Name: "no-gap", Usage: "cut whole cells (no gaps) instead of random tiles inside them"},
			&cli.BoolFlag{Name: "jitter", Usage: "show the colour and per-channel spatial jitter"},
			&cli.StringFlag{Name: "out", Value: "jigsaw.png", Usage: "PNG file to write"},
		},
		Action: func(c *cli.Context) error {
			n := c.Int("n")
			if c.String("perms") != "" && !c.IsSet("n") {
				n = 0
			}
			return pipeline.JigsawPicture(c.Context, pipeline.JigsawPictureConfig{Data: c.String("data"), Split: c.String("split"),
				Index: c.Int("index"), Perm: c.Int("perm"), N: n, Method: c.String("method"), PermSeed: c.Int64("perm-seed"), PermFile: c.String("perms"),
				Seed: c.Int64("seed"), NoGap: c.Bool("no-gap"), Jitter: c.Bool("jitter"), Out: c.String("out"), Log: os.Stderr})
		},
	}
}
