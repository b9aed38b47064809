package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/pipeline"
	"github.com/selfsup/selfsup/pretext"
)

// permsCommand returns `selfsup perms`, which builds a Jigsaw permutation set
// (Noroozi & Favaro 2016, Algorithm 1 and Table 4) with pretext.GeneratePermSet
// and writes it in the permset text format (pretext.ReadPermSet reads it).
func permsCommand() *cli.Command {
	return &cli.Command{
		Name:      "perms",
		Usage:     "build a Jigsaw permutation set (Noroozi & Favaro 2016, Algorithm 1)",
		UsageText: "selfsup perms --n N [--method maxavg|maxmin|random] [--seed S] [--out FILE] [--json]",
		Description: "Chooses N permutations of the 9 Jigsaw tiles, far apart in Hamming distance, and\n" +
			"writes them one per line as 9 space-separated 1-based tile indices (number p is the\n" +
			"input tile placed at output position p) under a '# selfsup permset' header.\n" +
			"Without --out the set goes to stdout, unless --json is given. The summary goes to stderr.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "n", Required: true,
				Usage: fmt.Sprintf("`N` permutations (Jigsaw classes), 2..%d; the paper uses 1000", pretext.PermSetMaxN)},
			&cli.StringFlag{Name: "method", Value: pretext.PermMethodMaxAvg,
				Usage: "selection `METHOD`: maxavg (the paper: largest summed distance to the set), maxmin (largest minimum distance), random"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "random `SEED`; the same seed gives the same set"},
			&cli.StringFlag{Name: "out", Usage: "write the set to `FILE` (temporary file, then rename)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object (n, method, seed, avg_hamming, min_hamming, seconds, out) as the last stdout line"},
		},
		Action: runPerms,
	}
}

func runPerms(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("perms: unexpected arguments %q", strings.Join(c.Args().Slice(), " "))
	}
	pc := pipeline.PermsConfig{N: c.Int("n"), Method: c.String("method"), Seed: c.Int64("seed"), Out: c.String("out"), Log: c.App.ErrWriter}
	if !c.Bool("json") {
		pc.Text = c.App.Writer
	}
	r, err := pipeline.Perms(pc)
	if err != nil || !c.Bool("json") {
		return err
	}
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("perms: encode json: %w", err)
	}
	_, err = fmt.Fprintf(c.App.Writer, "%s\n", line)
	return err
}
