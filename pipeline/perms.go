package pipeline

import (
	"fmt"
	"io"
	"time"

	"github.com/selfsup/selfsup/pretext"
)

// PermsConfig is `selfsup perms`: a Jigsaw permutation set (Noroozi &
// Favaro 2016, Algorithm 1 and Table 4).
type PermsConfig struct {
	N      int
	Method string
	Seed   int64
	// Out, when set, receives the set in the permset text format
	// (pretext.ReadPermSet reads it); otherwise Text does, unless nil.
	Out  string
	Text io.Writer
	Log  io.Writer
}

// PermsReport is the --json output of `selfsup perms`.
type PermsReport struct {
	N          int     `json:"n"`
	Method     string  `json:"method"`
	Seed       int64   `json:"seed"`
	AvgHamming float64 `json:"avg_hamming"`
	MinHamming float64 `json:"min_hamming"`
	Seconds    float64 `json:"seconds"` // time to generate the set
	Out        string  `json:"out"`     // the file written, "" if none
}

// Perms generates the set, writes it and reports its distances.
func Perms(c PermsConfig) (*PermsReport, error) {
	start := time.Now()
	set, err := pretext.GeneratePermSet(c.N, c.Method, c.Seed)
	if err != nil {
		return nil, fmt.Errorf("perms: %w", err)
	}
	r := &PermsReport{N: c.N, Method: c.Method, Seed: c.Seed, Seconds: time.Since(start).Seconds(), Out: c.Out}
	r.AvgHamming, r.MinHamming = set.Stats()
	switch {
	case c.Out != "":
		if err := set.WritePermSet(c.Out); err != nil {
			return nil, fmt.Errorf("perms: %w", err)
		}
	case c.Text != nil:
		if err := set.WriteText(c.Text); err != nil {
			return nil, fmt.Errorf("perms: write to stdout: %w", err)
		}
	}
	dest := ""
	if c.Out != "" {
		dest = ", wrote " + c.Out
	}
	fmt.Fprintf(logTo(c.Log), "perms: n=%d method=%s seed=%d: average Hamming distance %.4f, minimum %d, %.2f s%s\n",
		c.N, c.Method, c.Seed, r.AvgHamming, int(r.MinHamming), r.Seconds, dest)
	return r, nil
}
