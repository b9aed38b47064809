package main

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/runlock"
	"github.com/selfsup/selfsup/runtime"
)

func extractCommand() *cli.Command {
	return &cli.Command{
		Name:  "extract",
		Usage: "extract frozen features of a dataset with an ONNX model (ONNX Runtime); resumes an interrupted run",
		Description: "Decodes and resizes images on a worker pool that overlaps ONNX Runtime and writes\n" +
			"features (float32 [N, D]) to --out, labels (int64 [N]) to <out>_labels.npy when the data\n" +
			"are labelled and the source of every row to <out>_index.txt. Finished chunks of rows are\n" +
			"kept in <out>.partial/ until the end: rerunning the same command after an interruption\n" +
			"continues from the last finished chunk and gives the same files as an uninterrupted run.",
		Flags: append(append(dataFlags(), runtimeFlags()...),
			&cli.StringFlag{Name: "model", Usage: "ONNX model", Required: true},
			&cli.StringFlag{Name: "split", Value: "test", Usage: `split to extract ("" for a folder of images without splits)`},
			&cli.StringFlag{Name: "out", Usage: "features .npy (float32 [N, D]); labels go to <out>_labels.npy, sources to <out>_index.txt", Required: true},
			&cli.StringFlag{Name: "output", Usage: "model output to extract (default: features, or the model's only output)"},
			&cli.IntFlag{Name: "workers", Usage: "image decoding goroutines (0: one per core)"},
			&cli.IntFlag{Name: "chunk", Value: 4096, Usage: "rows per chunk of partial results (rounded up to a multiple of --batch); an interrupted run loses at most one chunk"},
			&cli.BoolFlag{Name: "restart", Usage: "discard partial results of an earlier run instead of resuming"},
			&cli.IntFlag{Name: "stop-after", Hidden: true, Usage: "stop once this many rows are saved, as if interrupted (tests)"},
			jsonFlag,
		),
		Action: func(c *cli.Context) error {
			lock, err := runlock.Acquire(c.String("out")+".lock", "extract: output "+c.String("out"))
			if err != nil {
				return err
			}
			defer lock.Release()
			sess, err := openSession(c)
			if err != nil {
				return err
			}
			defer sess.Close()
			ds, err := data.Open(c.String("data"), c.String("split"), openOptions(c))
			if err != nil {
				return err
			}
			dataSpec := c.String("data")
			if _, err := os.Stat(dataSpec); err == nil {
				dataSpec, _ = filepath.Abs(dataSpec) // the same data, whatever the working directory
			}
			res, err := runtime.ExtractToFile(sess, ds, runtime.FileOptions{
				Out: c.String("out"), Output: c.String("output"),
				Batch: c.Int("batch"), Workers: c.Int("workers"), Chunk: c.Int("chunk"),
				Restart: c.Bool("restart"), StopAfter: c.Int("stop-after"),
				Label: "extract " + c.String("split"), Log: os.Stderr,
				Source: map[string]string{
					"data": dataSpec, "split": c.String("split"), "channels": strconv.Itoa(c.Int("channels")),
					"size": strconv.Itoa(c.Int("size")), "skip_bad": strconv.FormatBool(c.Bool("skip-bad")), "device": c.String("device"),
				},
			})
			if err != nil {
				return err
			}
			return jsonOut(c, res)
		},
	}
}
