package data

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNoSplit is wrapped by OpenImageFolder's error when the split folder
// asked for is missing; a flat folder of images opens with split "".
var ErrNoSplit = errors.New("no such split folder")

// FolderOptions controls OpenImageFolder.
type FolderOptions struct {
	// Channels converts every image to 1 (ITU-R BT.601 luma) or 3 (gray
	// repeated) channels; 0 keeps each file's own (1 for grayscale files,
	// else 3).
	Channels int
	// SkipBad drops, at open time, files found unusable without decoding
	// them: empty files and, inside archives (whose bytes are in memory
	// anyway), files that start with neither the JPEG nor the PNG
	// signature; Folder.Skipped lists them. Without it such a file makes
	// OpenImageFolder fail. Files that are corrupt further in are only
	// found by decoding: use Check.
	SkipBad bool
	// Size resizes every image to Size x Size with bilinear interpolation
	// (antialiased when shrinking, see Resize); 0 keeps the file's size.
	Size int
	// Shrink, when Size is 0, resizes each image whose shorter side is
	// longer than Shrink so that it is Shrink, keeping the aspect ratio;
	// smaller images keep their size. 0: never. Photographs are decoded
	// and shrunk row by row (see DecodeWith), never held at full size.
	Shrink int
	// MaxPixels refuses images whose header declares more than this many
	// pixels (0: DefaultMaxPixels, 40 MP; negative: no limit).
	MaxPixels int64
	// MaxMember is the largest archive member read, in bytes (0:
	// DefaultMaxMember, 256 MiB; negative: no limit).
	MaxMember int64
	// Read, when set, reads the files of OpenImageFiles instead of the
	// local file system (an object store: the Beam pipeline reads gs://
	// paths through Beam's file systems); it gets MaxMember's limit.
	Read func(name string, limit int64) ([]byte, error)
}

// Folder is an image-folder dataset: JPEG and PNG files laid out as
// <root>/<split>/<class>/<file> (labeled, classes indexed in sorted name
// order, files anywhere below their class folder) or <root>/<split>/<file>
// (unlabeled, labels -1), read from a directory or a .tar / .tar.gz / .tgz
// archive. Items are ordered by path. Archives are read once at open time
// and the split's file bytes (still compressed as JPEG/PNG) kept in memory;
// directories are read file by file. Images are decoded on demand.
type Folder struct {
	src     string // the directory or archive given to OpenImageFolder
	opts    FolderOptions
	classes []string
	items   []folderItem
	archive bool     // read from a tar archive, not a directory
	arena   []byte   // archive member bytes
	skipped []string // dropped at open time under SkipBad
}

type folderItem struct {
	name   string // directory: full path; archive: member name
	label  int
	off, n int // archive: bytes of the member in arena
}

// imageExt reports whether name has a JPEG or PNG extension.
func imageExt(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// imageMagic reports whether b starts like a JPEG or PNG file.
func imageMagic(b []byte) bool {
	return bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}) || bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n"))
}

// OpenImageFolder opens the split of an image folder at p, a directory or
// a .tar, .tar.gz or .tgz archive (an archive's members may also sit under
// one top-level folder, as in cifar10/train/...). With split "" the root
// itself is the split folder. Hidden files and folders (names starting with
// ".") and files without a .jpg, .jpeg or .png extension are ignored. It
// fails when the split folder is missing or empty, a class folder holds no
// images, or images sit both directly in the split folder and in
// subfolders. Decoding errors surface from Image, naming the file; Check
// finds them all at once.
func OpenImageFolder(p, split string, opts FolderOptions) (*Folder, error) {
	if opts.Channels != 0 && opts.Channels != 1 && opts.Channels != 3 {
		return nil, fmt.Errorf("data: image folder %s: Channels must be 0, 1 or 3, got %d", p, opts.Channels)
	}
	if opts.Size < 0 || opts.Shrink < 0 {
		return nil, fmt.Errorf("data: image folder %s: Size and Shrink must be >= 0, got %d and %d", p, opts.Size, opts.Shrink)
	}
	split = strings.Trim(path.Clean("/"+filepath.ToSlash(split)), "/")
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("data: image folder: %w", err)
	}
	f := &Folder{src: p, opts: opts, archive: !st.IsDir()}
	if st.IsDir() {
		err = f.scanDir(split)
	} else {
		err = f.scanArchive(split)
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// OpenImageFiles is an unlabelled image-folder dataset over the given
// files, in the given order (labels -1, Source the path as given): what a
// file list or a glob matched, read file by file and decoded on demand as
// OpenImageFolder's items are. Every path must have a .jpg, .jpeg or .png
// extension; an empty list is an error.
func OpenImageFiles(paths []string, opts FolderOptions) (*Folder, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("data: image files: the list is empty")
	}
	if opts.Channels != 0 && opts.Channels != 1 && opts.Channels != 3 {
		return nil, fmt.Errorf("data: image files: Channels must be 0, 1 or 3, got %d", opts.Channels)
	}
	if opts.Size < 0 || opts.Shrink < 0 {
		return nil, fmt.Errorf("data: image files: Size and Shrink must be >= 0, got %d and %d", opts.Size, opts.Shrink)
	}
	f := &Folder{src: "image files", opts: opts, items: make([]folderItem, len(paths))}
	for i, p := range paths {
		if !imageExt(p) {
			return nil, fmt.Errorf("data: image files: item %d, %q, has no .jpg, .jpeg or .png extension", i, p)
		}
		f.items[i] = folderItem{name: p, label: -1}
	}
	return f, nil
}

// entry is a file found under the split folder: rel is its slash-separated
// path relative to the split folder.
type entry struct {
	rel    string
	name   string
	off, n int
}

// assemble turns the files under the split folder into items. dirs are
// the names of the split folder's immediate subfolders.
func (f *Folder) assemble(where string, dirs []string, files []entry) error {
	var direct, nested int
	for _, e := range files {
		if strings.Contains(e.rel, "/") {
			nested++
		} else {
			direct++
		}
	}
	switch {
	case direct > 0 && nested > 0:
		return fmt.Errorf("data: %s: %d images sit directly in the split folder and %d in subfolders; want one layout: <split>/<class>/<file> (labeled) or <split>/<file> (unlabeled)", where, direct, nested)
	case direct == 0 && nested == 0:
		return fmt.Errorf("data: %s: no .jpg, .jpeg or .png files found", where)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	label := map[string]int{}
	if nested > 0 {
		f.classes = append([]string(nil), dirs...)
		label = classIndex(f.classes)
	}
	count := make([]int, len(f.classes))
	for _, e := range files {
		l := -1
		if nested > 0 {
			cls, _, _ := strings.Cut(e.rel, "/")
			var ok bool
			if l, ok = label[cls]; !ok {
				return fmt.Errorf("data: %s: internal: file %s outside the class folders", where, e.name)
			}
			count[l]++
		}
		f.items = append(f.items, folderItem{name: e.name, label: l, off: e.off, n: e.n})
	}
	for c, n := range count {
		if n == 0 {
			return fmt.Errorf("data: %s: class folder %q holds no .jpg, .jpeg or .png files (remove it: it would shift class indices)", where, f.classes[c])
		}
	}
	return nil
}

func hidden(name string) bool { return strings.HasPrefix(name, ".") }

// scanDir lists the split folder of a directory tree, following symbolic
// links (to a depth of 32 folders, which also stops link cycles).
func (f *Folder) scanDir(split string) error {
	root := filepath.Join(f.src, filepath.FromSlash(split))
	top, err := os.ReadDir(root)
	if err != nil {
		if os.IsNotExist(err) && split != "" {
			return fmt.Errorf("data: image folder %s has no %q split folder (%s); for a flat folder of images use split \"\" (--split \"\"): %w", f.src, split, listDir(f.src), ErrNoSplit)
		}
		return fmt.Errorf("data: image folder: %w", err)
	}
	var dirs []string
	var files []entry
	var walk func(dir, rel string, ents []os.DirEntry, depth int) error
	walk = func(dir, rel string, ents []os.DirEntry, depth int) error {
		if depth > 32 {
			return fmt.Errorf("data: image folder %s: folders nested deeper than 32 (a symbolic link cycle?)", dir)
		}
		for _, d := range ents {
			if hidden(d.Name()) {
				continue
			}
			full := filepath.Join(dir, d.Name())
			r := d.Name()
			if rel != "" {
				r = rel + "/" + d.Name()
			}
			info, err := os.Stat(full) // follows links
			if err != nil {
				if f.opts.SkipBad {
					f.skipped = append(f.skipped, full)
					continue
				}
				return fmt.Errorf("data: image folder: %w", err)
			}
			if info.IsDir() {
				if depth == 0 {
					dirs = append(dirs, d.Name())
				}
				sub, err := os.ReadDir(full)
				if err != nil {
					if f.opts.SkipBad {
						f.skipped = append(f.skipped, full)
						continue
					}
					return fmt.Errorf("data: image folder: %w", err)
				}
				if err := walk(full, r, sub, depth+1); err != nil {
					return err
				}
				continue
			}
			if !info.Mode().IsRegular() || !imageExt(d.Name()) {
				continue
			}
			if info.Size() == 0 {
				if f.opts.SkipBad {
					f.skipped = append(f.skipped, full)
					continue
				}
				return fmt.Errorf("data: image file %s is empty (0 bytes)", full)
			}
			files = append(files, entry{rel: r, name: full})
		}
		return nil
	}
	if err := walk(root, "", top, 0); err != nil {
		return err
	}
	return f.assemble(root, dirs, files)
}

// listDir names a directory's entries for an error message.
func listDir(dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		if len(names) == 10 {
			names = append(names, "...")
			break
		}
	}
	return "it holds: " + strings.Join(names, ", ")
}

// cleanMember normalises an archive member name to a relative slash path,
// or "" when it should be ignored (hidden, escaping the root, empty).
func cleanMember(name string) string {
	name = strings.TrimLeft(path.Clean("/"+name), "/")
	if name == "" {
		return ""
	}
	for _, part := range strings.Split(name, "/") {
		if hidden(part) || part == ".." {
			return ""
		}
	}
	return name
}

// scanArchive reads a tar (optionally gzipped) once, keeping the bytes of
// the image members that may belong to split.
func (f *Folder) scanArchive(split string) error {
	fh, err := os.Open(f.src)
	if err != nil {
		return fmt.Errorf("data: image folder: %w", err)
	}
	defer fh.Close()
	var size int64
	if st, err := fh.Stat(); err == nil {
		size = st.Size()
	}
	return f.scanArchiveFrom(bufio.NewReaderSize(fh, 1<<20), size, split)
}

// scanArchiveFrom is scanArchive on the archive's bytes from br (size
// bytes in all, as the file on disk says).
func (f *Folder) scanArchiveFrom(br *bufio.Reader, size int64, split string) error {
	var r io.Reader = br
	gz := false
	if head, _ := br.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("data: archive %s: bad gzip header: %w", f.src, err)
		}
		r, gz = zr, true
	}
	// A candidate is under <split>/ or <top>/<split>/; with split "" all
	// members are.
	candidate := func(name string) bool {
		if split == "" {
			return true
		}
		if strings.HasPrefix(name, split+"/") {
			return true
		}
		_, rest, ok := strings.Cut(name, "/")
		return ok && strings.HasPrefix(rest, split+"/")
	}
	lim := archiveLimits{src: f.src, fileSize: size, gz: gz, maxMember: f.opts.MaxMember, maxTotal: DefaultMaxArchive}
	if !gz {
		f.arena = make([]byte, 0, min(size, DefaultMaxArchive))
	} else {
		r = &capReader{r: r, left: inflateLimit(size), what: "archive " + f.src}
	}
	type member struct {
		name   string
		off, n int
		dir    bool
	}
	var members []member
	seen := map[string]int{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			after := "at its start"
			if len(members) > 0 {
				after = "after member " + members[len(members)-1].name
			}
			return fmt.Errorf("data: archive %s: corrupt or truncated %s: %w", f.src, after, err)
		}
		if unsafeMember(h.Name) {
			if f.opts.SkipBad {
				f.skipped = append(f.skipped, f.src+":"+h.Name)
				continue
			}
			return fmt.Errorf("data: archive %s: member %q escapes the archive's root (absolute or with \"..\"); refusing it", f.src, h.Name)
		}
		name := cleanMember(h.Name)
		if name == "" || !candidate(name) {
			continue
		}
		m := member{name: name}
		switch {
		case h.Typeflag == tar.TypeDir:
			m.dir = true
		case h.Typeflag == tar.TypeReg && imageExt(name):
			m.off = len(f.arena)
			if err := lim.member(name, h.Size, int64(len(f.arena))); err != nil {
				return err
			}
			if h.Size > 0 {
				if int64(cap(f.arena)-len(f.arena)) < h.Size {
					grown := make([]byte, len(f.arena), 2*cap(f.arena)+int(h.Size))
					copy(grown, f.arena)
					f.arena = grown
				}
				buf := f.arena[len(f.arena) : len(f.arena)+int(h.Size)]
				if _, err := io.ReadFull(tr, buf); err != nil {
					return fmt.Errorf("data: archive %s: member %s truncated (%d bytes declared): %w", f.src, name, h.Size, err)
				}
				f.arena = f.arena[:len(f.arena)+int(h.Size)]
			}
			m.n = int(h.Size)
		default:
			continue
		}
		if k, dup := seen[name]; dup { // a later member replaces an earlier one, as tar extracts
			members[k] = m
			continue
		}
		seen[name] = len(members)
		members = append(members, m)
	}
	// Find the split folder: <split>/ at the top, else under one top folder.
	prefix := ""
	if split != "" {
		prefix = split + "/"
		found := false
		tops := map[string]bool{}
		for _, m := range members {
			if strings.HasPrefix(m.name, prefix) || m.name == split {
				found = true
			}
			top, _, _ := strings.Cut(m.name, "/")
			tops[top] = true
		}
		if !found {
			var top string
			for t := range tops {
				top = t
			}
			if len(tops) != 1 {
				return fmt.Errorf("data: archive %s has no %q split folder at its top or under a single top folder; for a flat archive of images use split \"\" (--split \"\"): %w", f.src, split, ErrNoSplit)
			}
			prefix = top + "/" + split + "/"
		}
	}
	var dirs []string
	dirSeen := map[string]bool{}
	var files []entry
	used := 0
	for _, m := range members {
		rel, ok := strings.CutPrefix(m.name, prefix)
		if !ok || rel == "" {
			continue
		}
		if cls, _, nested := strings.Cut(rel, "/"); (nested || m.dir) && !dirSeen[cls] {
			dirSeen[cls] = true
			dirs = append(dirs, cls)
		}
		if m.dir {
			continue
		}
		src := f.src + ":" + m.name
		if m.n == 0 || !imageMagic(f.arena[m.off:m.off+m.n]) {
			if f.opts.SkipBad {
				f.skipped = append(f.skipped, src)
				continue
			}
			if m.n == 0 {
				return fmt.Errorf("data: image file %s is empty (0 bytes)", src)
			}
			return fmt.Errorf("data: image file %s is neither JPEG nor PNG (starts % x)", src, f.arena[m.off:m.off+min(m.n, 8)])
		}
		files = append(files, entry{rel: rel, name: m.name, off: m.off, n: m.n})
		used += m.n
	}
	if len(files) == 0 && len(dirs) == 0 {
		return fmt.Errorf("data: archive %s: split folder %q holds no .jpg, .jpeg or .png files", f.src, strings.TrimSuffix(prefix, "/"))
	}
	// Keep only the split's bytes when the rest would waste memory.
	if used < cap(f.arena)*3/4 {
		compact := make([]byte, 0, used)
		for i := range files {
			e := &files[i]
			compact = append(compact, f.arena[e.off:e.off+e.n]...)
			e.off = len(compact) - e.n
		}
		f.arena = compact
	}
	where := f.src
	if prefix != "" {
		where += ":" + strings.TrimSuffix(prefix, "/")
	}
	return f.assemble(where, dirs, files)
}

// Len is the number of images.
func (f *Folder) Len() int { return len(f.items) }

// Label is the class index of image i, -1 for an unlabeled folder.
func (f *Folder) Label(i int) int { return f.items[i].label }

// Classes are the class folder names in sorted order; nil when unlabeled.
func (f *Folder) Classes() []string { return f.classes }

// Source is the file path of image i, or "archive:member" for archives.
func (f *Folder) Source(i int) string {
	if f.archive {
		return f.src + ":" + f.items[i].name
	}
	return f.items[i].name
}

// Skipped lists the files dropped at open time under FolderOptions.SkipBad.
func (f *Folder) Skipped() []string { return f.skipped }

// Image reads and decodes image i and applies FolderOptions' Channels and
// Size. Errors name the file.
func (f *Folder) Image(i int) (Image, error) {
	if i < 0 || i >= len(f.items) {
		return Image{}, rangeErr(f, i)
	}
	it := f.items[i]
	var b []byte
	if f.archive {
		b = f.arena[it.off : it.off+it.n]
	} else {
		read := readFileLimit
		if f.opts.Read != nil {
			read = f.opts.Read
		}
		var err error
		if b, err = read(it.name, f.opts.MaxMember); err != nil {
			return Image{}, fmt.Errorf("data: read image: %w", err)
		}
	}
	m, err := DecodeWith(b, DecodeOptions{MaxPixels: f.opts.MaxPixels, Channels: f.opts.Channels, Size: f.opts.Size, Shrink: f.opts.Shrink})
	if err != nil {
		return Image{}, fmt.Errorf("data: decode %s: %w", f.Source(i), err)
	}
	return m, nil
}
