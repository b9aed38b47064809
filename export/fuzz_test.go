package export

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzInspect feeds crafted ONNX files to Inspect: an error or a summary,
// never a panic (issue 16).
func FuzzInspect(f *testing.F) {
	spec, w := newNet(f, "resnet20c", 1)
	m, err := Build(spec, w, DefaultOptions())
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	p := filepath.Join(dir, "seed.onnx")
	if err := Write(p, m); err != nil {
		f.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	f.Add(b[:min(len(b), 4096)])
	f.Add([]byte{0x08, 0x08, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		q := filepath.Join(dir, "f.onnx")
		if err := os.WriteFile(q, b, 0o644); err != nil {
			t.Fatal(err)
		}
		Inspect(q)
	})
}
