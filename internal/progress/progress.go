// Package progress draws one terminal-aware progress bar, the only one in
// the project (extraction, evaluation and training use it):
//
//	label [=====>    ]  52% 5200/10000  431 img/s  ETA 11s  loss 1.2345
//
// On a terminal the line is redrawn in place (carriage return) at most 5
// times a second; on anything else (a log file, a pipe) one line is written
// every 10 seconds, plus the first and the last.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Bar is a progress bar over Total items. It is not safe for concurrent
// use; the extraction callbacks that feed it run on one goroutine.
type Bar struct {
	w     io.Writer
	label string
	total int
	base  int    // items done before this run (a resumed run)
	unit  string // "img", "steps", ...
	start time.Time
	last  time.Time
	tty   bool
	every time.Duration
	drawn bool
	now   func() time.Time
}

// New returns a bar over total items of unit ("img" when empty) written to
// w; base items count as done before this run started (rates count only
// this run's).
func New(w io.Writer, label string, total, base int, unit string) *Bar {
	if unit == "" {
		unit = "img"
	}
	b := &Bar{w: w, label: label, total: total, base: base, unit: unit, every: 10 * time.Second, now: time.Now}
	b.start = b.now()
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			b.tty, b.every = true, 200*time.Millisecond
		}
	}
	return b
}

// SetClock replaces time.Now (tests) and restarts the bar's clock.
func (b *Bar) SetClock(now func() time.Time) {
	b.now = now
	b.start = now()
}

// SetTotal changes the number of items (a training run whose length the
// budget planner has just decided).
func (b *Bar) SetTotal(total int) { b.total = total }

// Line formats the bar for done of total items at time now, with info
// appended when not empty.
func (b *Bar) Line(done int, now time.Time, info string) string {
	const width = 30
	frac := 1.0
	if b.total > 0 {
		frac = float64(done) / float64(b.total)
	}
	filled := min(width, max(0, int(frac*width)))
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	s := fmt.Sprintf("%s [%s] %3.0f%% %d/%d", b.label, bar, 100*frac, done, b.total)
	secs := now.Sub(b.start).Seconds()
	if n := done - b.base; n > 0 && secs > 0 {
		rate := float64(n) / secs
		s += fmt.Sprintf("  %.0f %s/s", rate, b.unit)
		if done < b.total {
			s += "  ETA " + (time.Duration(float64(b.total-done)/rate) * time.Second).Round(time.Second).String()
		} else {
			s += "  " + time.Duration(secs*float64(time.Second)).Round(100*time.Millisecond).String()
		}
	}
	if info != "" {
		s += "  " + info
	}
	return s
}

// Update is a runtime.ExtractOptions.Progress callback: done counts items
// of this run, the bar shows them on top of the resumed base.
func (b *Bar) Update(done, _ int) { b.Set(done+b.base, "") }

// Set shows done of total items (base included) with info after the rates.
func (b *Bar) Set(done int, info string) {
	now := b.now()
	if done < b.total && now.Sub(b.last) < b.every {
		return
	}
	b.last = now
	if b.tty {
		fmt.Fprintf(b.w, "\r%s\x1b[K", b.Line(done, now, info))
		b.drawn = true
		if done >= b.total {
			fmt.Fprintln(b.w)
			b.drawn = false
		}
		return
	}
	fmt.Fprintln(b.w, b.Line(done, now, info))
}

// Finish ends a bar left mid-line (after an error or a stop); safe to call
// twice.
func (b *Bar) Finish() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}
