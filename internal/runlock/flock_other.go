//go:build !unix

package runlock

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("would block")

// lockFile is a no-op where flock(2) does not exist.
func lockFile(*os.File) error { return nil }
