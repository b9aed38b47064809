package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	var b bytes.Buffer
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	bar := New(&b, "extract test", 200, 50, "")
	bar.SetClock(func() time.Time { return now })
	now = t0.Add(10 * time.Second)
	if got, want := bar.Line(100, now, ""), "extract test [===============>              ]  50% 100/200  5 img/s  ETA 20s"; got != want {
		t.Errorf("Line(100) = %q, want %q", got, want)
	}
	if got := bar.Line(200, now, "loss 1"); !strings.HasPrefix(got, "extract test [==============================] 100% 200/200  15 img/s  10s  loss 1") {
		t.Errorf("Line(200) = %q", got)
	}
	// Not a terminal: the first update and the last are printed, as lines;
	// one in between, within 10 s of the first, is not.
	bar.Update(10, 150)
	now = now.Add(9 * time.Second)
	bar.Update(20, 150)
	bar.Update(150, 150)
	bar.Finish()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], " 60/200") || !strings.Contains(lines[1], "200/200") {
		t.Errorf("progress lines %q, want the first (60/200) and the last (200/200)", lines)
	}
	// After 10 s, a middle update is printed.
	now = now.Add(11 * time.Second)
	bar.Set(120, "")
	if !strings.Contains(b.String(), " 120/200") {
		t.Errorf("no line after 10 s: %q", b.String())
	}
}

func TestUnit(t *testing.T) {
	bar := New(&bytes.Buffer{}, "rotation", 10, 0, "steps")
	t0 := time.Unix(0, 0)
	bar.SetClock(func() time.Time { return t0 })
	if got := bar.Line(5, t0.Add(5*time.Second), ""); !strings.Contains(got, "1 steps/s") {
		t.Errorf("Line = %q", got)
	}
}
