package draw

import (
	"image"
	"image/color"
	"math"

	"github.com/selfsup/selfsup/data"
)

// Blit draws t ([C, H, W], values in [0, 1]; 1 or 3 channels) with its
// top-left corner at (x, y), each pixel an s x s square, clipped to dst.
func Blit(dst *image.RGBA, t data.Tensor, x, y, s int) {
	b := dst.Bounds()
	byteOf := func(v float32) uint8 { return uint8(math.Round(255 * math.Min(1, math.Max(0, float64(v))))) }
	for ty := 0; ty < t.H; ty++ {
		for tx := 0; tx < t.W; tx++ {
			var c color.RGBA
			if t.C >= 3 {
				c = color.RGBA{byteOf(t.At(0, ty, tx)), byteOf(t.At(1, ty, tx)), byteOf(t.At(2, ty, tx)), 255}
			} else {
				g := byteOf(t.At(0, ty, tx))
				c = color.RGBA{g, g, g, 255}
			}
			for dy := 0; dy < s; dy++ {
				for dx := 0; dx < s; dx++ {
					if px, py := x+tx*s+dx, y+ty*s+dy; image.Pt(px, py).In(b) {
						dst.SetRGBA(px, py, c)
					}
				}
			}
		}
	}
}

// Fill paints r (clipped to dst) with c.
func Fill(dst *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(dst.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			dst.SetRGBA(x, y, c)
		}
	}
}

// Stroke draws the outline of r, w pixels wide, inside r.
func Stroke(dst *image.RGBA, r image.Rectangle, w int, c color.RGBA) {
	Fill(dst, image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+w), c)
	Fill(dst, image.Rect(r.Min.X, r.Max.Y-w, r.Max.X, r.Max.Y), c)
	Fill(dst, image.Rect(r.Min.X, r.Min.Y, r.Min.X+w, r.Max.Y), c)
	Fill(dst, image.Rect(r.Max.X-w, r.Min.Y, r.Max.X, r.Max.Y), c)
}
