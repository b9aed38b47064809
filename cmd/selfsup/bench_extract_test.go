package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/bench"
)

// testBenchExtract runs `selfsup bench extract` on the tiny model with
// synthetic JPEG files and checks its JSON: both throughputs measured per
// repeat, their medians and ratio, the model's output size, and a CPU-vs-CPU
// device comparison that must agree exactly.
func testBenchExtract(t *testing.T, bin string) {
	var r bench.ExtractResult
	lastJSON(t, runCmd(t, nil, bin, "bench", "extract", "--model", tinyModelPath, "--data", "synthetic", "--images", "24",
		"--batch", "8", "--repeats", "3", "--threads", "1", "--compare-device", "cpu", "--json"), &r)
	if r.Images != 24 || r.Batch != 8 || r.Size != 8 || r.Dim != 4 || r.Device != "cpu" || r.ORTVersion == "" || r.Cores < 1 {
		t.Errorf("bench extract: %+v", r)
	}
	if len(r.SessionRuns) != 3 || len(r.PipelineRuns) != 3 {
		t.Fatalf("want 3 measurements of each kind, got %v and %v", r.SessionRuns, r.PipelineRuns)
	}
	if r.SessionIPS != bench.Median(r.SessionRuns) || r.PipelineIPS != bench.Median(r.PipelineRuns) || r.SessionIPS <= 0 || r.PipelineIPS <= 0 || r.DecodeIPS <= 0 {
		t.Errorf("throughputs: session %v (runs %v), pipeline %v (runs %v), decode %v", r.SessionIPS, r.SessionRuns, r.PipelineIPS, r.PipelineRuns, r.DecodeIPS)
	}
	if !(r.SessionCPU > 0) || !(r.PipelineCPU > 0) {
		t.Errorf("CPU per image: session %v ms, pipeline %v ms; want both > 0", r.SessionCPU, r.PipelineCPU)
	}
	paired := []float64{r.PipelineRuns[0] / r.SessionRuns[0], r.PipelineRuns[1] / r.SessionRuns[1], r.PipelineRuns[2] / r.SessionRuns[2]}
	if r.PairedRatio != bench.Median(paired) {
		t.Errorf("pipeline_over_session_paired %v, want the median of %v", r.PairedRatio, paired)
	}
	if got := r.PipelineIPS / r.SessionIPS; got != r.Ratio {
		t.Errorf("pipeline_over_session %v, want %v", r.Ratio, got)
	}
	if r.Compare != "cpu" || r.CompareDiff == nil || *r.CompareDiff != 0 || r.CompareScale == nil || *r.CompareScale <= 0 {
		t.Errorf("cpu vs cpu comparison: device %q, diff %v, scale %v; want cpu, 0, > 0", r.Compare, r.CompareDiff, r.CompareScale)
	}
	if r.LoadBefore == "" || r.Date == "" {
		t.Errorf("load %q, date %q", r.LoadBefore, r.Date)
	}

	res := runCmd(t, nil, bin, "bench", "extract", "--model", tinyModelPath, "--data", "synthetic", "--images", "4", "--size", "16")
	if res.code == 0 || !strings.Contains(res.stderr, "--size 16") || !strings.Contains(res.stderr, "--dynamic-hw") {
		t.Errorf("--size 16 on a fixed 8x8 model: exit %d, stderr %q; want a refusal pointing to --dynamic-hw", res.code, res.stderr)
	}
	res = runCmd(t, nil, bin, "bench", "extract", "--model", tinyModelPath, "--data", "synthetic", "--images", "4", "--device", "cuda:x")
	if res.code == 0 || !strings.Contains(res.stderr, "cuda:N") {
		t.Errorf("--device cuda:x: exit %d, stderr %q", res.code, res.stderr)
	}

	// A stage-only export (what eval detect / segment read) has no
	// "features": the last output is measured, or the one --output names.
	stages := filepath.Join(t.TempDir(), "stages.onnx")
	if r := runCmd(t, nil, bin, "export", "--arch", "resnet20c", "--random-init", "--outputs", "stage1,stage2", "--out", stages); r.code != 0 {
		t.Fatalf("export stages: %s", r.stderr)
	}
	for _, c := range []struct {
		args   []string
		output string
		dim    int
	}{{nil, "stage2", 32 * 16 * 16}, {[]string{"--output", "stage1"}, "stage1", 16 * 32 * 32}} {
		var s bench.ExtractResult
		lastJSON(t, runCmd(t, nil, bin, append([]string{"bench", "extract", "--model", stages, "--data", "synthetic", "--images", "4",
			"--batch", "2", "--repeats", "1", "--threads", "1", "--json"}, c.args...)...), &s)
		if s.Output != c.output || s.Dim != c.dim || !(s.SessionIPS > 0) {
			t.Errorf("bench extract %v on stages: output %q dim %d (%v img/s), want %q dim %d", c.args, s.Output, s.Dim, s.SessionIPS, c.output, c.dim)
		}
	}
	res = runCmd(t, nil, bin, "bench", "extract", "--model", stages, "--data", "synthetic", "--images", "4", "--output", "stage3")
	if res.code == 0 || !strings.Contains(res.stderr, `no output "stage3"`) || !strings.Contains(res.stderr, "stage1, stage2") {
		t.Errorf("--output stage3 of a stage1,stage2 export: exit %d, stderr %q", res.code, res.stderr)
	}
}
