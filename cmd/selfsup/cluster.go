package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/pipeline"
)

func clusterCommand() *cli.Command {
	return &cli.Command{
		Name: "cluster",
		Usage: "k-means on frozen features (k-means++ seeding, restarts): train time and inertia, and NMI, adjusted Rand index " +
			"and purity against the labels when there are any",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "model", Usage: "ONNX model to extract features with (with --data)"},
			&cli.StringFlag{Name: "data", Usage: "images (with --model)"},
			&cli.StringFlag{Name: "split", Value: "test", Usage: "split of --data to cluster"},
			&cli.IntFlag{Name: "max-images", Usage: "cluster a class-balanced subset of at most this many images (0: all)"},
			&cli.StringFlag{Name: "features", Usage: "precomputed features .npy instead (labels from <name>_labels.npy when present)"},
			&cli.IntFlag{Name: "k", Value: 10, Usage: "clusters"},
			&cli.IntFlag{Name: "restarts", Value: 3, Usage: "k-means runs from different seedings; the lowest inertia is kept"},
			&cli.IntFlag{Name: "iters", Value: 100, Usage: "Lloyd iterations per run at most"},
			&cli.BoolFlag{Name: "l2-normalize", Usage: "cluster L2-normalised rows (cosine geometry)"},
			&cli.StringFlag{Name: "assignments", Usage: "write each row's cluster as int64 .npy here"},
			&cli.StringFlag{Name: "picture", Usage: "write a PNG of the images nearest each centroid here (with --model and --data)"},
			&cli.Int64Flag{Name: "seed", Value: 1},
			jsonFlag,
		}, runtimeFlags()...),
		Action: func(c *cli.Context) error {
			res, err := pipeline.Cluster(pipeline.ClusterConfig{
				Model: c.String("model"), Data: c.String("data"), Split: c.String("split"), MaxImages: c.Int("max-images"), Features: c.String("features"),
				Cluster:     eval.ClusterConfig{K: c.Int("k"), Restarts: c.Int("restarts"), Iters: c.Int("iters"), L2Normalize: c.Bool("l2-normalize"), Seed: c.Int64("seed")},
				Assignments: c.String("assignments"), Picture: c.String("picture"), Runtime: runtimeOptions(c), Batch: c.Int("batch"), Log: os.Stderr,
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(os.Stderr, res)
			return jsonOut(c, res)
		},
	}
}
