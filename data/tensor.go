package data

import (
	"fmt"
	"math"
)

// Tensor is a float32 image in [channels, height, width] order: the value of
// channel c at row y, column x is Data[(c*H+y)*W+x]. Augmentations expect
// values in [0, 1] (Normalize moves them out of it, so it goes last).
type Tensor struct {
	C, H, W int
	Data    []float32
}

// At returns the value of channel c at row y, column x.
func (t Tensor) At(c, y, x int) float32 { return t.Data[(c*t.H+y)*t.W+x] }

// Valid reports whether t's shape is positive and agrees with len(Data).
func (t Tensor) Valid() bool {
	return t.C > 0 && t.H > 0 && t.W > 0 && len(t.Data) == t.C*t.H*t.W
}

func (t Tensor) shape() string {
	return fmt.Sprintf("%dx%dx%d (%d values)", t.C, t.H, t.W, len(t.Data))
}

// newTensor allocates a zero tensor of the given shape.
func newTensor(c, h, w int) Tensor {
	return Tensor{C: c, H: h, W: w, Data: make([]float32, c*h*w)}
}

// ToFloat returns img's pixels scaled to [0, 1] (v/255), in img's CHW order.
func ToFloat(img Image) []float32 {
	out := make([]float32, len(img.Pix))
	for i, v := range img.Pix {
		out[i] = float32(v) / 255
	}
	return out
}

// ToTensor returns img as a [C, H, W] tensor with values in [0, 1].
func ToTensor(img Image) Tensor {
	return Tensor{C: img.C, H: img.H, W: img.W, Data: ToFloat(img)}
}

// FromTensor converts t back to 8 bits: round(255*v), clamped to [0, 255]
// (NaN becomes 0).
func FromTensor(t Tensor) Image {
	out := Image{C: t.C, H: t.H, W: t.W, Pix: make([]uint8, len(t.Data))}
	for i, v := range t.Data {
		f := math.Round(255 * float64(v))
		switch {
		case f >= 255:
			out.Pix[i] = 255
		case f > 0:
			out.Pix[i] = uint8(f)
		}
	}
	return out
}
