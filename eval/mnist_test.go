package eval

import (
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/testenv"
)

// mnistDir finds the folder with MNIST's four IDX .gz files: $SELFSUP_MNIST,
// or the module cache (data.FindMNIST; scripts/setup.sh downloads the
// module). It skips the test (see testenv.Skip) when neither works.
func mnistDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("SELFSUP_MNIST"); dir != "" {
		return dir
	}
	dir, err := data.FindMNIST()
	if err != nil {
		testenv.Skip(t, testenv.MNIST, "MNIST not available (set SELFSUP_MNIST to a folder with the IDX .gz files): %v", err)
	}
	return dir
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
