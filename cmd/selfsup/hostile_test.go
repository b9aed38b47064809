package main

import (
	"github.com/selfsup/selfsup/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHostileInputsCLI runs the issue-16 regressions that need the binary,
// through one build of it.
func TestHostileInputsCLI(t *testing.T) {
	bin := buildBinary(t)
	t.Run("skip-bad extract and eval", func(t *testing.T) {
		testenv.ORT(t)
		testSkipBadExtractEval(t, bin)
	})
	t.Run("two pretrains on one --out", func(t *testing.T) { testRunLockCLI(t, bin) })
}

// Regression (issue 16): two pretrain runs with different seeds on one
// --out both exited 0, their metrics interleaved; the second now fails at
// once naming the first.
func testRunLockCLI(t *testing.T, bin string) {
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "set.tar")
	writeTar(t, tarPath, 64, 8, false)
	out := filepath.Join(dir, "run")
	first := exec.Command(bin, "pretrain", "--task", "rotation", "--data", tarPath, "--out", out, "--budget", "60s", "--batch", "8", "--seed", "1")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		first.Process.Kill()
		first.Wait()
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(out, ".lock")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first run never took its lock")
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := runCmd(t, nil, bin, "pretrain", "--task", "rotation", "--data", tarPath, "--out", out, "--budget", "5s", "--batch", "8", "--seed", "2")
	if r.code == 0 || !strings.Contains(r.stderr, "in use by pid") {
		t.Fatalf("second run: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// Regression (issue 16): extract and eval stopped on a truncated image
// although --skip-bad was given; they now skip it and say how many.
func testSkipBadExtractEval(t *testing.T, bin string) {
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "set.tar")
	writeTar(t, tarPath, 12, 6, true) // one truncated PNG in train/
	var ex extractJSON
	r := runCmd(t, nil, bin, "extract", "--model", tinyModelPath, "--data", tarPath, "--split", "train",
		"--out", filepath.Join(dir, "f.npy"), "--skip-bad", "--json")
	lastJSON(t, r, &ex)
	if ex.Images != 12 || !strings.Contains(r.stderr, "skipped 1 images") {
		t.Fatalf("extract --skip-bad: %d images, want 12; stderr:\n%s", ex.Images, r.stderr)
	}
	if r := runCmd(t, nil, bin, "extract", "--model", tinyModelPath, "--data", tarPath, "--split", "train",
		"--out", filepath.Join(dir, "g.npy")); r.code == 0 || !strings.Contains(r.stderr, "zz-truncated.png") {
		t.Fatalf("extract without --skip-bad: exit %d, want a failure naming the file; stderr:\n%s", r.code, r.stderr)
	}
	r = runCmd(t, nil, bin, "eval", "linear", "--model", tinyModelPath, "--data", tarPath, "--skip-bad", "--json")
	if r.code != 0 || !strings.Contains(r.stderr, "skipped 1 images") {
		t.Fatalf("eval linear --skip-bad: exit %d; stderr:\n%s", r.code, r.stderr)
	}
}
