// Package runlock keeps two selfsup processes from writing the same run
// directory or output file at once. A lock is a file holding the owner's
// PID, host and command line, locked with flock(2): the kernel drops the
// lock when its process dies, however it dies, so a lock left by a killed
// process is stale by construction and the next Acquire takes it over.
package runlock

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrLocked is wrapped by the error of Acquire when another live process
// holds the lock.
var ErrLocked = errors.New("locked by another process")

// Lock is a held lock; Release frees it.
type Lock struct {
	path string
	f    *os.File
}

// Acquire takes the lock file path (created if missing) for this process,
// or fails at once, wrapping ErrLocked, naming the process that holds it.
// what says what is locked, for the message ("run directory /x").
func Acquire(path, what string) (*Lock, error) {
	for try := 0; ; try++ {
		l, retry, err := acquire(path, what)
		if !retry || try == 10 {
			return l, err
		}
	}
}

// acquire makes one attempt; retry is set when the file was removed or
// replaced between opening and locking it (its holder released it).
func acquire(path, what string) (l *Lock, retry bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			holder, _ := os.ReadFile(path)
			h := strings.TrimSpace(string(holder))
			if h == "" {
				h = "another process"
			}
			return nil, false, fmt.Errorf("%s is in use by %s (lock %s); wait for it to finish or use another path: %w", what, h, path, ErrLocked)
		}
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	held, err1 := f.Stat()
	now, err2 := os.Stat(path)
	if err1 != nil || err2 != nil || !os.SameFile(held, now) {
		f.Close()
		return nil, true, fmt.Errorf("lock %s: the file changed while it was being locked", path)
	}
	host, _ := os.Hostname()
	info := fmt.Sprintf("pid %d on %s (%s)\n", os.Getpid(), host, strings.Join(os.Args, " "))
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(info), 0)
	}
	return &Lock{path: path, f: f}, false, nil
}

// Release unlocks and removes the lock file; safe on nil and twice.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	// Remove first, while still holding the lock: a process waiting on
	// the old inode then sees it gone and retries on a fresh file.
	os.Remove(l.path)
	err := l.f.Close() // closing drops the flock
	l.f = nil
	return err
}
