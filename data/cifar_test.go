package data

import (
	"bytes"
	"fmt"
	"math/rand"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// cifarRecords makes n random CIFAR-10 records: label byte, then 3072
// pixel bytes.
func cifarRecords(rng *rand.Rand, n int) []byte {
	b := make([]byte, n*cifarRecord)
	rng.Read(b)
	for i := 0; i < n; i++ {
		b[i*cifarRecord] = byte(rng.Intn(10))
	}
	return b
}

func TestCIFAR10Bin(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	dir := t.TempDir()
	sub := filepath.Join(dir, "cifar-10-batches-bin")
	batches := make([][]byte, 5)
	for i := range batches {
		batches[i] = cifarRecords(rng, 2+i)
		writeFile(t, filepath.Join(sub, fmt.Sprintf("data_batch_%d.bin", i+1)), batches[i])
	}
	testRecs := cifarRecords(rng, 3)
	writeFile(t, filepath.Join(sub, "test_batch.bin"), testRecs)

	ds, err := OpenCIFAR10Bin(dir, "train") // finds the cifar-10-batches-bin folder
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 2+3+4+5+6 || !reflect.DeepEqual(ds.Classes(), CIFAR10Classes()) {
		t.Fatalf("len %d classes %v", ds.Len(), ds.Classes())
	}
	i := 0
	for b, recs := range batches {
		for r := 0; r < len(recs)/cifarRecord; r++ {
			rec := recs[r*cifarRecord : (r+1)*cifarRecord]
			m, err := ds.Image(i)
			if err != nil {
				t.Fatal(err)
			}
			if m.C != 3 || m.H != 32 || m.W != 32 || !bytes.Equal(m.Pix, rec[1:]) {
				t.Fatalf("item %d differs from record %d of batch %d", i, r, b+1)
			}
			// CHW: the green value at row 1, column 2 is byte 1024 + 32 + 2.
			if m.At(1, 1, 2) != rec[1+1024+32+2] {
				t.Fatal("CHW layout broken")
			}
			if ds.Label(i) != int(rec[0]) {
				t.Fatalf("label %d = %d, want %d", i, ds.Label(i), rec[0])
			}
			want := fmt.Sprintf("data_batch_%d.bin#%d", b+1, r)
			if !strings.HasSuffix(ds.Source(i), want) {
				t.Fatalf("source %d = %s, want ...%s", i, ds.Source(i), want)
			}
			i++
		}
	}
	te, err := OpenCIFAR10Bin(sub, "test")
	if err != nil || te.Len() != 3 {
		t.Fatalf("test split: %v", err)
	}
	writeFile(t, filepath.Join(sub, "batches.meta.txt"), []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n"))
	if te, _ = OpenCIFAR10Bin(sub, "test"); te.Classes()[9] != "j" {
		t.Errorf("batches.meta.txt names: %v", te.Classes())
	}

	// A file that is not a whole number of records, and a bad label.
	writeFile(t, filepath.Join(sub, "test_batch.bin"), testRecs[:len(testRecs)-5])
	if _, err := OpenCIFAR10Bin(sub, "test"); err == nil || !strings.Contains(err.Error(), "test_batch.bin") || !strings.Contains(err.Error(), "3073") {
		t.Errorf("short record: got %v", err)
	}
	testRecs[cifarRecord] = 10
	writeFile(t, filepath.Join(sub, "test_batch.bin"), testRecs)
	if _, err := OpenCIFAR10Bin(sub, "test"); err == nil || !strings.Contains(err.Error(), "record 1 has label 10") {
		t.Errorf("bad label: got %v", err)
	}
	if _, err := OpenCIFAR10Bin(sub, "val"); err == nil {
		t.Error("split val: want an error")
	}
}
