package train

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

const childEnv = "SELFSUP_TRAIN_CHILD_DIR"

func killConfig() Config {
	c := tinyConfig("rotation")
	c.Steps, c.CheckpointEvery = 24, 2
	return c
}

// TestTrainChild is not a test: it is the training process that
// TestKillAndResume starts and kills.
func TestTrainChild(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Skip("helper process for TestKillAndResume")
	}
	if _, err := Run(killConfig(), blobs(40, 1, 12, 4), nil, dir, Options{Resume: true}); err != nil {
		t.Fatal(err)
	}
}

// A training process killed with SIGKILL at an arbitrary moment and then
// resumed ends with weights bit-identical to an uninterrupted run.
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a training process; skipped under -short")
	}
	ref := t.TempDir()
	a, err := Run(killConfig(), blobs(40, 1, 12, 4), nil, ref, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestTrainChild$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill once a few checkpoints exist: mid-run, at no particular point of
	// a step or of a checkpoint write.
	deadline := time.Now().Add(60 * time.Second)
	for {
		m, _ := filepath.Glob(filepath.Join(dir, "checkpoint-0000000[6-9].safetensors"))
		if len(m) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if c, _, _, err := LatestCheckpoint(dir); err != nil || c.Step >= 24 {
		t.Fatalf("the kill came too late to test anything (checkpoint %v, %v)", c, err)
	}
	b, err := Run(killConfig(), blobs(40, 1, 12, 4), nil, dir, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if !b.Resumed || b.Steps != 24 {
		t.Fatalf("resumed %v, steps %d", b.Resumed, b.Steps)
	}
	ca, _ := LoadCheckpoint(a.Checkpoint)
	cb, err := LoadCheckpoint(b.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	for name, ta := range ca.Backbone {
		tb := cb.Backbone[name]
		for i := range ta.Data {
			if math.Float32bits(ta.Data[i]) != math.Float32bits(tb.Data[i]) {
				t.Fatalf("%s[%d]: uninterrupted %v, killed and resumed %v", name, i, ta.Data[i], tb.Data[i])
			}
		}
	}
}
