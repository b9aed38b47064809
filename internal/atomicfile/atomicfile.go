// Package atomicfile writes files so that a reader sees either the old
// content or the whole new content, never a torn write, and a crash leaves
// no half-written file under the final name: the bytes go to a temporary
// file in the same folder, which is fsynced, renamed over the destination,
// and the folder is fsynced so that the rename itself is durable.
//
// It is the one copy of this mechanism in the project (checkpoints, ONNX
// models, .npy features, extraction progress, permutation sets use it).
package atomicfile

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
)

// File is a file being written atomically. Writes go to a temporary file
// next to the destination; Commit makes them visible under the final name,
// Abort (or Close before Commit) throws them away.
type File struct {
	f    *os.File
	w    *bufio.Writer
	path string
	done bool
}

// Create starts writing path (mode 0644). The caller must Commit or Abort.
func Create(path string) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &File{f: f, w: bufio.NewWriterSize(f, 1<<20), path: path}, nil
}

// Write buffers b for the temporary file.
func (a *File) Write(b []byte) (int, error) {
	if a.done {
		return 0, errors.New("atomicfile: write after Commit or Abort")
	}
	return a.w.Write(b)
}

// Name is the destination path.
func (a *File) Name() string { return a.path }

// Commit flushes, fsyncs and closes the temporary file, renames it to the
// destination and fsyncs the folder (an error there is not reported: some
// file systems cannot sync a folder, and the data are already safe). On an
// error the temporary file is removed and the destination is untouched.
func (a *File) Commit() error {
	if a.done {
		return errors.New("atomicfile: Commit after Commit or Abort")
	}
	a.done = true
	tmp := a.f.Name()
	err := a.w.Flush()
	if err == nil {
		err = a.f.Sync()
	}
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, a.path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(a.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Abort removes the temporary file; safe after Commit (then a no-op) and
// twice.
func (a *File) Abort() {
	if a == nil || a.done {
		return
	}
	a.done = true
	a.f.Close()
	os.Remove(a.f.Name())
}

// WriteFile writes b to path atomically (mode 0644).
func WriteFile(path string, b []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// Write calls fill with a buffered writer on a temporary file and, when it
// returns nil, commits it to path; otherwise path is untouched.
func Write(path string, fill func(w io.Writer) error) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}
