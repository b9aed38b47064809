package train

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/internal/runlock"
)

// craftSafetensors writes a safetensors file with the given JSON header and
// data bytes.
func craftSafetensors(t *testing.T, path, header string, data int) {
	t.Helper()
	for len(header)%8 != 0 {
		header += " "
	}
	b := make([]byte, 8+len(header)+data)
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	copy(b[8:], header)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Regression (issue 16): negative or overflowing dims in a safetensors
// header panicked (makeslice: len out of range); they are errors now, and
// the newest such checkpoint is skipped like a truncated one.
func TestSafetensorsBadShapes(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"negative":  `{"w":{"dtype":"F32","shape":[-1,-4],"data_offsets":[0,16]}}`,
		"overflow":  `{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}`,
		"too big":   `{"w":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,16]}}`,
		"backwards": `{"w":{"dtype":"F32","shape":[0],"data_offsets":[16,0]}}`,
	}
	for name, hdr := range cases {
		p := filepath.Join(dir, name+".safetensors")
		craftSafetensors(t, p, hdr, 16)
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panic %v", name, r)
				}
			}()
			if _, _, err := ReadSafetensors(p); err == nil {
				t.Errorf("%s: no error", name)
			}
		}()
	}

	run := t.TempDir()
	cfg := tinyConfig("rotation")
	if _, err := Run(cfg, blobs(32, 1, 12, 1), nil, run, Options{StopAfter: 2}); err != nil {
		t.Fatal(err)
	}
	good, _, _, err := LatestCheckpoint(run)
	if err != nil {
		t.Fatal(err)
	}
	craftSafetensors(t, filepath.Join(run, "checkpoint-00000099.safetensors"), cases["negative"], 16)
	ck, path, warns, err := LatestCheckpoint(run)
	if err != nil || ck.Step != good.Step || len(warns) != 1 || !strings.Contains(warns[0], "negative") {
		t.Fatalf("LatestCheckpoint = step %v %s, warnings %v, %v; want the good step %d and one warning", ck, path, warns, err, good.Step)
	}
	var log bytes.Buffer
	if _, err := Run(cfg, blobs(32, 1, 12, 1), nil, run, Options{Resume: true, Progress: &log}); err != nil {
		t.Fatalf("resume past the bad checkpoint: %v\n%s", err, log.String())
	}
}

// Regression (issue 16): two runs on one directory both exited 0 with
// interleaved metrics; the second now fails at once, naming the first.
func TestRunDirectoryLock(t *testing.T) {
	dir := t.TempDir()
	held, err := runlock.Acquire(filepath.Join(dir, LockName), "test")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(tinyConfig("rotation"), blobs(32, 1, 12, 1), nil, dir, Options{})
	if !errors.Is(err, runlock.ErrLocked) || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("second run: %v, want ErrLocked naming the holder", err)
	}
	if entries, _ := filepath.Glob(filepath.Join(dir, "[^.]*")); len(entries) != 0 {
		t.Fatalf("the refused run wrote %v", entries)
	}
	held.Release()
	if _, err := Run(tinyConfig("rotation"), blobs(32, 1, 12, 1), nil, dir, Options{StopAfter: 1}); err != nil {
		t.Fatalf("after the first released: %v", err)
	}
}

// Regression (issue 16): a run killed before its first checkpoint left
// metric lines that the next fresh run appended to.
func TestFreshRunDropsDeadMetrics(t *testing.T) {
	dir := t.TempDir()
	dead := `{"step":1,"loss":99,"dead":true}` + "\n" + `{"step":2,"loss":98,"dead":true}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "metrics.jsonl"), []byte(dead), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(tinyConfig("rotation"), blobs(32, 1, 12, 1), nil, dir, Options{StopAfter: 2}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(`"dead"`)) || len(b) == 0 {
		t.Fatalf("metrics.jsonl keeps the dead run's lines:\n%s", b)
	}
}
