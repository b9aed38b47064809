package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/bench"
	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/runtime"
)

// testInt8ExportExtract runs the real binary through export --quantize int8
// -> export --inspect -> extract (int8 and float32 on the same images) ->
// bench extract --compare, and the flag errors of --quantize.
func testInt8ExportExtract(t *testing.T, bin string) {
	dir := t.TempDir()
	toy := filepath.Join(dir, "toy.tar")
	writeTar(t, toy, 24, 8, false)
	f32, i8 := filepath.Join(dir, "f32.onnx"), filepath.Join(dir, "int8.onnx")
	common := []string{"export", "--arch", "resnet20c", "--random-init", "--bn-data", toy, "--bn-images", "24", "--outputs", "all"}
	if r := runCmd(t, nil, bin, append(common, "--out", f32)...); r.code != 0 {
		t.Fatalf("float export: %s", r.stderr)
	}
	r := runCmd(t, nil, bin, append(common, "--out", i8, "--quantize", "int8", "--calibrate", toy, "--calibrate-images", "16", "--json")...)
	var ex struct {
		Quantize string   `json:"quantize"`
		Outputs  []string `json:"outputs"`
	}
	lastJSON(t, r, &ex)
	if ex.Quantize != "int8" || len(ex.Outputs) != 7 {
		t.Errorf("export --quantize JSON: %+v", ex)
	}
	if !strings.Contains(r.stderr, "QLinearConv 21") || strings.Contains(r.stderr, "warning") {
		t.Errorf("export --quantize does not report 21 fused QLinearConv:\n%s", r.stderr)
	}
	var info export.Info
	lastJSON(t, runCmd(t, nil, bin, "export", "--inspect", i8, "--json"), &info)
	if info.Metadata[export.KeyQuantization] != "int8" || info.Metadata[export.KeyQuantCalibration] != export.DefaultCalibration ||
		!strings.HasPrefix(info.Metadata[export.KeyQuantCalibrationData], "16 images of toy.tar") || info.OpCounts["QuantizeLinear"] == 0 {
		t.Errorf("inspect: metadata %v, ops %v", info.Metadata, info.OpCounts)
	}

	feats := map[string][]float32{}
	for _, m := range []string{f32, i8} {
		out := strings.TrimSuffix(m, ".onnx") + ".npy"
		if r := runCmd(t, nil, bin, "extract", "--model", m, "--data", toy, "--split", "test", "--out", out, "--batch", "4"); r.code != 0 {
			t.Fatalf("extract %s: %s", m, r.stderr)
		}
		x, shape, err := npy.ReadFloat32(out)
		if err != nil || len(shape) != 2 || shape[0] != 8 || shape[1] != 64 {
			t.Fatalf("%s: %v %v", out, shape, err)
		}
		feats[m] = x
	}
	for i := 0; i < 8; i++ {
		// Measured above 0.999; see pipeline's TestInt8ExportAgreesOnCIFAR.
		if c := runtime.Cosine(feats[f32][i*64:(i+1)*64], feats[i8][i*64:(i+1)*64]); c < 0.99 {
			t.Errorf("image %d: cosine(int8, float32 features) %.5f < 0.99", i, c)
		}
	}

	var b bench.ExtractResult
	lastJSON(t, runCmd(t, nil, bin, "bench", "extract", "--model", i8, "--compare", f32, "--data", toy, "--images", "8",
		"--batch", "4", "--repeats", "2", "--threads", "1", "--json"), &b)
	if b.CompareModel != f32 || len(b.CompareSessionRuns) != 2 || len(b.ComparePipelineRuns) != 2 || !(b.CompareSessionIPS > 0) {
		t.Errorf("bench extract --compare: %+v", b)
	}
	ratios := []float64{b.SessionRuns[0] / b.CompareSessionRuns[0], b.SessionRuns[1] / b.CompareSessionRuns[1]}
	if b.SessionSpeedup != bench.Median(ratios) || len(b.FeatureCosine) != 2 || b.FeatureCosine[1] < 0.99 || b.FeatureCosine[0] < b.FeatureCosine[1] {
		t.Errorf("session_over_compare %v (ratios %v), cosine %v", b.SessionSpeedup, ratios, b.FeatureCosine)
	}
	bad := runCmd(t, nil, bin, "bench", "extract", "--model", i8, "--compare", tinyModelPath, "--data", toy, "--images", "4")
	if bad.code == 0 || !strings.Contains(bad.stderr, "--compare") {
		t.Errorf("--compare with a model of another input: exit %d\n%s", bad.code, bad.stderr)
	}

	// Flag errors: one line, naming the flag, nothing written.
	out := filepath.Join(dir, "x.onnx")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--quantize", "int8", "--calibrate", filepath.Join(dir, "missing.tar")}, []string{"--calibrate", "missing.tar"}},
		{[]string{"--quantize", "int8"}, []string{"--calibrate DATA"}},
		{[]string{"--calibrate", toy}, []string{"--quantize int8"}},
		{[]string{"--quantize", "int8", "--calibrate", toy, "--fold-bn=false"}, []string{"--fold-bn"}},
		{[]string{"--quantize", "int8", "--calibrate", toy, "--calibrate-method", "kl"}, []string{"kl"}},
	} {
		r := runCmd(t, nil, bin, append([]string{"export", "--arch", "resnet20c", "--random-init", "--out", out}, c.args...)...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "selfsup: ") {
			t.Errorf("%v: exit %d, want one error line:\n%s", c.args, r.code, r.stderr)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(lines[0], w) {
				t.Errorf("%v: %q does not mention %q", c.args, lines[0], w)
			}
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: wrote %s anyway", c.args, out)
		}
	}
}
