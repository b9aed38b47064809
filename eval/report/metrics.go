// Package report turns training runs and frozen-feature evaluations into a
// Markdown report with PNG plots: training curves read from the run's
// metrics.jsonl (several runs overlaid), the confusion matrix of a linear
// probe, a 2-D projection of test features coloured by class, and a grid of
// query images with their nearest neighbours in feature space. Plots are
// drawn with gonum.org/v1/plot.
//
// The package imports neither Gorgonia nor the training packages: it reads
// the files training leaves behind, so reports can be made after the fact
// and runs compared.
package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// Record is one line of metrics.jsonl: its numeric fields by key (step,
// epoch, images_seen, loss, lr, elapsed_s, images_per_sec, pretext_acc,
// val_pretext_acc, ...). Fields that are not numbers are left out.
type Record map[string]float64

// Has reports whether the record holds key.
func (r Record) Has(key string) bool {
	_, ok := r[key]
	return ok
}

// Run is a training run directory as the trainer leaves it.
type Run struct {
	Dir  string `json:"dir"`
	Name string `json:"name"` // the directory's base name, unless set otherwise
	Task string `json:"task"` // from config.json; empty when absent
	Arch string `json:"arch"`
	// Records are the periodic lines of metrics.jsonl (lines with a
	// "loss"), in step order. After a resume (the file continues at a step
	// already logged, or its clock restarts) the later lines replace those
	// of the same or later steps, and elapsed_s is made cumulative by adding
	// the elapsed time of the last line kept before the resume.
	Records []Record `json:"-"`
	// Points are further measurements placed on the same axes: lines of
	// metrics.jsonl without a "loss" but with an "images_seen" (for
	// example a kNN accuracy measured at a checkpoint), and points added
	// with AddPoint.
	Points []Record `json:"-"`
	// Final holds the last value of keys written outside the periodic lines
	// (val_pretext_acc, knn_top1, ...), with the step it was written at
	// under "<key>_step".
	Final Record `json:"final"`
}

// LoadRun reads dir/metrics.jsonl (required) and dir/config.json (optional:
// task and architecture).
func LoadRun(dir string) (*Run, error) {
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("report: run %s: %w", dir, err)
	}
	defer f.Close()
	recs, err := ParseMetrics(f, filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		return nil, err
	}
	run := &Run{Dir: dir, Name: filepath.Base(filepath.Clean(dir)), Final: Record{}}
	var offset, lastElapsed float64 // wall time before a resume
	for _, r := range recs {
		if r.Has("loss") {
			// A resumed run appends: lines from steps at or after the
			// resume point supersede earlier ones, and its clock restarts.
			if step, ok := r["step"]; ok {
				keep := len(run.Records)
				for keep > 0 && run.Records[keep-1]["step"] >= step {
					keep--
				}
				run.Records = run.Records[:keep]
			}
			if el, ok := r["elapsed_s"]; ok {
				if el+offset < lastElapsed {
					offset = lastElapsed
					if n := len(run.Records); n > 0 {
						offset = run.Records[n-1]["elapsed_s"]
					}
				}
				r["elapsed_s"] = el + offset
				lastElapsed = r["elapsed_s"]
			}
			run.Records = append(run.Records, r)
			continue
		}
		if r.Has("images_seen") {
			run.Points = append(run.Points, r)
		}
		for k, v := range r {
			if k != "step" {
				run.Final[k] = v
				run.Final[k+"_step"] = r["step"]
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
		var cfg struct {
			Task string `json:"task"`
			Arch string `json:"arch"`
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			return nil, fmt.Errorf("report: %s: %w", filepath.Join(dir, "config.json"), err)
		}
		run.Task, run.Arch = cfg.Task, cfg.Arch
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("report: run %s: %w", dir, err)
	}
	return run, nil
}

// ParseMetrics reads JSON lines (one object a line; blank lines skipped)
// and keeps each object's finite numeric fields. name is used in errors,
// which give the line number.
func ParseMetrics(r io.Reader, name string) ([]Record, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	var out []Record
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if len(trimSpace(b)) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("report: %s:%d: %w", name, line, err)
		}
		rec := Record{}
		for k, v := range m {
			if f, ok := v.(float64); ok && !math.IsNaN(f) && !math.IsInf(f, 0) {
				rec[k] = f
			}
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("report: %s: %w", name, err)
	}
	return out, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Series returns the (x, y) pairs of the records and points that hold
// both keys, sorted by x (records first on ties).
func (r *Run) Series(x, y string) (xs, ys []float64) {
	type pt struct{ x, y float64 }
	var pts []pt
	for _, set := range [][]Record{r.Records, r.Points} {
		for _, rec := range set {
			xv, okx := rec[x]
			yv, oky := rec[y]
			if okx && oky {
				pts = append(pts, pt{xv, yv})
			}
		}
	}
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].x < pts[j].x })
	for _, p := range pts {
		xs, ys = append(xs, p.x), append(ys, p.y)
	}
	return xs, ys
}

// AddPoint adds a measurement (it should hold "images_seen", and
// "elapsed_s" to appear against wall time).
func (r *Run) AddPoint(rec Record) { r.Points = append(r.Points, rec) }

// ElapsedAt estimates the training wall time at step by linear
// interpolation between the periodic records (0 at step 0; the last
// record's time beyond it). ok is false when the run has no timed records.
func (r *Run) ElapsedAt(step float64) (elapsed float64, ok bool) {
	steps, times := r.Series("step", "elapsed_s")
	if len(steps) == 0 {
		return 0, false
	}
	ps, pt := 0.0, 0.0
	for i, s := range steps {
		if step <= s {
			if s == ps {
				return times[i], true
			}
			return pt + (times[i]-pt)*(step-ps)/(s-ps), true
		}
		ps, pt = s, times[i]
	}
	return pt, true
}

// Keys returns the keys present in any periodic record, sorted.
func (r *Run) Keys() []string {
	seen := map[string]bool{}
	for _, rec := range r.Records {
		for k := range rec {
			seen[k] = true
		}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Last returns the last periodic record (nil when there is none).
func (r *Run) Last() Record {
	if len(r.Records) == 0 {
		return nil
	}
	return r.Records[len(r.Records)-1]
}
