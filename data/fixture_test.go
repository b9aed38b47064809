package data

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// sharedData is the folder of the project's shared test data: $SELFSUP_DATA,
// else ../shared/data; a relative path is taken from the repository root
// (tests run in data/, one level below it).
func sharedData() string {
	d := os.Getenv("SELFSUP_DATA")
	if d == "" {
		d = filepath.Join("..", "shared", "data")
	}
	if !filepath.IsAbs(d) {
		d = filepath.Join("..", d)
	}
	return d
}

// randRGBA makes a w x h opaque image of random colours.
func randRGBA(rng *rand.Rand, w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.SetNRGBA(x, y, color.NRGBA{uint8(rng.Intn(256)), uint8(rng.Intn(256)), uint8(rng.Intn(256)), 255})
		}
	}
	return m
}

// randGray makes a w x h grayscale image of random values.
func randGray(rng *rand.Rand, w, h int) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = uint8(rng.Intn(256))
	}
	return m
}

// smoothRGBA makes a w x h image of gentle gradients, which JPEG keeps
// close to the original.
func smoothRGBA(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.SetNRGBA(x, y, color.NRGBA{uint8(40 + 8*x), uint8(200 - 6*y), uint8(100 + 3*(x+y)), 255})
		}
	}
	return m
}

func encodePNG(t *testing.T, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t *testing.T, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// stdDecode decodes b with the standard library and converts it to CHW
// through the generic At/RGBA path: the reference for Decode.
func stdDecode(t *testing.T, b []byte) Image {
	t.Helper()
	m, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	r := m.Bounds()
	_, gray := m.(*image.Gray)
	c := 3
	if gray {
		c = 1
	}
	out := Image{C: c, H: r.Dy(), W: r.Dx(), Pix: make([]uint8, c*r.Dx()*r.Dy())}
	for y := 0; y < r.Dy(); y++ {
		for x := 0; x < r.Dx(); x++ {
			rr, gg, bb, _ := m.At(r.Min.X+x, r.Min.Y+y).RGBA()
			o := y*out.W + x
			out.Pix[o] = uint8(rr >> 8)
			if c == 3 {
				out.Pix[out.H*out.W+o] = uint8(gg >> 8)
				out.Pix[2*out.H*out.W+o] = uint8(bb >> 8)
			}
		}
	}
	return out
}

// fixtureTree writes a small labeled image folder under root and returns
// the encoded bytes of each file by path relative to root:
//
//	train/cat/a.png     RGB 5x4
//	train/cat/b.jpg     RGB 8x6
//	train/dog/c.png     gray 3x3
//	train/dog/sub/d.png RGB 4x4 (nested below its class)
//	train/notes.txt     ignored (not an image)
//	train/cat/.hidden.png ignored (hidden)
//	test/cat/e.png      RGB 2x2
//	test/dog/f.jpg      gray JPEG 8x8
//	test/dog/g.PNG      RGB 3x2 (upper-case extension)
func fixtureTree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	rng := rand.New(rand.NewSource(1))
	files := map[string][]byte{
		"train/cat/a.png":     encodePNG(t, randRGBA(rng, 5, 4)),
		"train/cat/b.jpg":     encodeJPEG(t, smoothRGBA(8, 6)),
		"train/dog/c.png":     encodePNG(t, randGray(rng, 3, 3)),
		"train/dog/sub/d.png": encodePNG(t, randRGBA(rng, 4, 4)),
		"test/cat/e.png":      encodePNG(t, randRGBA(rng, 2, 2)),
		"test/dog/f.jpg":      encodeJPEG(t, randGray(rng, 8, 8)),
		"test/dog/g.PNG":      encodePNG(t, randRGBA(rng, 3, 2)),
	}
	for p, b := range files {
		writeFile(t, filepath.Join(root, p), b)
	}
	writeFile(t, filepath.Join(root, "train/notes.txt"), []byte("not an image"))
	writeFile(t, filepath.Join(root, "train/cat/.hidden.png"), []byte("junk"))
	return files
}

// tarTree archives the files under root into path (gzipped when gz), each
// member named prefix + its slash path relative to root, with folder
// entries.
func tarTree(t *testing.T, root, path, prefix string, gz bool) {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		rel, _ := filepath.Rel(root, p)
		name := prefix + filepath.ToSlash(rel)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.IsDir() {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	if gz {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		if _, err := zw.Write(out); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		out = z.Bytes()
	}
	writeFile(t, path, out)
}
