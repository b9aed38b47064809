package train

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/ops"
)

// A run with bfloat16 convolutions trains (finite loss, close to the
// float32 run's but not equal to it: the rounding is really there),
// records its precision in the checkpoint, resumes from it bit-identically
// with it (a resumed run keeps the checkpoint's precision, whatever the
// caller's config says), says in its log which library runs its
// convolutions, and leaves the process in float32. Builds without
// oneDNN refuse it with an error.
func TestBFloat16RunResumes(t *testing.T) {
	cfg := tinyConfig("rotation")
	cfg.Precision = "bf16"
	ds := blobs(40, 1, 12, 4)
	if ops.ConvBackend != "onednn" {
		if _, err := Run(cfg, ds, nil, t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "bf16") {
			t.Fatalf("bf16 in a %s build: %v, expected an error naming bf16", ops.ConvBackend, err)
		}
		return
	}
	var log bytes.Buffer
	a, err := Run(cfg, ds, nil, t.TempDir(), Options{Progress: &log})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "convolutions: oneDNN ") || !strings.Contains(log.String(), ", bf16\n") {
		t.Errorf("the run's log does not name its convolutions:\n%s", log.String())
	}
	if ops.ConvPrecision() != ops.Float32 {
		t.Fatalf("after a bf16 run the process is left in %v", ops.ConvPrecision())
	}
	f, err := Run(tinyConfig("rotation"), ds, nil, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if math.IsNaN(a.FinalLoss) || a.FinalLoss == f.FinalLoss || math.Abs(a.FinalLoss-f.FinalLoss) > 0.1*f.FinalLoss {
		t.Fatalf("final loss bf16 %v, float32 %v: expected close but different", a.FinalLoss, f.FinalLoss)
	}
	part := t.TempDir()
	if _, err := Run(cfg, ds, nil, part, Options{StopAfter: 3}); err != nil {
		t.Fatal(err)
	}
	b, err := Run(tinyConfig("rotation"), ds, nil, part, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if ck := sameCheckpoints(t, "rotation bf16", a.Checkpoint, b.Checkpoint); ck.Config.Precision != "bf16" {
		t.Fatalf("checkpoint config precision %q, expected bf16", ck.Config.Precision)
	}
	bad := tinyConfig("rotation")
	bad.Precision = "fp16"
	if _, err := Run(bad, ds, nil, t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "fp16") {
		t.Fatalf("precision fp16: %v, expected an error naming it", err)
	}
}
