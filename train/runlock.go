package train

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/selfsup/selfsup/internal/runlock"
)

// LockName is the lock file Run holds in a run directory while it trains,
// so that a second process on the same directory fails at once instead of
// interleaving its checkpoints and metrics with the first's.
const LockName = ".lock"

func lockRun(dir string) (*runlock.Lock, error) {
	l, err := runlock.Acquire(filepath.Join(dir, LockName), "train: run directory "+dir)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// freshMetrics removes a metrics.jsonl that a run starting from scratch
// finds (left by an attempt killed before its first checkpoint).
func freshMetrics(dir string, progress io.Writer) error {
	p := filepath.Join(dir, "metrics.jsonl")
	st, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("train: metrics: %w", err)
	}
	if st.Size() > 0 {
		fmt.Fprintf(progress, "dropping %s of an earlier attempt that left no checkpoint\n", p)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("train: metrics: %w", err)
	}
	return nil
}
