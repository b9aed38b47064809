package train

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/models"
)

// FuzzReadSafetensors feeds crafted checkpoint bytes to parseSafetensors
// (what ReadSafetensors runs on the file's bytes):
// it must return an error or tensors whose shapes hold their data, never
// panic or allocate what the header merely claims (issue 16).
func FuzzReadSafetensors(f *testing.F) {
	dir := f.TempDir()
	p := filepath.Join(dir, "seed.safetensors")
	if err := WriteSafetensors(p, models.Weights{"a": {Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}}, "b": {Shape: []int{}, Data: []float32{5}}},
		map[string]string{"k": "v"}); err != nil {
		f.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	f.Add(b)
	f.Add(b[:len(b)-3])
	f.Add([]byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"w\":{}}        "))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, _, err := parseSafetensors("fuzz.safetensors", b)
		if err != nil {
			return
		}
		for name, tn := range w {
			if tn.Size() != len(tn.Data) {
				t.Fatalf("tensor %q: shape %v, %d values", name, tn.Shape, len(tn.Data))
			}
			for _, d := range tn.Shape {
				if d < 0 {
					t.Fatalf("tensor %q: negative dim in %v", name, tn.Shape)
				}
			}
		}
	})
}
