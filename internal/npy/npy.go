// Package npy writes and reads NumPy .npy files: float32 arrays of any shape
// (features are [N, D]) and int64 arrays (labels are [N]), little-endian, C
// order.
//
// The format is NumPy's "NPY format version 1.0" (numpy/lib/format.py,
// NEP 1): the magic "\x93NUMPY", version bytes 1 0, a little-endian uint16
// header length, then an ASCII Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }, padded with
// spaces and ended by '\n' so that the data starts at a multiple of 64
// bytes, then the raw values. Readers also accept versions 2.0 and 3.0
// (uint32 header length), big-endian data, and, for ReadInt64, narrower
// integer types, which are widened without loss.
package npy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/selfsup/selfsup/internal/atomicfile"
)

const magic = "\x93NUMPY"

// align is the multiple of bytes at which the data starts.
const align = 64

// chunk is the number of values converted per buffered read or write.
const chunk = 1 << 14

// Header is the metadata of a .npy file.
type Header struct {
	// Major and Minor give the format version (1.0 when written here).
	Major, Minor int
	// Descr is NumPy's dtype string, for example "<f4" or "<i8".
	Descr string
	// FortranOrder is true for column-major data (not supported by the
	// readers here).
	FortranOrder bool
	// Shape holds the array's dimensions; empty for a scalar.
	Shape []int
	// DataOffset is the byte offset of the first value.
	DataOffset int64
}

// Len is the number of values the header's shape holds.
func (h Header) Len() int {
	n := 1
	for _, d := range h.Shape {
		n *= d
	}
	return n
}

// WriteFloat32 writes data as a float32 .npy file with the given shape
// (default: one dimension, len(data)). The product of shape must equal
// len(data). The file is written to a temporary file in the same
// directory, fsynced and renamed over path, so readers never see half a
// file.
func WriteFloat32(path string, data []float32, shape ...int) error {
	return write(path, "<f4", len(data), shape, func(w io.Writer) error { return putFloat32s(w, data) })
}

// WriteInt64 writes data as an int64 .npy file with the given shape
// (default: one dimension, len(data)), like WriteFloat32.
func WriteInt64(path string, data []int64, shape ...int) error {
	return write(path, "<i8", len(data), shape, func(w io.Writer) error {
		var buf [8 * chunk]byte
		for start := 0; start < len(data); start += chunk {
			part := data[start:min(start+chunk, len(data))]
			for i, v := range part {
				binary.LittleEndian.PutUint64(buf[8*i:], uint64(v))
			}
			if _, err := w.Write(buf[:8*len(part)]); err != nil {
				return err
			}
		}
		return nil
	})
}

// encodeHeader returns the magic, version, length and padded dict.
func encodeHeader(descr string, shape []int) ([]byte, error) {
	var sb strings.Builder
	sb.WriteString("{'descr': '")
	sb.WriteString(descr)
	sb.WriteString("', 'fortran_order': False, 'shape': (")
	for i, d := range shape {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		sb.WriteString(",")
	}
	sb.WriteString("), }")
	dict := sb.String()
	pre := len(magic) + 2 + 2
	total := pre + len(dict) + 1 // + '\n'
	if rem := total % align; rem != 0 {
		total += align - rem
	}
	hlen := total - pre
	if hlen > math.MaxUint16 {
		return nil, fmt.Errorf("header of %d bytes does not fit format 1.0 (shape has %d dimensions)", hlen, len(shape))
	}
	out := make([]byte, 0, total)
	out = append(out, magic...)
	out = append(out, 1, 0)
	out = binary.LittleEndian.AppendUint16(out, uint16(hlen))
	out = append(out, dict...)
	for len(out) < total-1 {
		out = append(out, ' ')
	}
	out = append(out, '\n')
	return out, nil
}

func write(path, descr string, n int, shape []int, body func(io.Writer) error) error {
	if len(shape) == 0 {
		shape = []int{n}
	}
	size := 1
	for i, d := range shape {
		if d < 0 {
			return fmt.Errorf("npy: write %s: shape %v: dimension %d is negative", path, shape, i)
		}
		size *= d
	}
	if size != n {
		return fmt.Errorf("npy: write %s: shape %v holds %d values, data has %d", path, shape, size, n)
	}
	hdr, err := encodeHeader(descr, shape)
	if err != nil {
		return fmt.Errorf("npy: write %s: %w", path, err)
	}
	err = atomicfile.Write(path, func(w io.Writer) error {
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		return body(w)
	})
	if err != nil {
		return fmt.Errorf("npy: write %s: %w", path, err)
	}
	return nil
}

// putFloat32s writes x little-endian to w, chunk values at a time.
func putFloat32s(w io.Writer, x []float32) error {
	var buf [4 * chunk]byte
	for start := 0; start < len(x); start += chunk {
		part := x[start:min(start+chunk, len(x))]
		for i, v := range part {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		if _, err := w.Write(buf[:4*len(part)]); err != nil {
			return err
		}
	}
	return nil
}

// Float32Writer streams the rows of a float32 [rows, dim] array into a .npy
// file without holding it in memory (extraction assembles its chunks this
// way). The header is written first, so rows and dim are fixed up front;
// Close checks that exactly rows rows came and commits the file atomically
// (see WriteFloat32). The caller must Close or Abort.
type Float32Writer struct {
	f         *atomicfile.File
	path      string
	rows, dim int
	written   int // values
}

// CreateFloat32 starts a float32 .npy file of shape [rows, dim] at path.
func CreateFloat32(path string, rows, dim int) (*Float32Writer, error) {
	if rows < 0 || dim < 0 {
		return nil, fmt.Errorf("npy: write %s: shape [%d %d] has a negative dimension", path, rows, dim)
	}
	hdr, err := encodeHeader("<f4", []int{rows, dim})
	if err != nil {
		return nil, fmt.Errorf("npy: write %s: %w", path, err)
	}
	f, err := atomicfile.Create(path)
	if err != nil {
		return nil, fmt.Errorf("npy: write %s: %w", path, err)
	}
	if _, err := f.Write(hdr); err != nil {
		f.Abort()
		return nil, fmt.Errorf("npy: write %s: %w", path, err)
	}
	return &Float32Writer{f: f, path: path, rows: rows, dim: dim}, nil
}

// Write appends x, a whole number of rows.
func (w *Float32Writer) Write(x []float32) error {
	if w.dim > 0 && len(x)%w.dim != 0 {
		return fmt.Errorf("npy: write %s: %d values are not whole rows of %d", w.path, len(x), w.dim)
	}
	if w.written+len(x) > w.rows*w.dim {
		return fmt.Errorf("npy: write %s: more than the %d rows of the header", w.path, w.rows)
	}
	if err := putFloat32s(w.f, x); err != nil {
		return fmt.Errorf("npy: write %s: %w", w.path, err)
	}
	w.written += len(x)
	return nil
}

// Close commits the file once every row was written; otherwise it aborts
// and says how many are missing.
func (w *Float32Writer) Close() error {
	if w.written != w.rows*w.dim {
		w.f.Abort()
		return fmt.Errorf("npy: write %s: %d of %d values written", w.path, w.written, w.rows*w.dim)
	}
	if err := w.f.Commit(); err != nil {
		return fmt.Errorf("npy: write %s: %w", w.path, err)
	}
	return nil
}

// Abort discards the file; safe after Close and twice.
func (w *Float32Writer) Abort() { w.f.Abort() }

// ReadHeader reads the header of the .npy file at path.
func ReadHeader(path string) (Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, fmt.Errorf("npy: %w", err)
	}
	defer f.Close()
	h, err := readHeader(bufio.NewReader(f))
	if err != nil {
		return Header{}, fmt.Errorf("npy: %s: %w", path, err)
	}
	return h, nil
}

func readHeader(r io.Reader) (Header, error) {
	var pre [len(magic) + 2]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return Header{}, fmt.Errorf("not a .npy file: too short for the magic string (%v)", err)
	}
	if string(pre[:len(magic)]) != magic {
		return Header{}, fmt.Errorf("not a .npy file: starts with %q, want %q", pre[:len(magic)], magic)
	}
	h := Header{Major: int(pre[len(magic)]), Minor: int(pre[len(magic)+1])}
	var hlen int
	switch h.Major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Header{}, fmt.Errorf("truncated header length: %v", err)
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
		h.DataOffset = int64(len(pre) + 2 + hlen)
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Header{}, fmt.Errorf("truncated header length: %v", err)
		}
		n := binary.LittleEndian.Uint32(b[:])
		if n > 1<<24 {
			return Header{}, fmt.Errorf("header length %d is implausibly large", n)
		}
		hlen = int(n)
		h.DataOffset = int64(len(pre) + 4 + hlen)
	default:
		return Header{}, fmt.Errorf("unsupported format version %d.%d (want 1.0, 2.0 or 3.0)", h.Major, h.Minor)
	}
	dict := make([]byte, hlen)
	if n, err := io.ReadFull(r, dict); err != nil {
		return Header{}, fmt.Errorf("truncated header: %d of %d bytes", n, hlen)
	}
	if err := parseDict(strings.TrimSpace(string(dict)), &h); err != nil {
		return Header{}, fmt.Errorf("header %q: %w", strings.TrimSpace(string(dict)), err)
	}
	return h, nil
}

// parseDict parses the header's Python dict literal into h.
func parseDict(s string, h *Header) error {
	p := &parser{s: s}
	if !p.eat('{') {
		return errors.New("want '{'")
	}
	seen := map[string]bool{}
	for {
		p.space()
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		p.space()
		if !p.eat(':') {
			return fmt.Errorf("want ':' after key %q", key)
		}
		p.space()
		switch key {
		case "descr":
			if h.Descr, err = p.str(); err != nil {
				return fmt.Errorf("descr: %w (structured dtypes are not supported)", err)
			}
		case "fortran_order":
			switch {
			case strings.HasPrefix(p.s[p.i:], "True"):
				h.FortranOrder, p.i = true, p.i+4
			case strings.HasPrefix(p.s[p.i:], "False"):
				h.FortranOrder, p.i = false, p.i+5
			default:
				return errors.New("fortran_order: want True or False")
			}
		case "shape":
			if h.Shape, err = p.tuple(); err != nil {
				return fmt.Errorf("shape: %w", err)
			}
		default:
			return fmt.Errorf("unexpected key %q", key)
		}
		seen[key] = true
		p.space()
		if p.eat(',') {
			continue
		}
		p.space()
		if !p.eat('}') {
			return fmt.Errorf("want ',' or '}' after %q", key)
		}
		break
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return fmt.Errorf("missing key %q", k)
		}
	}
	return nil
}

type parser struct {
	s string
	i int
}

func (p *parser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *parser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) str() (string, error) {
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", errors.New("want a quoted string")
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", errors.New("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	p.i += end + 2
	return v, nil
}

func (p *parser) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, errors.New("want '('")
	}
	shape := []int{}
	for {
		p.space()
		if p.eat(')') {
			return shape, nil
		}
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		// Python 2 era files may write long integers as 3L.
		d, err := strconv.Atoi(p.s[p.i:j])
		if err != nil || d < 0 {
			return nil, fmt.Errorf("want a dimension >= 0 at %q", p.s[p.i:])
		}
		p.i = j
		p.eat('L')
		shape = append(shape, d)
		p.space()
		if !p.eat(',') {
			p.space()
			if !p.eat(')') {
				return nil, errors.New("want ',' or ')'")
			}
			return shape, nil
		}
	}
}

// ReadFloat32 reads a float32 .npy file ('<f4' or '>f4', C order) and
// returns its values in C order and its shape. A file of another dtype, in
// Fortran order, or with fewer or more data bytes than its shape needs is an
// error.
func ReadFloat32(path string) ([]float32, []int, error) {
	var out []float32
	shape, err := read(path, "float32", func(h Header) (int, func([]byte, int) error, error) {
		order, kind, err := splitDescr(h.Descr)
		if err != nil || kind != "f4" {
			return 0, nil, fmt.Errorf("dtype %q, want float32 ('<f4')", h.Descr)
		}
		return 4, func(b []byte, at int) error {
			if out == nil { // allocated once the file size matches the shape
				out = make([]float32, h.Len())
			}
			for i := 0; i < len(b)/4; i++ {
				out[at+i] = math.Float32frombits(order.Uint32(b[4*i:]))
			}
			return nil
		}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	if out == nil {
		out = []float32{}
	}
	return out, shape, nil
}

// ReadInt64 reads an integer .npy file and returns its values as int64 in C
// order and its shape. Besides int64 ('<i8', '>i8') it accepts the
// narrower integer types (i1, i2, i4, u1, u2, u4, either byte order),
// widened without loss, and uint64 when every value fits in int64. Other
// dtypes, Fortran order and a wrong data length are errors.
func ReadInt64(path string) ([]int64, []int, error) {
	var out []int64
	shape, err := read(path, "int64", func(h Header) (int, func([]byte, int) error, error) {
		order, kind, err := splitDescr(h.Descr)
		if err != nil || !strings.Contains(" i1 u1 i2 u2 i4 u4 i8 u8 ", " "+kind+" ") {
			return 0, nil, fmt.Errorf("dtype %q is not an integer type; want int64 ('<i8')", h.Descr)
		}
		var width int
		var conv func(b []byte) (int64, error)
		switch kind {
		case "i1":
			width, conv = 1, func(b []byte) (int64, error) { return int64(int8(b[0])), nil }
		case "u1":
			width, conv = 1, func(b []byte) (int64, error) { return int64(b[0]), nil }
		case "i2":
			width, conv = 2, func(b []byte) (int64, error) { return int64(int16(order.Uint16(b))), nil }
		case "u2":
			width, conv = 2, func(b []byte) (int64, error) { return int64(order.Uint16(b)), nil }
		case "i4":
			width, conv = 4, func(b []byte) (int64, error) { return int64(int32(order.Uint32(b))), nil }
		case "u4":
			width, conv = 4, func(b []byte) (int64, error) { return int64(order.Uint32(b)), nil }
		case "i8":
			width, conv = 8, func(b []byte) (int64, error) { return int64(order.Uint64(b)), nil }
		case "u8":
			width, conv = 8, func(b []byte) (int64, error) {
				v := order.Uint64(b)
				if v > math.MaxInt64 {
					return 0, fmt.Errorf("uint64 value %d does not fit in int64", v)
				}
				return int64(v), nil
			}
		}
		return width, func(b []byte, at int) error {
			if out == nil { // allocated once the file size matches the shape
				out = make([]int64, h.Len())
			}
			for i := 0; i < len(b)/width; i++ {
				v, err := conv(b[width*i:])
				if err != nil {
					return fmt.Errorf("value %d: %w", at+i, err)
				}
				out[at+i] = v
			}
			return nil
		}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	if out == nil {
		out = []int64{}
	}
	return out, shape, nil
}

// splitDescr splits a simple dtype string such as "<f4" into its byte
// order and its kind ("f4").
func splitDescr(descr string) (binary.ByteOrder, string, error) {
	if len(descr) != 3 {
		return nil, "", fmt.Errorf("dtype %q is not a simple numeric type", descr)
	}
	switch descr[0] {
	case '<', '|', '=': // '=' is native; NumPy never writes it, and the platforms we build for are little-endian
		return binary.LittleEndian, descr[1:], nil
	case '>':
		return binary.BigEndian, descr[1:], nil
	}
	return nil, "", fmt.Errorf("dtype %q has an unknown byte order", descr)
}

// read opens path, parses the header, lets setup check the dtype and name
// the value width, checks the file size against the shape, then streams the
// data through the returned decoder in order.
func read(path, want string, setup func(Header) (width int, decode func(b []byte, at int) error, err error)) ([]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	r := bufio.NewReaderSize(f, 1<<20)
	h, err := readHeader(r)
	if err != nil {
		return nil, fmt.Errorf("npy: %s: %w", path, err)
	}
	if h.FortranOrder {
		return nil, fmt.Errorf("npy: %s: fortran_order arrays are not supported; save a C-order array (np.ascontiguousarray)", path)
	}
	n := 1
	for _, d := range h.Shape {
		if d != 0 && n > math.MaxInt/8/d {
			return nil, fmt.Errorf("npy: %s: shape %v is too large", path, h.Shape)
		}
		n *= d
	}
	width, decode, err := setup(h)
	if err != nil {
		return nil, fmt.Errorf("npy: %s: reading as %s: %w", path, want, err)
	}
	need := int64(n) * int64(width)
	if have := st.Size() - h.DataOffset; have != need {
		what := "truncated"
		if have > need {
			what = "trailing bytes"
		}
		return nil, fmt.Errorf("npy: %s: %s: shape %v of %s needs %d data bytes, file has %d", path, what, h.Shape, h.Descr, need, have)
	}
	buf := make([]byte, chunk*width)
	for at := 0; at < n; at += chunk {
		m := min(chunk, n-at)
		if _, err := io.ReadFull(r, buf[:m*width]); err != nil {
			return nil, fmt.Errorf("npy: %s: reading values %d..%d: %w", path, at, at+m-1, err)
		}
		if err := decode(buf[:m*width], at); err != nil {
			return nil, fmt.Errorf("npy: %s: %w", path, err)
		}
	}
	return h.Shape, nil
}
