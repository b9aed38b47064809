package eval

import (
	"fmt"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/data"
)

// memSet is an in-memory labelled dataset.
type memSet struct {
	imgs   []data.Image
	labels []int
}

func (m memSet) Len() int { return len(m.imgs) }
func (m memSet) Image(i int) (data.Image, error) {
	if i < 0 || i >= len(m.imgs) {
		return data.Image{}, fmt.Errorf("index %d", i)
	}
	return m.imgs[i], nil
}
func (m memSet) Label(i int) int     { return m.labels[i] }
func (m memSet) Classes() []string   { return []string{"a", "b"} }
func (m memSet) Source(i int) string { return fmt.Sprintf("mem#%d", i) }

func TestPixelFeatures(t *testing.T) {
	var ds memSet
	for i := 0; i < 37; i++ {
		pix := make([]uint8, 2*2*3)
		for j := range pix {
			pix[j] = uint8(i*7 + j*11)
		}
		ds.imgs = append(ds.imgs, data.Image{C: 3, H: 2, W: 2, Pix: pix})
		ds.labels = append(ds.labels, i%2)
	}
	mean, std := []float32{0.5, 0.4, 0.3}, []float32{0.25, 0.5, 0.2}
	x, d, err := PixelFeatures(ds, mean, std, 3)
	if err != nil {
		t.Fatal(err)
	}
	if d != 12 || len(x) != 37*12 {
		t.Fatalf("dim %d, %d values", d, len(x))
	}
	for i, img := range ds.imgs {
		for j, p := range img.Pix {
			c := j / 4
			want := (float32(p)/255 - mean[c]) / std[c]
			if x[i*d+j] != want {
				t.Fatalf("image %d value %d: %v, want %v", i, j, x[i*d+j], want)
			}
		}
	}
	ds.imgs[20] = data.Image{C: 3, H: 3, W: 2, Pix: make([]uint8, 18)}
	if _, _, err := PixelFeatures(ds, mean, std, 2); err == nil || !strings.Contains(err.Error(), "mem#20") {
		t.Fatalf("mixed sizes: %v, want an error naming mem#20", err)
	}
	if _, _, err := PixelFeatures(ds, mean[:1], std[:1], 2); err == nil {
		t.Fatal("1 mean for 3 channels accepted")
	}
}
