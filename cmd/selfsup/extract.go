package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/runtime"
)

func runtimeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu or cuda (needs ONNX Runtime's CUDA provider)"},
		&cli.IntFlag{Name: "batch", Value: 64, Usage: "images per ONNX Runtime call"},
		&cli.IntFlag{Name: "threads", Usage: "ONNX Runtime intra-op threads (0: all cores)"},
	}
}

func extractCommand() *cli.Command {
	return &cli.Command{
		Name:  "extract",
		Usage: "extract frozen features of a dataset with an ONNX model (ONNX Runtime)",
		Flags: append(append(dataFlags(), runtimeFlags()...),
			&cli.StringFlag{Name: "model", Usage: "ONNX model", Required: true},
			&cli.StringFlag{Name: "split", Value: "test", Usage: "split to extract"},
			&cli.StringFlag{Name: "out", Usage: "features .npy (float32 [N, D]); labels go to <out>_labels.npy, sources to <out>_index.txt", Required: true},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object as the last stdout line"},
		),
		Action: func(c *cli.Context) error {
			sess, err := openSession(c)
			if err != nil {
				return err
			}
			defer sess.Close()
			ds, err := openDataset(c.String("data"), c.String("split"), c.Bool("skip-bad"), c.Int("channels"), c.Int("size"))
			if err != nil {
				return err
			}
			t0 := time.Now()
			feats, dim, err := extractFeatures(sess, ds, c.Int("batch"), fmt.Sprintf("extract %s", c.String("split")))
			if err != nil {
				return err
			}
			secs := time.Since(t0).Seconds()
			out := c.String("out")
			paths, err := writeFeatures(out, feats, dim, ds)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "extracted %d x %d features in %.1fs (%.0f img/s) -> %s\n", ds.Len(), dim, secs, float64(ds.Len())/secs, strings.Join(paths, ", "))
			if c.Bool("json") {
				return printJSON(map[string]any{"images": ds.Len(), "dim": dim, "seconds": secs, "images_per_sec": float64(ds.Len()) / secs, "files": paths})
			}
			return nil
		},
	}
}

func openSession(c *cli.Context) (*runtime.Session, error) {
	return runtime.Open(c.String("model"), runtime.Options{Device: c.String("device"), IntraOpThreads: c.Int("threads")})
}

// extractFeatures runs sess over ds with a progress bar on stderr.
func extractFeatures(sess *runtime.Session, ds data.Dataset, batch int, label string) ([]float32, int, error) {
	last := time.Time{}
	return runtime.ExtractDataset(sess, ds, runtime.ExtractOptions{Batch: batch, Progress: func(done, total int) {
		if time.Since(last) > 250*time.Millisecond || done == total {
			last = time.Now()
			fmt.Fprintf(os.Stderr, "\r%s %d/%d", label, done, total)
			if done == total {
				fmt.Fprintln(os.Stderr)
			}
		}
	}})
}

// writeFeatures writes features, labels (when ds is labelled) and the
// source index next to out.
func writeFeatures(out string, feats []float32, dim int, ds data.Dataset) ([]string, error) {
	stem := strings.TrimSuffix(out, ".npy")
	if err := npy.WriteFloat32(out, feats, ds.Len(), dim); err != nil {
		return nil, err
	}
	paths := []string{out}
	if ds.Len() > 0 && ds.Label(0) >= 0 {
		labels := make([]int64, ds.Len())
		for i := range labels {
			labels[i] = int64(ds.Label(i))
		}
		p := stem + "_labels.npy"
		if err := npy.WriteInt64(p, labels, len(labels)); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	var sb strings.Builder
	for i := 0; i < ds.Len(); i++ {
		sb.WriteString(ds.Source(i))
		sb.WriteByte('\n')
	}
	p := stem + "_index.txt"
	if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
		return nil, fmt.Errorf("extract: index: %w", err)
	}
	return append(paths, p), nil
}
