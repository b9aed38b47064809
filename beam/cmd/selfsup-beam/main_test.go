package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/internal/shards"
	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/runtime"
)

const tinyModel = "../../../runtime/testdata/tiny.onnx"

// TestProcessWorkers runs selfsup-beam as a cluster would: a separately
// built binary, given as --worker_binary, that Prism starts as the boot
// program of a PROCESS environment (quoted --id, see boot.go) and that
// then runs as the worker. The shards, concatenated, must be byte for byte
// the single extraction; no worker process may outlive the run; a bad flag
// is one line.
func TestProcessWorkers(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "selfsup-beam")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tarPath := filepath.Join(dir, "toy.tar")
	testenv.ToyTar(t, tarPath, 2, 30, false)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	manifest := filepath.Join(dir, "out", "toy.json")
	cmd := exec.CommandContext(ctx, bin, "extract", "--model", tinyModel, "--data", tarPath, "--split", "test",
		"--out", manifest, "--shards", "3", "--batch", "4", "--json",
		"--environment_type", "PROCESS", "--environment_config", `{"command":"`+bin+`"}`, "--worker_binary", bin)
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("selfsup-beam extract (PROCESS workers): %v\n%s", err, stderr.String())
	}
	var res struct{ Images, Shards int }
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || res.Images != 30 || res.Shards != 3 {
		t.Fatalf("result %q (%v), want 30 images in 3 shards", stdout.String(), err)
	}

	// The reference: one extraction, as `selfsup extract` writes it.
	ds, err := data.Open(tarPath, "test", data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := runtime.Open(tinyModel, runtime.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	single := filepath.Join(dir, "single.npy")
	if _, err := runtime.ExtractToFile(sess, ds, runtime.FileOptions{Out: single, Batch: 4, Chunk: 4096}); err != nil {
		t.Fatal(err)
	}
	x, y, m, err := shards.Load(manifest)
	if err != nil {
		t.Fatal(err)
	}
	cat := filepath.Join(dir, "cat.npy")
	npy.WriteFloat32(cat, x, m.Rows, m.Dim)
	npy.WriteInt64(filepath.Join(dir, "cat_labels.npy"), y, m.Rows)
	for _, pair := range [][2]string{{cat, single}, {filepath.Join(dir, "cat_labels.npy"), filepath.Join(dir, "single_labels.npy")}} {
		a, _ := os.ReadFile(pair[0])
		b, _ := os.ReadFile(pair[1])
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs from the single extraction %s", filepath.Base(pair[0]), filepath.Base(pair[1]))
		}
	}

	// No worker outlives the run.
	time.Sleep(200 * time.Millisecond)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.HasPrefix(b, []byte(bin+"\x00")) {
			t.Errorf("a selfsup-beam process is still running after the job: %s", strings.ReplaceAll(string(b), "\x00", " "))
		}
	}

	// The manifest helper re-merges and checks every file; a wrong shard
	// count is refused.
	out, err := exec.CommandContext(ctx, bin, "manifest", "--out", manifest, "--shards", "3", "--json").Output()
	if err != nil || !strings.Contains(string(out), `"rows":30`) {
		t.Errorf("selfsup-beam manifest: %v, output %q; want 30 rows", err, out)
	}
	if out, err := exec.CommandContext(ctx, bin, "manifest", "--out", manifest, "--shards", "4").CombinedOutput(); err == nil || !strings.Contains(string(out), "shards [0 1 2 3] of 4 have no record") {
		t.Errorf("selfsup-beam manifest --shards 4: %v, output %q; want the missing shards named", err, out)
	}

	// Bad input: one line naming the problem.
	out, err = exec.CommandContext(ctx, bin, "extract", "--model", tinyModel, "--data", tarPath, "--out", filepath.Join(dir, "x.npy"), "--shards", "2").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "expected a .json path") || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Errorf("--out x.npy: %v, output %q; want one line asking for a .json path", err, out)
	}
}
