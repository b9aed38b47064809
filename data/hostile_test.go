package data

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"github.com/selfsup/selfsup/internal/testenv"
	"hash/crc32"
	"image"
	"math/rand"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// pngBomb returns a valid small PNG whose IHDR is rewritten to declare w x h
// pixels (with a correct CRC): a decompression bomb of a few hundred bytes.
func pngBomb(t *testing.T, w, h uint32) []byte {
	t.Helper()
	b := encodePNG(t, image.NewGray(image.Rect(0, 0, 1, 1)))
	// signature (8) | length (4) | "IHDR" (4) | width | height | ...
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// jpegBomb returns a small JPEG whose SOF marker declares w x h pixels.
func jpegBomb(t *testing.T, w, h uint16) []byte {
	t.Helper()
	b := encodeJPEG(t, image.NewGray(image.Rect(0, 0, 8, 8)))
	for i := 2; i+9 < len(b); i++ {
		if b[i] == 0xff && (b[i+1] == 0xc0 || b[i+1] == 0xc2) {
			binary.BigEndian.PutUint16(b[i+5:], h)
			binary.BigEndian.PutUint16(b[i+7:], w)
			return b
		}
	}
	t.Fatal("no SOF marker")
	return nil
}

// allocated runs f and returns the bytes it allocated on the Go heap.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// Regression (issue 16): a 1 KB PNG declaring 60000x60000 and a JPEG
// declaring 65500x65500 took every reader and the server down; they are now
// refused from the header, before anything is allocated for the pixels.
func TestDecodeRefusesPixelBombs(t *testing.T) {
	for name, b := range map[string][]byte{
		"png 60000x60000":  pngBomb(t, 60000, 60000),
		"jpeg 65500x65500": jpegBomb(t, 65500, 65500),
		"png 1x2^31":       pngBomb(t, 1, 1<<31-1),
	} {
		var err error
		n := allocated(func() { _, err = Decode(b) })
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: err = %v, want ErrTooLarge", name, err)
		}
		if n > 8<<20 {
			t.Errorf("%s: allocated %d bytes before refusing", name, n)
		}
	}
	// The limit is an option: a 10x10 image passes at 100 pixels, fails at 99.
	b := encodePNG(t, image.NewGray(image.Rect(0, 0, 10, 10)))
	if _, err := DecodeWith(b, DecodeOptions{MaxPixels: 100}); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeWith(b, DecodeOptions{MaxPixels: 99}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

// DecodeWith's row-by-row resize gives exactly what decoding, converting
// and resizing the full image gave.
func TestDecodeWithMatchesConvert(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	files := map[string][]byte{
		"png rgb":   encodePNG(t, randRGBA(rng, 97, 61)),
		"png gray":  encodePNG(t, randGray(rng, 40, 70)),
		"jpeg rgb":  encodeJPEG(t, smoothRGBA(83, 45)),
		"jpeg gray": encodeJPEG(t, randGray(rng, 33, 33)),
	}
	for name, b := range files {
		full, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range []int{0, 1, 3} {
			for _, size := range []int{0, 16, 50, 120} {
				want, err := convertImage(full, ch, size)
				if err != nil {
					t.Fatal(err)
				}
				got, err := DecodeWith(b, DecodeOptions{Channels: ch, Size: size})
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s channels %d size %d: got %dx%dx%d, differs from Convert's %dx%dx%d", name, ch, size, got.C, got.H, got.W, want.C, want.H, want.W)
				}
			}
		}
		// Shrink keeps the aspect ratio and leaves small images alone.
		got, err := DecodeWith(b, DecodeOptions{Shrink: 20})
		if err != nil {
			t.Fatal(err)
		}
		want := FromTensor(ResizeShorter(ToTensor(full), 20))
		if min(full.H, full.W) <= 20 {
			want = full
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s shrink 20: got %dx%d, want %dx%d", name, got.H, got.W, want.H, want.W)
		}
	}
}

// Regression (issue 16): an 8000x8000 image was decoded, copied to CHW and
// copied again to full-size floats before the resize (about 1 GB); the
// decode now resizes from the decoder's buffer row by row.
func TestDecodeWithResizeMemory(t *testing.T) {
	testenv.Short(t, "encodes a 4000x4000 PNG")
	b := encodePNG(t, image.NewGray(image.Rect(0, 0, 4000, 4000)))
	var err error
	n := allocated(func() { _, err = DecodeWith(b, DecodeOptions{Size: 32}) })
	if err != nil {
		t.Fatal(err)
	}
	// The decoder's own 16 MB buffer plus a 4000x32 float intermediate;
	// the old path added 16 MB (CHW) and 64 MB (floats).
	if n > 40<<20 {
		t.Fatalf("decoding 4000x4000 to 32x32 allocated %d MB", n>>20)
	}
}

// A flat folder of large photos: Shrink brings them to the training size
// while decoding, and a missing split folder says how to open a flat one.
func TestFlatPhotoFolder(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 3; i++ {
		writeFile(t, filepath.Join(dir, string(rune('a'+i))+".jpg"), encodeJPEG(t, smoothRGBA(640, 480)))
	}
	writeFile(t, filepath.Join(dir, "gray.png"), encodePNG(t, image.NewGray(image.Rect(0, 0, 300, 500))))
	_, err := OpenImageFolder(dir, "train", FolderOptions{})
	if !errors.Is(err, ErrNoSplit) || !strings.Contains(err.Error(), `--split ""`) {
		t.Fatalf("err = %v, want ErrNoSplit naming --split \"\"", err)
	}
	f, err := OpenImageFolder(dir, "", FolderOptions{Shrink: 32})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Cache(f)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < c.Len(); i++ {
		m, _ := c.Image(i)
		if min(m.H, m.W) != 32 || max(m.H, m.W) > 54 {
			t.Errorf("%s: %dx%d, want shorter side 32", c.Source(i), m.H, m.W)
		}
	}
	u, err := UniformChannels(c)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < u.Len(); i++ {
		if m, _ := u.Image(i); m.C != 3 {
			t.Errorf("%s: %d channels after UniformChannels", u.Source(i), m.C)
		}
	}
}

// tarBytes writes members (name -> content) into a tar.
func tarBytes(t *testing.T, members [][2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m[0], Mode: 0o644, Size: int64(len(m[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(m[1]))
	}
	tw.Close()
	return buf.Bytes()
}

// setTarSize rewrites the size field of the tar header at off to size
// (base-256, as GNU tar writes large sizes) and fixes its checksum.
func setTarSize(hdr []byte, size int64) {
	f := hdr[124:136]
	clear(f)
	f[0] = 0x80
	binary.BigEndian.PutUint64(f[4:], uint64(size))
	copy(hdr[148:156], "        ")
	sum := 0
	for _, c := range hdr[:512] {
		sum += int(c)
	}
	copy(hdr[148:156], []byte(strings.Repeat("0", 6-len(itoa8(sum)))+itoa8(sum)+"\x00 "))
}

func itoa8(n int) string {
	s := ""
	for ; n > 0; n /= 8 {
		s = string(rune('0'+n%8)) + s
	}
	return s
}

// Regression (issue 16): a 2,560-byte tar whose header claims a 50 GB member
// crashed every reader; the claim is now checked against the archive's size.
func TestTarMemberSizeBomb(t *testing.T) {
	jpg := string(encodeJPEG(t, smoothRGBA(8, 8)))
	b := tarBytes(t, [][2]string{{"train/a.jpg", jpg}})
	setTarSize(b, 50<<30)
	p := filepath.Join(t.TempDir(), "bomb.tar")
	writeFile(t, p, b)
	var err error
	n := allocated(func() { _, err = OpenImageFolder(p, "train", FolderOptions{}) })
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("err = %v, want ErrLimit", err)
	}
	if n > 8<<20 {
		t.Fatalf("allocated %d bytes before refusing", n)
	}
	// In a .tar.gz the archive's size says nothing: the member limit holds.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(b)
	zw.Close()
	writeFile(t, p+".gz", gz.Bytes())
	n = allocated(func() { _, err = OpenImageFolder(p+".gz", "train", FolderOptions{}) })
	if !errors.Is(err, ErrLimit) || n > 8<<20 {
		t.Fatalf("tar.gz: err = %v after %d bytes, want ErrLimit", err, n)
	}
}

// Regression (issue 16): a 3 MB .tar.gz inflating to gigabytes was read to
// the end; the decompressed stream is capped at a multiple of its size.
func TestTarGzInflateBomb(t *testing.T) {
	testenv.Short(t, "compresses 100 MB of zeros")
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "junk.bin", Mode: 0o644, Size: 100 << 20, Typeflag: tar.TypeReg})
	zero := make([]byte, 1<<20)
	for i := 0; i < 100; i++ {
		tw.Write(zero)
	}
	tw.WriteHeader(&tar.Header{Name: "a.jpg", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("abc"))
	tw.Close()
	zw.Close()
	p := filepath.Join(t.TempDir(), "bomb.tar.gz")
	writeFile(t, p, gz.Bytes())
	_, err := OpenImageFolder(p, "", FolderOptions{})
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("%d-byte tar.gz: err = %v, want ErrLimit", gz.Len(), err)
	}
}

// Regression (issue 16): tar members named ../x were renamed into the tree.
func TestTarRejectsEscapingMembers(t *testing.T) {
	jpg := string(encodeJPEG(t, smoothRGBA(8, 8)))
	for _, name := range []string{"../x.jpg", "/etc/x.jpg", "a/../../x.jpg"} {
		p := filepath.Join(t.TempDir(), "esc.tar")
		writeFile(t, p, tarBytes(t, [][2]string{{"a.jpg", jpg}, {name, jpg}}))
		if _, err := OpenImageFolder(p, "", FolderOptions{}); err == nil || !strings.Contains(err.Error(), "escapes") {
			t.Errorf("%s: err = %v, want a refusal", name, err)
		}
		f, err := OpenImageFolder(p, "", FolderOptions{SkipBad: true})
		if err != nil || f.Len() != 1 || len(f.Skipped()) != 1 {
			t.Errorf("%s with SkipBad: %v, want one image and one skipped", name, err)
		}
	}
}

// Regression (issue 16): a 2 MB IDX .gz bomb crashed; decompression is now
// capped.
func TestIDXGzBomb(t *testing.T) {
	testenv.Short(t, "compresses 200 MB of zeros")
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	hdr := []byte{0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 100}
	binary.BigEndian.PutUint32(hdr[4:], 20000)
	zw.Write(hdr)
	zero := make([]byte, 1<<20)
	for i := 0; i < 200; i++ {
		zw.Write(zero)
	}
	zw.Close()
	p := filepath.Join(t.TempDir(), "bomb-idx3-ubyte.gz")
	writeFile(t, p, gz.Bytes())
	if _, err := OpenIDX(p, ""); !errors.Is(err, ErrLimit) {
		t.Fatalf("%d-byte IDX gz: err = %v, want ErrLimit", gz.Len(), err)
	}
}
