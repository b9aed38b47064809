package main

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/bench"
	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// TestBenchTrainPeerCLIErrors checks through the binary that a missing
// Python gives one clear error line, and that an unknown peer is refused.
func TestBenchTrainPeerCLIErrors(t *testing.T) {
	bin := buildBinary(t)
	res := runCmd(t, nil, bin, "bench", "train", "--arch", "resnet20c", "--peer", "torch", "--python", filepath.Join(t.TempDir(), "nope", "python"))
	if lines := strings.Split(strings.TrimSpace(res.stderr), "\n"); res.code == 0 || len(lines) != 1 ||
		!strings.Contains(res.stderr, "no python at") || !strings.Contains(res.stderr, "run bash scripts/bench_setup.sh") {
		t.Errorf("missing python: exit %d, stderr %q; want one line pointing to scripts/bench_setup.sh", res.code, res.stderr)
	}
	res = runCmd(t, nil, bin, "bench", "train", "--peer", "tensorflow")
	if res.code == 0 || !strings.Contains(res.stderr, "expected torch") {
		t.Errorf("--peer tensorflow: exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestBenchTrainPeerCLI runs a tiny `selfsup bench train --peer torch`
// through the binary and checks that it reports the Go engine, both PyTorch
// layouts, the checked parameter count and the ratios of the reported rates,
// beside one busy-looping process (--contend 1).
func TestBenchTrainPeerCLI(t *testing.T) {
	py := testenv.Python(t, "torch")
	bin := buildBinary(t)
	var rep bench.TrainReport
	lastJSON(t, runCmd(t, nil, bin, "bench", "train", "--arch", "resnet20c", "--batch", "2", "--size", "16", "--warmup", "0", "--steps", "1",
		"--peer", "torch", "--python", py, "--contend", "1", "--json"), &rep)
	if rep.Fast == nil || rep.Stock != nil || rep.PeerTorch == nil || rep.PeerTorchCL == nil || rep.PeerTorchBF16 == nil || rep.Contend != 1 {
		t.Fatalf("report: %+v", rep)
	}
	spec, err := models.New("resnet20c", 3)
	if err != nil {
		t.Fatal(err)
	}
	if params, _ := bench.SpecParamCounts(spec, bench.Classes); rep.PeerParams != params {
		t.Errorf("peer_params %d, want %d", rep.PeerParams, params)
	}
	for want, r := range map[[2]string]*bench.TorchResult{{"contiguous", "none"}: rep.PeerTorch, {"channels_last", "none"}: rep.PeerTorchCL,
		{"channels_last", "bf16"}: rep.PeerTorchBF16} {
		if format := want[0]; r.MemoryFormat != format || r.Autocast != want[1] || r.Arch != "resnet20c" || r.Batch != 2 || r.Size != 16 || r.Warmup != 0 || r.Steps != 1 || r.Threads != rep.Fast.Threads {
			t.Errorf("peer %s: %+v; Go ran %d threads", format, r, rep.Fast.Threads)
		}
	}
	for _, r := range []*bench.TorchResult{rep.PeerTorch, rep.PeerTorchCL, rep.PeerTorchBF16} {
		if r.Engine != "torch" || r.TorchVersion == "" || !(r.PeakRSSMB >= r.ImportRSSMB && r.ImportRSSMB > 0) ||
			!(r.StepSeconds > 0) || math.Abs(r.ImagesPerSec*r.StepSeconds-2) > 1e-6 {
			t.Errorf("peer %s: %+v", r.MemoryFormat, r)
		}
	}
	if want := rep.Fast.ImagesPerSec / rep.PeerTorch.ImagesPerSec; rep.SpeedupVsTorch["fast"] != want {
		t.Errorf("speedup_vs_torch %v, want fast %v", rep.SpeedupVsTorch, want)
	}
	if want := rep.Fast.ImagesPerSec / rep.PeerTorchCL.ImagesPerSec; rep.SpeedupVsTorchCL["fast"] != want {
		t.Errorf("speedup_vs_torch_channels_last %v, want fast %v", rep.SpeedupVsTorchCL, want)
	}
	if want := rep.Fast.ImagesPerSec / rep.PeerTorchBF16.ImagesPerSec; rep.SpeedupVsTorchBF16["fast"] != want {
		t.Errorf("speedup_vs_torch_bf16_channels_last %v, want fast %v", rep.SpeedupVsTorchBF16, want)
	}
	if rep.LoadBefore == "" || rep.LoadAfter == "" || rep.Date == "" {
		t.Errorf("load %q -> %q, date %q", rep.LoadBefore, rep.LoadAfter, rep.Date)
	}
}

// TestBenchTrainContendCLI: --contend reaches the JSON of a one-engine
// run (the peer test above covers the report of a --peer run, where
// torch is installed).
func TestBenchTrainContendCLI(t *testing.T) {
	bin := buildBinary(t)
	var r bench.TrainResult
	lastJSON(t, runCmd(t, nil, bin, "bench", "train", "--arch", "resnet20c", "--batch", "2", "--size", "16", "--warmup", "0", "--steps", "1",
		"--contend", "1", "--json"), &r)
	if r.Contend != 1 || r.Engine != "fast" || !(r.ImagesPerSec > 0) {
		t.Errorf("bench train --contend 1: %+v", r)
	}
}

// TestBenchTrainPrecisionCLI: --precision both runs the fast engine twice,
// each in its own process, float32 on oneDNN 2 and bfloat16 on oneDNN 3
// (scripts/setup.sh installs it), and reports both; a precision the
// engine does not know is one clear error.
func TestBenchTrainPrecisionCLI(t *testing.T) {
	if _, err := ops.OneDNN3Version(); err != nil {
		testenv.Skip(t, testenv.OneDNN3, "%v", err)
	}
	bin := buildBinary(t)
	var rep bench.TrainReport
	lastJSON(t, runCmd(t, nil, bin, "bench", "train", "--arch", "resnet20c", "--batch", "4", "--size", "16", "--warmup", "0", "--steps", "1",
		"--precision", "both", "--streams", "2", "--json"), &rep)
	if f, b := rep.Fast, rep.FastBF16; f == nil || b == nil || f.Precision != "float32" || b.Precision != "bf16" ||
		!strings.Contains(f.Conv, "oneDNN 2.") || !strings.Contains(b.Conv, "oneDNN 3.") || f.Streams != 2 || b.Streams != 2 {
		t.Fatalf("bench train --precision both: fast %+v, fast_bf16 %+v", rep.Fast, rep.FastBF16)
	}
	res := runCmd(t, nil, bin, "bench", "train", "--arch", "resnet20c", "--batch", "2", "--size", "16", "--steps", "1", "--precision", "fp16")
	if res.code == 0 || !strings.Contains(res.stderr, `precision "fp16": expected float32 or bf16`) {
		t.Errorf("--precision fp16: exit %d, stderr %q", res.code, res.stderr)
	}
}
