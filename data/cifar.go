package data

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CIFAR10Classes returns (a fresh copy of) the CIFAR-10 class names
// (Krizhevsky 2009), index by index.
func CIFAR10Classes() []string {
	return []string{
		"airplane", "automobile", "bird", "cat", "deer",
		"dog", "frog", "horse", "ship", "truck",
	}
}

const (
	cifarSide   = 32
	cifarPixels = 3 * cifarSide * cifarSide // 3072, CHW: 1024 R, 1024 G, 1024 B
	cifarRecord = 1 + cifarPixels
)

type cifarSet struct {
	files   []string // one per batch file
	starts  []int    // first item of each file
	recs    []byte   // all records, cifarRecord bytes each
	classes []string
}

// OpenCIFAR10Bin opens the split ("train": data_batch_1.bin ...
// data_batch_5.bin; "test": test_batch.bin) of the CIFAR-10 binary release
// in dir (or in dir/cifar-10-batches-bin). Each record is one label byte
// followed by 3,072 pixel bytes, a 32x32 RGB image already in CHW order.
// The files are read into memory (150 MB for train) and checked: the size
// must be a whole number of records, labels must be below 10. Class names
// come from batches.meta.txt when present, else CIFAR10Classes.
func OpenCIFAR10Bin(dir, split string) (Dataset, error) {
	var names []string
	switch split {
	case "train":
		for i := 1; i <= 5; i++ {
			names = append(names, fmt.Sprintf("data_batch_%d.bin", i))
		}
	case "test":
		names = []string{"test_batch.bin"}
	default:
		return nil, fmt.Errorf("data: CIFAR-10 split %q: want \"train\" or \"test\"", split)
	}
	if _, err := os.Stat(filepath.Join(dir, names[0])); err != nil {
		if _, err2 := os.Stat(filepath.Join(dir, "cifar-10-batches-bin", names[0])); err2 == nil {
			dir = filepath.Join(dir, "cifar-10-batches-bin")
		}
	}
	s := &cifarSet{classes: CIFAR10Classes()}
	for _, n := range names {
		p := filepath.Join(dir, n)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("data: CIFAR-10 %s batch: %w", split, err)
		}
		if err := s.add(p, b, len(names)); err != nil {
			return nil, err
		}
	}
	if meta, err := os.ReadFile(filepath.Join(dir, "batches.meta.txt")); err == nil {
		var cls []string
		for _, l := range strings.Split(string(meta), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				cls = append(cls, l)
			}
		}
		if len(cls) == 10 {
			s.classes = cls
		}
	}
	return s, nil
}

func (s *cifarSet) Len() int { return len(s.recs) / cifarRecord }
func (s *cifarSet) Image(i int) (Image, error) {
	if i < 0 || i >= s.Len() {
		return Image{}, rangeErr(s, i)
	}
	o := i*cifarRecord + 1
	return Image{C: 3, H: cifarSide, W: cifarSide, Pix: append([]uint8(nil), s.recs[o:o+cifarPixels]...)}, nil
}
func (s *cifarSet) Label(i int) int   { return int(s.recs[i*cifarRecord]) }
func (s *cifarSet) Classes() []string { return s.classes }
func (s *cifarSet) Source(i int) string {
	f := len(s.starts) - 1
	for f > 0 && s.starts[f] > i {
		f--
	}
	return s.files[f] + "#" + strconv.Itoa(i-s.starts[f])
}

// add checks one batch file's bytes b (path p, one of batches files) and
// appends its records.
func (s *cifarSet) add(p string, b []byte, batches int) error {
	if len(b) == 0 || len(b)%cifarRecord != 0 {
		return fmt.Errorf("data: %s: size %d bytes is not a whole number of %d-byte CIFAR-10 records (1 label + 3072 pixels); %d bytes left over", p, len(b), cifarRecord, len(b)%cifarRecord)
	}
	for r := 0; r < len(b); r += cifarRecord {
		if b[r] >= 10 {
			return fmt.Errorf("data: %s: record %d has label %d, want 0..9", p, r/cifarRecord, b[r])
		}
	}
	s.files = append(s.files, p)
	s.starts = append(s.starts, len(s.recs)/cifarRecord)
	if s.recs == nil {
		s.recs = make([]byte, 0, len(b)*batches)
	}
	s.recs = append(s.recs, b...)
	return nil
}
