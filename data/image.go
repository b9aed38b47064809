package data

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // register JPEG for image.Decode
	_ "image/png"  // register PNG for image.Decode
	"math"
)

// Decode decodes a JPEG or PNG file's bytes into an Image. Grayscale files
// (8 or 16 bit) give C=1; everything else gives C=3 RGB, with any alpha
// channel dropped (not composited), as PIL's convert("RGB") does.
func Decode(b []byte) (Image, error) {
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return Image{}, err
	}
	return fromStd(img), nil
}

// fromStd converts a standard library image to CHW uint8.
func fromStd(img image.Image) Image {
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	switch m := img.(type) {
	case *image.Gray:
		out := Image{C: 1, H: h, W: w, Pix: make([]uint8, h*w)}
		for y := 0; y < h; y++ {
			i := m.PixOffset(r.Min.X, r.Min.Y+y)
			copy(out.Pix[y*w:(y+1)*w], m.Pix[i:i+w])
		}
		return out
	case *image.Gray16:
		out := Image{C: 1, H: h, W: w, Pix: make([]uint8, h*w)}
		for y := 0; y < h; y++ {
			i := m.PixOffset(r.Min.X, r.Min.Y+y)
			for x := 0; x < w; x++ {
				out.Pix[y*w+x] = m.Pix[i+2*x] // high byte, as Gray16 -> Gray
			}
		}
		return out
	}
	out := Image{C: 3, H: h, W: w, Pix: make([]uint8, 3*h*w)}
	pr, pg, pb := out.Pix[:h*w], out.Pix[h*w:2*h*w], out.Pix[2*h*w:]
	switch m := img.(type) {
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				yi := m.YOffset(r.Min.X+x, r.Min.Y+y)
				ci := m.COffset(r.Min.X+x, r.Min.Y+y)
				o := y*w + x
				pr[o], pg[o], pb[o] = color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			i := m.PixOffset(r.Min.X, r.Min.Y+y)
			for x := 0; x < w; x++ {
				o := y*w + x
				pr[o], pg[o], pb[o] = m.Pix[i+4*x], m.Pix[i+4*x+1], m.Pix[i+4*x+2]
			}
		}
	case *image.RGBA:
		// Opaque RGBA is the common case; translucent pixels are
		// un-premultiplied through the generic path below.
		for y := 0; y < h; y++ {
			i := m.PixOffset(r.Min.X, r.Min.Y+y)
			for x := 0; x < w; x++ {
				o := y*w + x
				if m.Pix[i+4*x+3] == 0xff {
					pr[o], pg[o], pb[o] = m.Pix[i+4*x], m.Pix[i+4*x+1], m.Pix[i+4*x+2]
				} else {
					c := color.NRGBAModel.Convert(m.At(r.Min.X+x, r.Min.Y+y)).(color.NRGBA)
					pr[o], pg[o], pb[o] = c.R, c.G, c.B
				}
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(img.At(r.Min.X+x, r.Min.Y+y)).(color.NRGBA)
				o := y*w + x
				pr[o], pg[o], pb[o] = c.R, c.G, c.B
			}
		}
	}
	return out
}

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
