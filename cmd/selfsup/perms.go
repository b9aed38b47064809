package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

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

// permsReport is the --json output of `selfsup perms`.
type permsReport struct {
	N          int     `json:"n"`
	Method     string  `json:"method"`
	Seed       int64   `json:"seed"`
	AvgHamming float64 `json:"avg_hamming"`
	MinHamming float64 `json:"min_hamming"`
	Seconds    float64 `json:"seconds"` // time to generate the set
	Out        string  `json:"out"`     // the file written, "" if none
}

func runPerms(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("perms: unexpected arguments %q", strings.Join(c.Args().Slice(), " "))
	}
	stdout, stderr := c.App.Writer, c.App.ErrWriter
	n, method, seed, out := c.Int("n"), c.String("method"), c.Int64("seed"), c.String("out")
	start := time.Now()
	set, err := pretext.GeneratePermSet(n, method, seed)
	if err != nil {
		return fmt.Errorf("perms: %w", err)
	}
	seconds := time.Since(start).Seconds()
	avg, minD := set.Stats()
	if out != "" {
		if err := set.WritePermSet(out); err != nil {
			return fmt.Errorf("perms: %w", err)
		}
	} else if !c.Bool("json") {
		if err := set.WriteText(stdout); err != nil {
			return fmt.Errorf("perms: write to stdout: %w", err)
		}
	}
	dest := ""
	if out != "" {
		dest = ", wrote " + out
	}
	fmt.Fprintf(stderr, "perms: n=%d method=%s seed=%d: average Hamming distance %.4f, minimum %d, %.2f s%s\n",
		n, method, seed, avg, int(minD), seconds, dest)
	if c.Bool("json") {
		line, err := json.Marshal(permsReport{N: n, Method: method, Seed: seed, AvgHamming: avg,
			MinHamming: minD, Seconds: seconds, Out: out})
		if err != nil {
			return fmt.Errorf("perms: encode json: %w", err)
		}
		if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
			return fmt.Errorf("perms: write json: %w", err)
		}
	}
	return nil
}
