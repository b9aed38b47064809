package runlock

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSecondAcquireFailsClearly(t *testing.T) {
	p := filepath.Join(t.TempDir(), "run.lock")
	a, err := Acquire(p, "run directory x")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(p, "run directory x")
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Acquire: %v, want ErrLocked", err)
	}
	if want := fmt.Sprintf("pid %d", os.Getpid()); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "run directory x") {
		t.Fatalf("error %q does not name %q and the directory", err, want)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(); err != nil { // twice is fine
		t.Fatal(err)
	}
	b, err := Acquire(p, "run directory x")
	if err != nil {
		t.Fatalf("after Release: %v", err)
	}
	b.Release()
	var nilLock *Lock
	nilLock.Release()
}

// A lock left by a SIGKILLed process is taken over.
func TestStaleLockOfKilledProcess(t *testing.T) {
	if p := os.Getenv("RUNLOCK_HOLD"); p != "" {
		if _, err := Acquire(p, "test"); err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		fmt.Println("HELD")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	p := filepath.Join(t.TempDir(), "run.lock")
	cmd := exec.Command(os.Args[0], "-test.run=TestStaleLockOfKilledProcess")
	cmd.Env = append(os.Environ(), "RUNLOCK_HOLD="+p)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf[:4]) != "HELD" {
		t.Fatalf("child: %q %v", buf, err)
	}
	if _, err := Acquire(p, "test"); !errors.Is(err, ErrLocked) {
		t.Fatalf("while the child holds it: %v, want ErrLocked", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the killed child's lock file should still be there: %v", err)
	}
	l, err := Acquire(p, "test")
	if err != nil {
		t.Fatalf("stale lock not recovered: %v", err)
	}
	l.Release()
}
