package data

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Files is a set of files read whole from a directory tree or a tar
// archive (optionally gzipped): relative slash paths and their bytes. It
// is how the annotation readers take YOLO, VOC, COCO and mask files from
// either kind of source alike.
type Files struct {
	// Src is the directory or archive read.
	Src   string
	names []string
	bytes map[string][]byte
}

// ReadFiles reads every regular file under spec (a directory or a .tar,
// .tar.gz, .tgz archive) whose relative slash path keep accepts (nil: all),
// refusing any over maxMember bytes (0: DefaultMaxMember; negative: no
// limit) before reading it and, for archives, more than DefaultMaxArchive
// bytes in all. Hidden files and folders are ignored, archive members that
// escape the root are refused, and symbolic links are not followed inside
// archives (they are in directories).
func ReadFiles(spec string, keep func(rel string) bool, maxMember int64) (*Files, error) {
	st, err := os.Stat(spec)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	f := &Files{Src: spec, bytes: map[string][]byte{}}
	if keep == nil {
		keep = func(string) bool { return true }
	}
	if st.IsDir() {
		err = filepath.WalkDir(spec, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("data: %w", err)
			}
			if p != spec && hidden(d.Name()) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			rel, rerr := filepath.Rel(spec, p)
			if rerr != nil || d.IsDir() {
				return rerr
			}
			rel = filepath.ToSlash(rel)
			if !keep(rel) {
				return nil
			}
			info, err := os.Stat(p) // follows links
			if err != nil || !info.Mode().IsRegular() {
				return nil
			}
			b, err := readFileLimit(p, maxMember)
			if err != nil {
				return fmt.Errorf("data: %w", err)
			}
			f.add(rel, b)
			return nil
		})
		if err != nil {
			return nil, err
		}
		f.sort()
		return f, nil
	}
	fh, err := os.Open(spec)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer fh.Close()
	br := bufio.NewReaderSize(fh, 1<<20)
	var r io.Reader = br
	gz := false
	if head, _ := br.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("data: archive %s: bad gzip header: %w", spec, err)
		}
		r, gz = &capReader{r: zr, left: inflateLimit(st.Size()), what: "archive " + spec}, true
	}
	lim := archiveLimits{src: spec, fileSize: st.Size(), gz: gz, maxMember: maxMember, maxTotal: DefaultMaxArchive}
	tr := tar.NewReader(r)
	var kept int64
	last := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			where := "at its start"
			if last != "" {
				where = "after member " + last
			}
			return nil, fmt.Errorf("data: archive %s: not a tar archive, or corrupt or truncated %s: %w", spec, where, err)
		}
		if unsafeMember(h.Name) {
			return nil, fmt.Errorf("data: archive %s: member %q escapes the archive's root (absolute or with \"..\"); refusing it", spec, h.Name)
		}
		name := cleanMember(h.Name)
		if name == "" || h.Typeflag != tar.TypeReg || !keep(name) {
			continue
		}
		if err := lim.member(name, h.Size, kept); err != nil {
			return nil, err
		}
		b := make([]byte, h.Size)
		if _, err := io.ReadFull(tr, b); err != nil {
			return nil, fmt.Errorf("data: archive %s: member %s truncated (%d bytes declared): %w", spec, name, h.Size, err)
		}
		kept += h.Size
		last = name
		f.add(name, b)
	}
	f.sort()
	return f, nil
}

func (f *Files) add(name string, b []byte) {
	if _, dup := f.bytes[name]; !dup {
		f.names = append(f.names, name)
	}
	f.bytes[name] = b // a later member replaces an earlier one, as tar extracts
}

func (f *Files) sort() { sort.Strings(f.names) }

// Names lists the files' relative paths in sorted order.
func (f *Files) Names() []string { return f.names }

// Bytes returns the contents of file rel, or nil and false.
func (f *Files) Bytes(rel string) ([]byte, bool) {
	b, ok := f.bytes[rel]
	return b, ok
}

// Where names file rel for messages: "dir/rel" or "archive.tar:rel".
func (f *Files) Where(rel string) string {
	if st, err := os.Stat(f.Src); err == nil && st.IsDir() {
		return filepath.Join(f.Src, filepath.FromSlash(rel))
	}
	return f.Src + ":" + rel
}

// hasSegment reports whether the slash path p has seg as one of its
// folder names.
func hasSegment(p, seg string) bool {
	parts := strings.Split(p, "/")
	for _, s := range parts[:len(parts)-1] {
		if s == seg {
			return true
		}
	}
	return false
}
