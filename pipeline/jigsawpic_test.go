package pipeline

import (
	"image"
	"math"
	"math/rand"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/pretext"
)

// TestJigsawPicture checks that the shuffled panel shows, at position p,
// tile perm[p] (pixel for pixel, away from the number label), and the
// tiles panel shows tile i at its box.
func TestJigsawPicture(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	src := data.Tensor{C: 3, H: 32, W: 32, Data: make([]float32, 3*32*32)}
	for i := range src.Data {
		src.Data[i] = rng.Float32()
	}
	cfg := pretext.DefaultTileConfig(32)
	cfg.PerTileNorm, cfg.Jitter, cfg.GrayProb = false, false, 0
	p, err := pretext.CutPuzzle(src, cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	perm := []int{8, 3, 5, 7, 2, 1, 4, 0, 6}
	pic, lay, err := DrawJigsawPicture(src, p, cfg, perm, 64, 100, "maxavg")
	if err != nil {
		t.Fatal(err)
	}
	if len(lay.Slots) != 9 || len(lay.Tiles) != 9 || lay.Scale != 300/cfg.Crop {
		t.Fatalf("layout %+v", lay)
	}
	check := func(what string, r image.Rectangle, tile data.Tensor) {
		t.Helper()
		s := lay.Scale
		for ty := (20 + s - 1) / s; ty < tile.H; ty++ { // rows below the label box (20 px)
			for tx := 0; tx < tile.W; tx++ {
				c := pic.RGBAAt(r.Min.X+tx*s+s/2, r.Min.Y+ty*s+s/2)
				for ch, got := range []uint8{c.R, c.G, c.B} {
					want := uint8(math.Round(255 * float64(tile.At(ch, ty, tx))))
					if got != want {
						t.Fatalf("%s: pixel (%d,%d) channel %d is %d, tile has %d", what, ty, tx, ch, got, want)
					}
				}
			}
		}
	}
	for pos, ti := range perm {
		check("shuffled position "+string(rune('0'+pos)), lay.Slots[pos], p.Tiles[ti])
	}
	for i := range p.Tiles {
		check("tile "+string(rune('0'+i)), lay.Tiles[i], p.Tiles[i])
	}
	if !lay.Slots[0].In(pic.Bounds()) || !lay.Slots[8].In(pic.Bounds()) {
		t.Fatalf("slots %v %v outside the picture %v", lay.Slots[0], lay.Slots[8], pic.Bounds())
	}
}
