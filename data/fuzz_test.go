package data

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"image"
	"math/rand"
	"testing"
	"time"
)

// Fuzz targets for every decoder of outside bytes in this package (issue
// 16). Seeds: f.Add below plus testdata/fuzz/<Target>/. CI runs each for
// a few seconds (scripts/test.sh); crashers become regular tests.

// fuzzMaxPixels keeps decoding under the fuzzer fast; the limit logic is
// the same at any value.
const fuzzMaxPixels = 1 << 20

func seedImages(f *testing.F) [][]byte {
	t := &testing.T{}
	return [][]byte{
		encodePNG(t, smoothRGBA(9, 7)),
		encodePNG(t, image.NewGray(image.Rect(0, 0, 5, 3))),
		encodeJPEG(t, smoothRGBA(17, 9)),
		encodeJPEG(t, image.NewGray(image.Rect(0, 0, 8, 8))),
	}
}

func FuzzDecode(f *testing.F) {
	for _, b := range seedImages(f) {
		f.Add(b, uint8(0), uint8(0))
		f.Add(b, uint8(3), uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, size, ch uint8) {
		o := DecodeOptions{MaxPixels: fuzzMaxPixels, Size: int(size % 64), Channels: []int{0, 1, 3}[ch%3]}
		if size >= 128 {
			o.Size, o.Shrink = 0, int(size%32)+1
		}
		m, err := DecodeWith(b, o)
		if err != nil {
			return
		}
		if err := m.check(); err != nil {
			t.Fatalf("decoded an invalid image: %v", err)
		}
		if o.Size > 0 && (m.H != o.Size || m.W != o.Size) {
			t.Fatalf("size %d: got %dx%d", o.Size, m.H, m.W)
		}
	})
}

func seedTar(members [][2]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		tw.WriteHeader(&tar.Header{Name: m[0], Mode: 0o644, Size: int64(len(m[1])), Typeflag: tar.TypeReg})
		tw.Write([]byte(m[1]))
	}
	tw.Close()
	return buf.Bytes()
}

// FuzzImageFolderArchive scans crafted tar (and tar.gz) bytes as an image
// folder archive, in memory (scanArchiveFrom is what OpenImageFolder runs
// on the file), and decodes what it finds.
func FuzzImageFolderArchive(f *testing.F) {
	imgs := seedImages(f)
	f.Add(seedTar([][2]string{{"a.png", string(imgs[0])}, {"b.jpg", string(imgs[2])}}))
	f.Add(seedTar([][2]string{{"train/x/a.png", string(imgs[1])}, {"train/y/b.jpg", string(imgs[3])}}))
	f.Add(seedTar([][2]string{{"../a.png", string(imgs[0])}}))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(seedTar([][2]string{{"a.png", string(imgs[0])}}))
	zw.Close()
	f.Add(gz.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, skip := range []bool{false, true} {
			ds := &Folder{src: "fuzz.tar", archive: true, opts: FolderOptions{SkipBad: skip, MaxPixels: fuzzMaxPixels, MaxMember: 1 << 20}}
			if err := ds.scanArchiveFrom(bufio.NewReader(bytes.NewReader(b)), int64(len(b)), ""); err != nil {
				continue
			}
			for i := 0; i < min(ds.Len(), 8); i++ {
				ds.Image(i)
			}
		}
	})
}

// FuzzIDX reads crafted IDX bytes, raw or gzipped, in memory
// (readMaybeGz and parseIDX are what OpenIDX runs on the file).
func FuzzIDX(f *testing.F) {
	f.Add([]byte{0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4})
	f.Add([]byte{0, 0, 8, 1, 0, 0, 0, 2, 7, 9})
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		raw, err := readMaybeGz(bufio.NewReader(bytes.NewReader(b)), int64(len(b)), "fuzz-idx3-ubyte")
		if err != nil {
			return
		}
		ds, err := idxFromBytes("fuzz-idx3-ubyte", raw)
		if err != nil {
			return
		}
		for i := 0; i < min(ds.Len(), 4); i++ {
			if m, err := ds.Image(i); err == nil {
				if err := m.check(); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// FuzzCIFARBin checks crafted CIFAR-10 binary batch bytes in memory (add
// is what OpenCIFAR10Bin runs on each file) and reads the records.
func FuzzCIFARBin(f *testing.F) {
	rec := make([]byte, cifarRecord)
	rec[0] = 3
	f.Add(rec)
	f.Add(append(append([]byte{}, rec...), 11))
	f.Fuzz(func(t *testing.T, b []byte) {
		ds := &cifarSet{classes: CIFAR10Classes()}
		if err := ds.add("fuzz_batch.bin", b, 1); err != nil {
			return
		}
		for i := 0; i < min(ds.Len(), 4); i++ {
			m, err := ds.Image(i)
			if err != nil {
				t.Fatal(err)
			}
			if l := ds.Label(i); l < 0 || l >= 10 {
				t.Fatalf("label %d", l)
			}
			if err := m.check(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestArchiveMutations complements FuzzImageFolderArchive, which `go test
// -fuzz` runs at only a few executions a minute on some machines (even a
// body of archive/tar alone does): 30,000 deterministic random mutations
// (byte changes, insertions, deletions, truncations) of seed archives,
// each scanned and decoded under a watchdog.
func TestArchiveMutations(t *testing.T) {
	n := 30000
	if testing.Short() {
		n = 3000
	}
	imgs := seedImages(nil)
	seeds := [][]byte{
		seedTar([][2]string{{"a.png", string(imgs[0])}, {"b.jpg", string(imgs[2])}}),
		seedTar([][2]string{{"train/x/a.png", string(imgs[1])}, {"train/y/b.jpg", string(imgs[3])}}),
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(seeds[0])
	zw.Close()
	seeds = append(seeds, gz.Bytes())
	rng := rand.New(rand.NewSource(16))
	for k := 0; k < n; k++ {
		b := append([]byte(nil), seeds[rng.Intn(len(seeds))]...)
		for m := rng.Intn(6) + 1; m > 0 && len(b) > 0; m-- {
			i := rng.Intn(len(b))
			switch rng.Intn(4) {
			case 0:
				b[i] = byte(rng.Intn(256))
			case 1:
				b = append(b[:i], append([]byte{byte(rng.Intn(256))}, b[i:]...)...)
			case 2:
				b = append(b[:i], b[i+1:]...)
			case 3:
				if rng.Intn(8) == 0 {
					b = b[:i]
				}
			}
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, skip := range []bool{false, true} {
				ds := &Folder{src: "mut.tar", archive: true, opts: FolderOptions{SkipBad: skip, MaxPixels: fuzzMaxPixels, MaxMember: 1 << 20}}
				if err := ds.scanArchiveFrom(bufio.NewReader(bytes.NewReader(b)), int64(len(b)), ""); err != nil {
					continue
				}
				for i := 0; i < min(ds.Len(), 8); i++ {
					ds.Image(i)
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("mutation %d: no answer within 10 s (%d bytes)", k, len(b))
		}
	}
}
