package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/bench"
)

func benchServeCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "feature server under bounded load on 127.0.0.1: req/s, p50/p99, errors, server RSS, ratio to bench extract",
		Flags: append(runtimeFlags(),
			&cli.StringFlag{Name: "model", Usage: "ONNX model", Required: true},
			&cli.IntFlag{Name: "clients", Value: 32, Usage: "clients posting at once"},
			&cli.IntFlag{Name: "requests", Value: 256, Usage: "requests in all"},
			&cli.IntFlag{Name: "per-request", Value: 1, Usage: "images a request (1: an image/jpeg body; more: a JSON batch)"},
			&cli.IntFlag{Name: "concurrency", Value: 2, Usage: "the server's compute slots (serve --concurrency)"},
			&cli.IntFlag{Name: "extract-images", Value: 256, Usage: "also run bench extract's pipeline on this many of the images for the ratio (0: skip)"},
			jsonFlag,
		),
		Action: func(c *cli.Context) error {
			res, err := bench.Serve(bench.ServeConfig{Model: c.String("model"), Clients: c.Int("clients"), Requests: c.Int("requests"),
				PerRequest: c.Int("per-request"), Concurrency: c.Int("concurrency"), ExtractImages: c.Int("extract-images"),
				Batch: c.Int("batch"), Runtime: runtimeOptions(c), Log: os.Stderr})
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%s: %d clients, %.1f req/s, %.1f img/s (extract %.1f img/s, ratio %.2f), p50 %.0f ms, p99 %.0f ms, %d errors, RSS %.0f -> %.0f MB\n",
				filepath.Base(res.Model), res.Clients, res.ReqPerSec, res.ImagesPerSec, res.ExtractIPS, res.ServeOverExtract, res.P50ms, res.P99ms, res.Errors, res.RSSIdleMB, res.RSSPeakMB)
			return jsonOut(c, res)
		},
	}
}
