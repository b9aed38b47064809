package npy

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzRead feeds crafted .npy files to ReadFloat32 and ReadInt64: an error
// or data matching its shape, never a panic or an allocation the header
// merely claims (issue 16).
func FuzzRead(f *testing.F) {
	dir := f.TempDir()
	a, b := filepath.Join(dir, "a.npy"), filepath.Join(dir, "b.npy")
	if err := WriteFloat32(a, []float32{1, 2, 3, 4, 5, 6}, 2, 3); err != nil {
		f.Fatal(err)
	}
	if err := WriteInt64(b, []int64{7, 8}, 2); err != nil {
		f.Fatal(err)
	}
	for _, p := range []string{a, b} {
		x, _ := os.ReadFile(p)
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x []byte) {
		q := filepath.Join(dir, "f.npy")
		if err := os.WriteFile(q, x, 0o644); err != nil {
			t.Fatal(err)
		}
		check := func(n int, shape []int) {
			want := 1
			for _, d := range shape {
				if d < 0 {
					t.Fatalf("negative dim in %v", shape)
				}
				want *= d
			}
			if want != n {
				t.Fatalf("shape %v holds %d values, got %d", shape, want, n)
			}
		}
		if d, shape, err := ReadFloat32(q); err == nil {
			check(len(d), shape)
		}
		if d, shape, err := ReadInt64(q); err == nil {
			check(len(d), shape)
		}
	})
}
