package data

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Limits on what the readers of this package take from archives and
// compressed files (style lesson 14: sizes come from the bytes actually
// there, never from what a header claims).
const (
	// DefaultMaxMember is the largest tar member read into memory: 256 MiB.
	DefaultMaxMember = 256 << 20
	// DefaultMaxArchive is the most image bytes kept in memory from one
	// archive: 4 GiB.
	DefaultMaxArchive = 4 << 30
	// DefaultMaxIDX is the largest IDX payload read: 2 GiB.
	DefaultMaxIDX = 2 << 30
	// MaxInflateRatio bounds a gzip stream's decompressed size: at most
	// 64 MiB plus this many times the compressed file's size. Real data
	// (JPEG/PNG tars, MNIST IDX) inflates less than 10 times; a
	// decompression bomb inflates up to about 1000 times.
	MaxInflateRatio = 100
)

// ErrLimit is wrapped by errors about input over one of the limits above.
var ErrLimit = errors.New("over the size limit")

// inflateLimit is the most bytes a gzip file of compressed bytes may
// decompress to.
func inflateLimit(compressed int64) int64 {
	return 64<<20 + MaxInflateRatio*max(compressed, 0)
}

// capReader reads from r and fails, wrapping ErrLimit, once more than left
// bytes have come through.
type capReader struct {
	r    io.Reader
	left int64
	what string
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, fmt.Errorf("data: %s decompresses to more than its limit (%d times its compressed size plus 64 MiB; a decompression bomb?): %w", c.what, MaxInflateRatio, ErrLimit)
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, fmt.Errorf("data: %s decompresses to more than its limit (%d times its compressed size plus 64 MiB; a decompression bomb?): %w", c.what, MaxInflateRatio, ErrLimit)
	}
	return n, err
}

// archiveLimits checks each tar member's declared size before anything is
// allocated for it.
type archiveLimits struct {
	src       string
	fileSize  int64 // bytes of the archive file on disk
	gz        bool
	maxMember int64 // 0: DefaultMaxMember; < 0: none
	maxTotal  int64
}

// member checks a member of declared size about to be read, with kept
// bytes already held.
func (l archiveLimits) member(name string, size, kept int64) error {
	maxMember := l.maxMember
	if maxMember == 0 {
		maxMember = DefaultMaxMember
	}
	switch {
	case size < 0:
		return fmt.Errorf("data: archive %s: member %s declares a negative size %d", l.src, name, size)
	case !l.gz && size > l.fileSize:
		return fmt.Errorf("data: archive %s: member %s declares %d bytes but the whole archive is %d bytes (corrupt or crafted header): %w", l.src, name, size, l.fileSize, ErrLimit)
	case maxMember > 0 && size > maxMember:
		return fmt.Errorf("data: archive %s: member %s declares %d bytes, over the limit of %d per image file: %w", l.src, name, size, maxMember, ErrLimit)
	case l.maxTotal > 0 && kept+size > l.maxTotal:
		return fmt.Errorf("data: archive %s: image members exceed %d bytes in all (at %s): %w", l.src, l.maxTotal, name, ErrLimit)
	}
	return nil
}

// unsafeMember reports whether a tar member name is absolute or climbs out
// of the archive's root with "..": such members are refused, not renamed.
func unsafeMember(name string) bool {
	n := strings.ReplaceAll(name, "\\", "/")
	if strings.HasPrefix(n, "/") || (len(n) > 1 && n[1] == ':') {
		return true
	}
	for _, part := range strings.Split(path.Clean(n), "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

// readFileLimit reads a file whole, refusing one over limit bytes (0:
// DefaultMaxMember; negative: none) before reading it.
func readFileLimit(name string, limit int64) ([]byte, error) {
	if limit == 0 {
		limit = DefaultMaxMember
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if limit > 0 && st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, over the limit of %d per image file: %w", name, st.Size(), limit, ErrLimit)
	}
	if limit < 0 {
		return io.ReadAll(f)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("%s: grew past the limit of %d bytes while read: %w", name, limit, ErrLimit)
	}
	return b, err
}
