package draw

import (
	"image"
	"image/color"
	"strings"
	"testing"
)

func TestFont5x7(t *testing.T) {
	for r, g := range glyphs5x7 {
		for _, row := range g {
			if len(row) != 5 || strings.Trim(row, ".#") != "" {
				t.Fatalf("glyph %q row %q: expected 5 of '.' and '#'", r, row)
			}
		}
	}
	pic := image.NewRGBA(image.Rect(0, 0, 40, 10))
	if err := Text(pic, 0, 0, "1", 1, color.RGBA{0, 0, 0, 255}); err != nil {
		t.Fatal(err)
	}
	// '1' is "..#.." in its first row: only column 2 is inked there.
	for x := 0; x < 5; x++ {
		if inked := pic.RGBAAt(x, 0).A != 0; inked != (x == 2) {
			t.Fatalf("'1' row 0 column %d inked %v", x, inked)
		}
	}
	if err := Text(pic, 0, 0, "a~", 1, color.RGBA{}); err == nil {
		t.Fatal("drawText accepted '~', which the font lacks")
	}
	if w := TextWidth("ab", 2); w != 22 {
		t.Fatalf("TextWidth(ab, 2) = %d, expected 22", w)
	}
}
