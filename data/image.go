package data

import (
	"fmt"
	"image"
	_ "image/jpeg" // register JPEG for image.Decode
	_ "image/png"  // register PNG for image.Decode
	"math"
)

// Decode decodes a JPEG or PNG file's bytes into an Image. Grayscale files
// (8 or 16 bit) give C=1; everything else gives C=3 RGB, with any alpha
// channel dropped (not composited), as PIL's convert("RGB") does. Images
// over DefaultMaxPixels are refused from their header (see DecodeWith).
func Decode(b []byte) (Image, error) {
	return DecodeWith(b, DecodeOptions{})
}

// fromStd converts a standard library image to CHW uint8 (see stdPlanes).
func fromStd(img image.Image) Image { return stdPlanes(img, stdChannels(img)) }

// Luma weights of ITU-R BT.601, used for every RGB to gray conversion here.
const (
	lumaR = 0.299
	lumaG = 0.587
	lumaB = 0.114
)

// convertImage changes m to channels channels (0 keeps them) and, when
// size > 0, resizes it to size x size.
func convertImage(m Image, channels, size int) (Image, error) {
	if err := m.check(); err != nil {
		return Image{}, err
	}
	switch {
	case channels == 0 || channels == m.C:
	case channels == 1 && m.C == 3:
		n := m.H * m.W
		out := Image{C: 1, H: m.H, W: m.W, Pix: make([]uint8, n)}
		for i := 0; i < n; i++ {
			v := lumaR*float64(m.Pix[i]) + lumaG*float64(m.Pix[n+i]) + lumaB*float64(m.Pix[2*n+i])
			out.Pix[i] = uint8(math.Min(255, math.Round(v)))
		}
		m = out
	case channels == 3 && m.C == 1:
		m = Image{C: 3, H: m.H, W: m.W, Pix: append(append(append(make([]uint8, 0, 3*len(m.Pix)), m.Pix...), m.Pix...), m.Pix...)}
	default:
		return Image{}, fmt.Errorf("data: cannot convert %d channels to %d (want 0, 1 or 3)", m.C, channels)
	}
	if size < 0 {
		return Image{}, fmt.Errorf("data: resize to %d x %d: size must be >= 0", size, size)
	}
	if size > 0 && (m.H != size || m.W != size) {
		t := Resize(ToTensor(m), size, size)
		m = FromTensor(t)
	}
	return m, nil
}

// FromImage converts a standard library image into an Image as Decode
// does: grayscale images give C=1, everything else C=3 RGB (alpha
// dropped).
func FromImage(img image.Image) Image { return fromStd(img) }

// Images is a Dataset of in-memory images, unlabeled; item i's source is
// "image i".
type Images []image.Image

// Len is the number of images.
func (s Images) Len() int { return len(s) }

// Image converts image i (see FromImage).
func (s Images) Image(i int) (Image, error) {
	if i < 0 || i >= len(s) {
		return Image{}, rangeErr(s, i)
	}
	if s[i] == nil {
		return Image{}, fmt.Errorf("data: image %d is nil", i)
	}
	return fromStd(s[i]), nil
}

// Label is -1: the images are unlabeled.
func (s Images) Label(int) int { return -1 }

// Classes is nil: the images are unlabeled.
func (s Images) Classes() []string { return nil }

// Source is "image i".
func (s Images) Source(i int) string { return fmt.Sprintf("image %d", i) }
