package npy

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
)

func seqFloat32(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i)*0.25 - 1
	}
	return x
}

func TestRoundTripFloat32(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name  string
		data  []float32
		shape []int
		want  []int
	}{
		{"matrix", seqFloat32(15), []int{5, 3}, []int{5, 3}},
		{"default 1-D", seqFloat32(7), nil, []int{7}},
		{"3-D", seqFloat32(24), []int{2, 3, 4}, []int{2, 3, 4}},
		{"empty rows", []float32{}, []int{0, 8}, []int{0, 8}},
		{"specials", []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), math.MaxFloat32, math.SmallestNonzeroFloat32}, []int{5, 1}, []int{5, 1}},
		{"larger than one chunk", seqFloat32(3*chunk + 5), []int{3*chunk + 5}, []int{3*chunk + 5}},
	}
	for _, c := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".npy")
		if err := WriteFloat32(p, c.data, c.shape...); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, shape, err := ReadFloat32(p)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(shape, c.want) {
			t.Errorf("%s: shape %v, want %v", c.name, shape, c.want)
		}
		if len(got) != len(c.data) {
			t.Fatalf("%s: %d values, want %d", c.name, len(got), len(c.data))
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(c.data[i]) {
				t.Fatalf("%s: value %d = %g, want %g", c.name, i, got[i], c.data[i])
			}
		}
	}

	// NaN keeps its bits.
	p := filepath.Join(dir, "nan.npy")
	nan := math.Float32frombits(0x7fc00001)
	if err := WriteFloat32(p, []float32{nan}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := ReadFloat32(p); err != nil || math.Float32bits(got[0]) != 0x7fc00001 {
		t.Errorf("NaN round trip: %v %v", got, err)
	}
}

func TestRoundTripInt64(t *testing.T) {
	dir := t.TempDir()
	data := []int64{0, 1, -1, math.MaxInt64, math.MinInt64, 1 << 40, 9}
	p := filepath.Join(dir, "labels.npy")
	if err := WriteInt64(p, data); err != nil {
		t.Fatal(err)
	}
	got, shape, err := ReadInt64(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, data) || !reflect.DeepEqual(shape, []int{7}) {
		t.Errorf("got %v %v, want %v [7]", got, shape, data)
	}
	if err := WriteInt64(p, data[:6], 2, 3); err != nil {
		t.Fatal(err)
	}
	got, shape, err = ReadInt64(p)
	if err != nil || !reflect.DeepEqual(got, data[:6]) || !reflect.DeepEqual(shape, []int{2, 3}) {
		t.Errorf("2x3: got %v %v %v", got, shape, err)
	}
}

// TestHeaderLayout checks the bytes the spec prescribes for a [2, 3]
// float32 array and a 1-D int64 array.
func TestHeaderLayout(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.npy")
	if err := WriteFloat32(p, seqFloat32(6), 2, 3); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	dict := "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
	want := "\x93NUMPY\x01\x00\x76\x00" + dict + strings.Repeat(" ", 128-10-len(dict)-1) + "\n"
	if string(raw[:128]) != want {
		t.Errorf("header\n got %q\nwant %q", raw[:128], want)
	}
	if len(raw) != 128+6*4 {
		t.Errorf("file has %d bytes, want %d", len(raw), 128+24)
	}
	if binary.LittleEndian.Uint32(raw[128+4:]) != math.Float32bits(-0.75) {
		t.Errorf("second value bytes %x, want little-endian -0.75", raw[132:136])
	}

	if err := WriteInt64(p, []int64{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	h, err := ReadHeader(p)
	if err != nil {
		t.Fatal(err)
	}
	if h.Major != 1 || h.Minor != 0 || h.Descr != "<i8" || h.FortranOrder || !reflect.DeepEqual(h.Shape, []int{3}) || h.DataOffset%64 != 0 {
		t.Errorf("header %+v", h)
	}
	raw, _ = os.ReadFile(p)
	if !bytes.Contains(raw, []byte("'shape': (3,), }")) {
		t.Errorf("1-D shape must be written as a one-element tuple: %q", raw[:h.DataOffset])
	}
}

func TestWriteErrorsAndAtomicity(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.npy")
	if err := WriteFloat32(p, seqFloat32(6), 4, 2); err == nil || !strings.Contains(err.Error(), "holds 8 values, data has 6") {
		t.Errorf("shape mismatch: %v", err)
	}
	if err := WriteInt64(p, []int64{}, 2, -1); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative dimension: %v", err)
	}
	if err := WriteFloat32(filepath.Join(dir, "no", "such", "f.npy"), seqFloat32(2)); err == nil || !strings.HasPrefix(err.Error(), "npy: write ") {
		t.Errorf("missing dir: %v", err)
	}
	// Overwrite an existing file: the new content replaces it whole.
	if err := WriteFloat32(p, seqFloat32(10)); err != nil {
		t.Fatal(err)
	}
	if err := WriteFloat32(p, seqFloat32(3)); err != nil {
		t.Fatal(err)
	}
	if got, _, err := ReadFloat32(p); err != nil || len(got) != 3 {
		t.Errorf("after overwrite: %v %v", got, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "f.npy" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only f.npy (no temp files left)", names)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
}

// header builds a .npy header by hand (version major.0).
func header(major int, dict string) []byte {
	pre := 10
	if major > 1 {
		pre = 12
	}
	total := pre + len(dict) + 1
	total += (64 - total%64) % 64
	b := []byte("\x93NUMPY")
	b = append(b, byte(major), 0)
	if major > 1 {
		b = binary.LittleEndian.AppendUint32(b, uint32(total-pre))
	} else {
		b = binary.LittleEndian.AppendUint16(b, uint16(total-pre))
	}
	b = append(b, dict...)
	for len(b) < total-1 {
		b = append(b, ' ')
	}
	return append(b, '\n')
}

func TestReadVariants(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Big-endian float32, version 2.0.
	b := header(2, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }")
	b = binary.BigEndian.AppendUint32(b, math.Float32bits(1.5))
	b = binary.BigEndian.AppendUint32(b, math.Float32bits(-2))
	got, shape, err := ReadFloat32(write("be.npy", b))
	if err != nil || !reflect.DeepEqual(got, []float32{1.5, -2}) || !reflect.DeepEqual(shape, []int{2}) {
		t.Errorf("big-endian v2: %v %v %v", got, shape, err)
	}

	// Scalar, keys in another order, double quotes.
	b = header(1, `{"shape": (), "fortran_order": False, "descr": "<f4"}`)
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(2.5))
	got, shape, err = ReadFloat32(write("scalar.npy", b))
	if err != nil || !reflect.DeepEqual(got, []float32{2.5}) || len(shape) != 0 {
		t.Errorf("scalar: %v %v %v", got, shape, err)
	}

	// int32 and uint8 labels widen to int64.
	b = header(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }")
	for _, v := range []int32{-7, 0, 1 << 30} {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	ints, _, err := ReadInt64(write("i4.npy", b))
	if err != nil || !reflect.DeepEqual(ints, []int64{-7, 0, 1 << 30}) {
		t.Errorf("int32: %v %v", ints, err)
	}
	b = append(header(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }"), 255, 3)
	ints, _, err = ReadInt64(write("u1.npy", b))
	if err != nil || !reflect.DeepEqual(ints, []int64{255, 3}) {
		t.Errorf("uint8: %v %v", ints, err)
	}
	b = binary.LittleEndian.AppendUint64(header(1, "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }"), math.MaxUint64)
	if _, _, err := ReadInt64(write("u8.npy", b)); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("uint64 overflow: %v", err)
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	f32 := filepath.Join(dir, "f32.npy")
	if err := WriteFloat32(f32, seqFloat32(12), 3, 4); err != nil {
		t.Fatal(err)
	}
	i64 := filepath.Join(dir, "i64.npy")
	if err := WriteInt64(i64, []int64{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(f32)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f64 := header(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }")
	f64 = binary.LittleEndian.AppendUint64(f64, math.Float64bits(1))

	cases := []struct {
		name string
		read func() error
		want string
	}{
		{"float32 as int64", func() error { _, _, err := ReadInt64(f32); return err }, `dtype "<f4" is not an integer type`},
		{"int64 as float32", func() error { _, _, err := ReadFloat32(i64); return err }, `dtype "<i8", want float32 ('<f4')`},
		{"float64 as float32", func() error { _, _, err := ReadFloat32(write("f64.npy", f64)); return err }, `dtype "<f8"`},
		{"truncated data", func() error { _, _, err := ReadFloat32(write("trunc.npy", raw[:len(raw)-3])); return err }, "truncated: shape [3 4] of <f4 needs 48 data bytes, file has 45"},
		{"trailing bytes", func() error {
			_, _, err := ReadFloat32(write("trail.npy", append(append([]byte{}, raw...), 0)))
			return err
		}, "trailing bytes"},
		{"truncated header", func() error { _, _, err := ReadFloat32(write("hdr.npy", raw[:40])); return err }, "truncated header"},
		{"empty file", func() error { _, _, err := ReadFloat32(write("empty.npy", nil)); return err }, "not a .npy file"},
		{"bad magic", func() error {
			_, _, err := ReadFloat32(write("magic.npy", []byte("PK\x03\x04 this is a zip")))
			return err
		}, "not a .npy file"},
		{"version", func() error {
			b := append([]byte{}, raw...)
			b[6] = 9
			_, _, err := ReadFloat32(write("v9.npy", b))
			return err
		}, "unsupported format version 9.0"},
		{"fortran", func() error {
			b := append(header(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }"), 0, 0, 0, 0)
			_, _, err := ReadFloat32(write("fortran.npy", b))
			return err
		}, "fortran_order"},
		{"structured", func() error {
			b := header(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }")
			_, _, err := ReadFloat32(write("struct.npy", b))
			return err
		}, "structured dtypes are not supported"},
		{"missing key", func() error {
			_, _, err := ReadFloat32(write("nokey.npy", header(1, "{'descr': '<f4', 'shape': (0,), }")))
			return err
		}, `missing key "fortran_order"`},
		{"missing file", func() error { _, _, err := ReadFloat32(filepath.Join(dir, "nope.npy")); return err }, "nope.npy"},
	}
	for _, c := range cases {
		err := c.read()
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "npy: ") {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

// pythonCheck is run by .venv/bin/python: it loads the files Go wrote,
// checks dtype, shape and values with numpy, and writes files for Go.
const pythonCheck = `
import sys, numpy as np
d = sys.argv[1]
def raw_header_ok(path):
    with open(path, "rb") as f:
        b = f.read(10)
    assert b[:6] == b"\x93NUMPY" and b[6:8] == b"\x01\x00", b
    hlen = int.from_bytes(b[8:10], "little")
    assert (10 + hlen) % 64 == 0, hlen

a = np.load(d + "/go_f32.npy")
assert a.dtype == np.float32 and a.shape == (5, 3), (a.dtype, a.shape)
assert np.array_equal(a, (np.arange(15, dtype=np.float32) * 0.25 - 1).reshape(5, 3)), a
raw_header_ok(d + "/go_f32.npy")

s = np.load(d + "/go_special.npy")
assert s.dtype == np.float32 and s.shape == (4,)
assert np.isposinf(s[0]) and np.isneginf(s[1]) and np.isnan(s[2]) and s[3] == 0 and np.signbit(s[3]), s

c = np.load(d + "/go_f32_3d.npy")
assert c.dtype == np.float32 and c.shape == (2, 3, 4) and c.flags["C_CONTIGUOUS"]
assert np.array_equal(c, (np.arange(24, dtype=np.float32) * 0.25 - 1).reshape(2, 3, 4))

e = np.load(d + "/go_empty.npy")
assert e.dtype == np.float32 and e.shape == (0, 8)

l = np.load(d + "/go_i64.npy")
assert l.dtype == np.int64 and l.shape == (5,), (l.dtype, l.shape)
assert l.tolist() == [0, -1, 2**62, -(2**62), 9], l
raw_header_ok(d + "/go_i64.npy")

m = np.load(d + "/go_i64_2d.npy")
assert m.dtype == np.int64 and m.shape == (2, 3) and m.tolist() == [[1, 2, 3], [4, 5, 6]]

x = (np.arange(24, dtype=np.float32) / 8 - 1).reshape(2, 3, 4)
np.save(d + "/py_f32.npy", x)
np.save(d + "/py_f32_be.npy", x.astype(">f4"))
np.save(d + "/py_f32_fortran.npy", np.asfortranarray(x))
np.save(d + "/py_f64.npy", x.astype(np.float64))
np.save(d + "/py_scalar.npy", np.float32(2.5))
np.save(d + "/py_i64.npy", np.array([3, -1, 2**62, 0], dtype=np.int64))
np.save(d + "/py_i32.npy", np.array([[7, -8], [9, 10]], dtype=np.int32))
with open(d + "/py_f32_v2.npy", "wb") as f:
    np.lib.format.write_array(f, x, version=(2, 0))
print("python-ok")
`

// TestNumPyInterop checks Go's files with numpy and reads numpy's files in
// Go. It needs the virtual environment from scripts/setup.sh.
func TestNumPyInterop(t *testing.T) {
	py := testenv.Python(t, "numpy")
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(WriteFloat32(filepath.Join(dir, "go_f32.npy"), seqFloat32(15), 5, 3))
	must(WriteFloat32(filepath.Join(dir, "go_special.npy"), []float32{
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), float32(math.Copysign(0, -1))}))
	must(WriteFloat32(filepath.Join(dir, "go_f32_3d.npy"), seqFloat32(24), 2, 3, 4))
	must(WriteFloat32(filepath.Join(dir, "go_empty.npy"), nil, 0, 8))
	must(WriteInt64(filepath.Join(dir, "go_i64.npy"), []int64{0, -1, 1 << 62, -(1 << 62), 9}))
	must(WriteInt64(filepath.Join(dir, "go_i64_2d.npy"), []int64{1, 2, 3, 4, 5, 6}, 2, 3))

	out, err := exec.Command(py, "-c", pythonCheck, dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "python-ok") {
		t.Fatalf("numpy check failed: %v\n%s", err, out)
	}

	want := make([]float32, 24)
	for i := range want {
		want[i] = float32(i)/8 - 1
	}
	for _, name := range []string{"py_f32.npy", "py_f32_be.npy", "py_f32_v2.npy"} {
		got, shape, err := ReadFloat32(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(shape, []int{2, 3, 4}) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: shape %v values %v, want [2 3 4] %v", name, shape, got, want)
		}
	}
	if got, shape, err := ReadFloat32(filepath.Join(dir, "py_scalar.npy")); err != nil || len(shape) != 0 || !reflect.DeepEqual(got, []float32{2.5}) {
		t.Errorf("py_scalar.npy: %v %v %v", got, shape, err)
	}
	if _, _, err := ReadFloat32(filepath.Join(dir, "py_f32_fortran.npy")); err == nil || !strings.Contains(err.Error(), "fortran_order") {
		t.Errorf("py_f32_fortran.npy: %v, want a fortran_order error", err)
	}
	if _, _, err := ReadFloat32(filepath.Join(dir, "py_f64.npy")); err == nil || !strings.Contains(err.Error(), `"<f8"`) {
		t.Errorf("py_f64.npy: %v, want a dtype error", err)
	}
	if got, shape, err := ReadInt64(filepath.Join(dir, "py_i64.npy")); err != nil || !reflect.DeepEqual(shape, []int{4}) || !reflect.DeepEqual(got, []int64{3, -1, 1 << 62, 0}) {
		t.Errorf("py_i64.npy: %v %v %v", got, shape, err)
	}
	if got, shape, err := ReadInt64(filepath.Join(dir, "py_i32.npy")); err != nil || !reflect.DeepEqual(shape, []int{2, 2}) || !reflect.DeepEqual(got, []int64{7, -8, 9, 10}) {
		t.Errorf("py_i32.npy: %v %v %v", got, shape, err)
	}
}

func BenchmarkWriteReadFloat32(b *testing.B) {
	data := seqFloat32(1000 * 512)
	p := filepath.Join(b.TempDir(), "f.npy")
	b.SetBytes(int64(4 * len(data)))
	for k := 0; k < b.N; k++ {
		if err := WriteFloat32(p, data, 1000, 512); err != nil {
			b.Fatal(err)
		}
		if _, _, err := ReadFloat32(p); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFloat32WriterStreamsRows(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.npy")
	w, err := CreateFloat32(p, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]float32{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]float32{5}); err == nil {
		t.Error("half a row accepted")
	}
	if err := w.Write([]float32{5, 6}); err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]float32{7, 8}); err == nil {
		t.Error("a row beyond the header accepted")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	x, shape, err := ReadFloat32(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(shape) != 2 || shape[0] != 3 || shape[1] != 2 || x[5] != 6 {
		t.Fatalf("read %v %v", shape, x)
	}
	// The same bytes as WriteFloat32.
	q := filepath.Join(t.TempDir(), "w.npy")
	if err := WriteFloat32(q, x, 3, 2); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(p)
	b, _ := os.ReadFile(q)
	if string(a) != string(b) {
		t.Error("streamed file differs from WriteFloat32's")
	}
}

func TestFloat32WriterShortIsAborted(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.npy")
	w, err := CreateFloat32(p, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]float32{1, 2})
	if err := w.Close(); err == nil {
		t.Fatal("Close of a short file succeeded")
	}
	w.Abort()
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("%d files left", len(left))
	}
}
