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
	// Before step killStep (after the checkpoint of step 6 is written)
	// say so and block: the parent kills a process that cannot have
	// finished, however slow or loaded the machine is.
	testStepHook = func(step int) {
		if step == killStep {
			if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644); err != nil {
				t.Error(err)
			}
			select {}
		}
	}
	defer func() { testStepHook = nil }()
	if _, err := Run(killConfig(), blobs(40, 1, 12, 4), nil, dir, Options{Resume: true}); err != nil {
		t.Fatal(err)
	}
}

// killStep is the step before which the child process waits to be killed.
const killStep = 7

// A training process killed with SIGKILL mid-run (its prefetching
// goroutines busy, checkpoints of steps 2, 4 and 6 on disk) and then
// resumed ends with weights bit-identical to an uninterrupted run. The
// child blocks before step killStep and says so with a file, so the kill
// does not race the run's end on a loaded machine.
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
	// Wait for the child's signal (it blocks there until killed), or for
	// it to exit, which is a failure.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := filepath.Join(dir, "ready")
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	giveUp := time.After(5 * time.Minute) // a hung child, not a slow one
	for waiting := true; waiting; {
		select {
		case err := <-exited:
			t.Fatalf("the training child exited before step %d: %v", killStep, err)
		case <-giveUp:
			cmd.Process.Kill()
			t.Fatalf("no word from the training child after 5 minutes")
		case <-tick.C:
			if _, err := os.Stat(ready); err == nil {
				waiting = false
			}
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	os.Remove(ready)
	if c, _, _, err := LatestCheckpoint(dir); err != nil || c.Step != killStep-1 {
		t.Fatalf("after the kill: checkpoint %v, %v; want the one of step %d", c, err, killStep-1)
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
