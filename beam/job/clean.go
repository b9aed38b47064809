package job

import (
	"context"
	"fmt"
	"os"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

// RunClean runs p on runner with the process's temporary folder pointed
// at a private one that it removes afterwards: the Go SDK leaves a
// beamloopbackworker-* file behind for every loopback run and staged
// worker binaries for PROCESS runs, all under os.TempDir(). (It sets
// TMPDIR for the whole process while p runs; PROCESS workers inherit it.)
func RunClean(ctx context.Context, runner string, p *beam.Pipeline) error {
	tmp, err := os.MkdirTemp("", "selfsup-beam-*")
	if err != nil {
		return fmt.Errorf("temporary folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	old, had := os.LookupEnv("TMPDIR")
	os.Setenv("TMPDIR", tmp)
	defer func() {
		if had {
			os.Setenv("TMPDIR", old)
		} else {
			os.Unsetenv("TMPDIR")
		}
	}()
	_, err = beam.Run(ctx, runner, p)
	return err
}
