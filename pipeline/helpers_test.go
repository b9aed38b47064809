package pipeline

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/runtime"
	"github.com/selfsup/selfsup/train"
)

// reproduceMethod runs Reproduce with one method (a name, with or
// without a budget) for 2 steps, 32 recalibration images and seed 1 on
// a new toy tar of 64 training and 20 test images; it returns the
// config, the tar's path and the method's row (the last).
func reproduceMethod(t *testing.T, method string) (c ReproduceConfig, ds string, r *MethodResult) {
	t.Helper()
	dir := t.TempDir()
	ds = filepath.Join(dir, "toy.tar")
	testenv.ToyTar(t, ds, 64, 20, false)
	var log bytes.Buffer
	c = ReproduceConfig{Data: ds, Out: filepath.Join(dir, "out"), Steps: 2, Methods: []string{method}, BNImages: 32, Seed: 1, Log: &log}
	res, err := Reproduce(context.Background(), c)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	return c, ds, res.Rows[len(res.Rows)-1]
}

// openExported opens the exported model (closed when the test ends) and
// returns the session, its preprocessing and the latest checkpoint of
// the run folder run.
func openExported(t *testing.T, model, run string) (*runtime.Session, runtime.Preprocess, *train.Checkpoint) {
	t.Helper()
	sess, err := runtime.Open(model, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	p, err := sess.Preprocess()
	if err != nil {
		t.Fatal(err)
	}
	ck, _, err := LatestCheckpoint(run, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sess, p, ck
}
