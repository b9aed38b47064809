package report

import (
	"image"
	"image/color"

	"github.com/selfsup/selfsup/data"
)

// ImageOf converts a decoded dataset image ([channels, height, width],
// 1 or 3 channels) to an image.Image for drawing.
func ImageOf(m data.Image) image.Image {
	hw := m.H * m.W
	if m.C == 1 {
		g := image.NewGray(image.Rect(0, 0, m.W, m.H))
		copy(g.Pix, m.Pix[:hw])
		return g
	}
	out := image.NewRGBA(image.Rect(0, 0, m.W, m.H))
	for y := 0; y < m.H; y++ {
		for x := 0; x < m.W; x++ {
			i := y*m.W + x
			out.SetRGBA(x, y, color.RGBA{m.Pix[i], m.Pix[hw+i], m.Pix[2*hw+i], 255})
		}
	}
	return out
}
