package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/pipeline"
)

func extractCommand() *cli.Command {
	return &cli.Command{
		Name:  "extract",
		Usage: "extract frozen features of a dataset with an ONNX model (ONNX Runtime); resumes an interrupted run",
		Description: "Decodes and resizes images on a worker pool that overlaps ONNX Runtime and writes\n" +
			"features (float32 [N, D]) to --out, labels (int64 [N]) to <out>_labels.npy when the data\n" +
			"are labelled and the source of every row to <out>_index.txt. Finished chunks of rows are\n" +
			"kept in <out>.partial/ until the end: rerunning the same command after an interruption\n" +
			"continues from the last finished chunk and gives the same files as an uninterrupted run.\n" +
			"With --shard i/N it extracts rows [floor(i*n/N), floor((i+1)*n/N)) to <stem>-iiiii-of-NNNNN.npy\n" +
			"(+ _labels.npy, _index.txt, .json record) beside --out STEM.json, for N jobs of any scheduler.",
		Flags: append(append(dataFlags(), runtimeFlags()...),
			&cli.StringFlag{Name: "model", Usage: "ONNX model", Required: true},
			&cli.StringFlag{Name: "split", Value: "test", Usage: `split to extract ("" for a folder of images without splits)`},
			&cli.StringFlag{Name: "out", Usage: "features .npy (float32 [N, D]); labels go to <out>_labels.npy, sources to <out>_index.txt", Required: true},
			&cli.StringFlag{Name: "output", Usage: "model output to extract (default: features, or the model's only output)"},
			&cli.IntFlag{Name: "workers", Usage: "image decoding goroutines (0: one per core)"},
			&cli.IntFlag{Name: "chunk", Value: 4096, Usage: "rows per chunk of partial results (rounded up to a multiple of --batch); an interrupted run loses at most one chunk"},
			&cli.StringFlag{Name: "shard", Usage: "i/N: extract only shard i of N (contiguous rows of the sorted input) beside the manifest --out (a .json); the last shard to finish writes the manifest"},
			&cli.BoolFlag{Name: "restart", Usage: "discard partial results of an earlier run instead of resuming"},
			&cli.IntFlag{Name: "stop-after", Hidden: true, Usage: "stop once this many rows are saved, as if interrupted (tests)"},
			jsonFlag,
		),
		Action: func(c *cli.Context) error {
			res, err := pipeline.ExtractFiles(pipeline.ExtractFilesConfig{
				Model: c.String("model"), Data: c.String("data"), Split: c.String("split"), Out: c.String("out"),
				Output: c.String("output"), Shard: c.String("shard"), Open: openOptions(c), Runtime: runtimeOptions(c),
				Batch: c.Int("batch"), Workers: c.Int("workers"), Chunk: c.Int("chunk"), Restart: c.Bool("restart"),
				StopAfter: c.Int("stop-after"), Log: os.Stderr,
			})
			if err != nil {
				return err
			}
			return maybeJSON(c, res)
		},
	}
}
