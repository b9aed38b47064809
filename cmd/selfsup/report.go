package main

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/pipeline"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "write a Markdown report with PNG plots: training curves of one or more runs (overlaid), and with --data the linear probe's confusion matrix, a PCA of test features, nearest neighbours and kNN accuracy over checkpoints",
		ArgsUsage: "RUN... (options go before the run directories)",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "output folder (default: <first RUN>/report)"},
			&cli.StringFlag{Name: "data", Usage: "labelled images with train and test splits for the frozen-feature sections (folder or .tar, mnist, fashion-mnist)"},
			&cli.StringFlag{Name: "model", Usage: "ONNX model for the frozen-feature sections (default: the first run's newest checkpoint, exported into --out)"},
			&cli.IntFlag{Name: "max-train", Value: 10000, Usage: "training images for the probe, kNN and neighbours (class-balanced subset; 0: all)"},
			&cli.IntFlag{Name: "points", Value: 2000, Usage: "test images in the PCA plot (class-balanced subset)"},
			&cli.IntFlag{Name: "queries", Value: 8, Usage: "query images (rows) in the nearest-neighbour grid"},
			&cli.IntFlag{Name: "neighbours", Value: 8, Usage: "neighbours shown per query"},
			&cli.BoolFlag{Name: "svm", Usage: "use the one-vs-rest linear SVM for the probe and confusion matrix"},
			&cli.BoolFlag{Name: "knn-curve", Value: true, Usage: "with --data: kNN top-1 of every kept checkpoint of every run (and of the initial weights), plotted against images seen and wall time"},
			&cli.IntFlag{Name: "curve-train", Value: 5000, Usage: "training images (class-balanced) behind each point of the kNN curve"},
			&cli.IntFlag{Name: "curve-test", Value: 1000, Usage: "test images (class-balanced) behind each point of the kNN curve"},
			&cli.BoolFlag{Name: "skip-bad", Usage: "skip images that fail to decode"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed for subsets and query choice"},
			jsonFlag,
		}, runtimeFlags()...),
		Action: func(c *cli.Context) error {
			res, err := pipeline.Report(c.Context, pipeline.ReportConfig{
				Runs: c.Args().Slice(), Out: c.String("out"), Data: c.String("data"), Model: c.String("model"),
				MaxTrain: c.Int("max-train"), Points: c.Int("points"), Queries: c.Int("queries"), Neighbours: c.Int("neighbours"),
				SVM: c.Bool("svm"), KNNCurve: c.Bool("knn-curve"), CurveTrain: c.Int("curve-train"), CurveTest: c.Int("curve-test"),
				SkipBad: c.Bool("skip-bad"), Seed: c.Int64("seed"), Runtime: runtimeOptions(c), Batch: c.Int("batch"),
				Notes: []string{"Made by `selfsup " + strings.Join(os.Args[1:], " ") + "`."}, Log: os.Stderr,
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "wrote %s\n", res.Markdown)
			for _, name := range slices.Sorted(maps.Keys(res.Figures)) {
				fmt.Fprintf(os.Stderr, "  %-10s %s\n", name, res.Figures[name])
			}
			return jsonOut(c, res)
		},
	}
}
