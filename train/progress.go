package train

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// bar is a one-line progress bar redrawn with carriage returns.
type bar struct {
	w     io.Writer
	label string
	total int
	t0    time.Time
	last  time.Time
}

func newBar(w io.Writer, label string, total int) *bar {
	return &bar{w: w, label: label, total: total, t0: time.Now()}
}

func (b *bar) set(done int, info string) {
	now := time.Now()
	if now.Sub(b.last) < 200*time.Millisecond && done < b.total {
		return
	}
	b.last = now
	frac := 0.0
	if b.total > 0 {
		frac = float64(done) / float64(b.total)
	}
	const width = 30
	n := int(frac * width)
	eta := ""
	if done > 0 && done < b.total {
		rem := time.Duration(float64(now.Sub(b.t0)) / float64(done) * float64(b.total-done))
		eta = " eta " + rem.Round(time.Second).String()
	}
	fmt.Fprintf(b.w, "\r%s [%s%s] %d/%d %s%s   ", b.label, strings.Repeat("=", n), strings.Repeat(" ", width-n), done, b.total, info, eta)
}

func (b *bar) finish() { fmt.Fprintln(b.w) }
