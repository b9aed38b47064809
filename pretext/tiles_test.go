package pretext

import (
	"math"
	"math/rand"
	"testing"

	"github.com/selfsup/selfsup/data"
)

func randImage(rng *rand.Rand, c, h, w int) data.Tensor {
	t := data.Tensor{C: c, H: h, W: w, Data: make([]float32, c*h*w)}
	for i := range t.Data {
		t.Data[i] = rng.Float32()
	}
	return t
}

// plainTiles is cfg with every random change of pixel values off, so tiles
// are exact copies (or resizes) of the crop.
func plainTiles(cfg TileConfig) TileConfig {
	cfg.Jitter, cfg.PerTileNorm, cfg.GrayProb = false, false, 0
	return cfg
}

func TestDefaultTileConfig(t *testing.T) {
	for _, tc := range []struct {
		size, crop, tile int
	}{
		{32, 30, 8},    // CIFAR: native scale, 10 px cells, 8 px tiles
		{28, 24, 6},    // MNIST: 8 px cells, 6 px tiles
		{256, 225, 64}, // the paper: 75 px cells, 64 px tiles, 11 px average gap
		{512, 225, 64},
		{128, 114, 32},
	} {
		c := DefaultTileConfig(tc.size)
		if c.Grid != 3 || c.Crop != tc.crop || c.Tile != tc.tile {
			t.Errorf("DefaultTileConfig(%d): grid %d crop %d tile %d, expected 3, %d, %d", tc.size, c.Grid, c.Crop, c.Tile, tc.crop, tc.tile)
		}
		if cell := c.Crop / c.Grid; cell-c.Tile < 2 {
			t.Errorf("DefaultTileConfig(%d): %d px tiles in %d px cells leave an average gap under 2 px", tc.size, c.Tile, cell)
		}
		if w := float64(c.Crop) / c.CropFrac; tc.size < 96 && math.Abs(w-float64(tc.size)) > 0.5 {
			t.Errorf("DefaultTileConfig(%d): window of %.1f source pixels resized to %d: small images must keep their native scale", tc.size, w, c.Crop)
		}
		if !c.Gap || !c.PerTileNorm || !c.Jitter || c.GrayProb != 0.3 {
			t.Errorf("DefaultTileConfig(%d): shortcut protections not all on: %+v", tc.size, c)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("DefaultTileConfig(%d): %v", tc.size, err)
		}
	}
	if c := DefaultTileConfig(256); c.ChannelShift != 2 {
		t.Errorf("paper geometry: channel shift %d, expected 2", c.ChannelShift)
	}
}

func TestTileConfigValidate(t *testing.T) {
	good := DefaultTileConfig(32)
	for name, f := range map[string]func(*TileConfig){
		"tile larger than cell": func(c *TileConfig) { c.Tile = 29 },
		"zero grid":             func(c *TileConfig) { c.Grid = 0 },
		"crop frac":             func(c *TileConfig) { c.CropFrac = 1.5 },
		"gray prob":             func(c *TileConfig) { c.GrayProb = -0.1 },
		"hue":                   func(c *TileConfig) { c.Hue = 0.7 },
		"shift":                 func(c *TileConfig) { c.ChannelShift = -1 },
	} {
		c := good
		f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
		if _, err := MakeTiles(randImage(rand.New(rand.NewSource(1)), 3, 32, 32), c, rand.New(rand.NewSource(1))); err == nil {
			t.Errorf("%s: MakeTiles accepted %+v", name, c)
		}
	}
}

// TestTileGeometryWithGap checks that every tile is a Tile x Tile copy of
// the resized crop lying inside its own cell, and that the gaps between
// neighbours average cell - Tile (the paper's 11 px for 64 px tiles in 75
// px cells).
func TestTileGeometryWithGap(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	cfg := plainTiles(DefaultTileConfig(256))
	img := randImage(rng, 3, 40, 48) // upsampled to the 225 px crop
	var gapSum float64
	gaps := 0
	for trial := 0; trial < 200; trial++ {
		p, err := CutPuzzle(img, cfg, rng)
		if err != nil {
			t.Fatal(err)
		}
		if side := p.Window[2]; side != int(math.Round(cfg.CropFrac*40)) || p.Window[0]+side > 40 || p.Window[1]+side > 48 {
			t.Fatalf("window %v outside a 40x48 image or of the wrong size", p.Window)
		}
		if p.Crop.H != 225 || p.Crop.W != 225 || len(p.Tiles) != 9 || len(p.Boxes) != 9 {
			t.Fatalf("crop %dx%d, %d tiles, %d boxes", p.Crop.H, p.Crop.W, len(p.Tiles), len(p.Boxes))
		}
		for i, b := range p.Boxes {
			cy, cx := (i/3)*75, (i%3)*75
			if b.H != 64 || b.W != 64 || b.Top < cy || b.Left < cx || b.Top+64 > cy+75 || b.Left+64 > cx+75 {
				t.Fatalf("tile %d box %+v leaves its cell at (%d, %d)", i, b, cy, cx)
			}
			tile := p.Tiles[i]
			if tile.C != 3 || tile.H != 64 || tile.W != 64 || len(tile.Data) != 3*64*64 {
				t.Fatalf("tile %d is %dx%dx%d", i, tile.C, tile.H, tile.W)
			}
			for c := 0; c < 3; c++ {
				for y := 0; y < 64; y += 7 {
					for x := 0; x < 64; x += 5 {
						if got, want := tile.At(c, y, x), p.Crop.At(c, b.Top+y, b.Left+x); got != want {
							t.Fatalf("tile %d (%d,%d,%d) = %v, crop has %v", i, c, y, x, got, want)
						}
					}
				}
			}
		}
		for r := 0; r < 3; r++ {
			for c := 0; c < 2; c++ {
				a, b := p.Boxes[r*3+c], p.Boxes[r*3+c+1]
				gapSum += float64(b.Left - (a.Left + a.W))
				a, b = p.Boxes[c*3+r], p.Boxes[(c+1)*3+r]
				gapSum += float64(b.Top - (a.Top + a.H))
				gaps += 2
			}
		}
	}
	if avg := gapSum / float64(gaps); math.Abs(avg-11) > 0.5 {
		t.Fatalf("average gap %.2f px over %d gaps, expected 11 (75 px cells, 64 px tiles)", avg, gaps)
	}
}

// TestTilesWithoutGap checks that without the gap each tile is its whole
// cell resized to Tile.
func TestTilesWithoutGap(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	cfg := plainTiles(DefaultTileConfig(32))
	cfg.Gap = false
	p, err := CutPuzzle(randImage(rng, 3, 32, 32), cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range p.Boxes {
		if b.Top != (i/3)*10 || b.Left != (i%3)*10 || b.H != 10 || b.W != 10 {
			t.Fatalf("tile %d box %+v, expected the whole cell", i, b)
		}
		want := data.Resize(data.Crop(p.Crop, b.Top, b.Left, 10, 10), 8, 8)
		for j, v := range p.Tiles[i].Data {
			if v != want.Data[j] {
				t.Fatalf("tile %d value %d: %v, resized cell has %v", i, j, v, want.Data[j])
			}
		}
	}
}

func TestPerTileNormalisation(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	cfg := DefaultTileConfig(32)
	cfg.GrayProb = 0
	tiles, err := MakeTiles(randImage(rng, 3, 32, 32), cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	for i, tile := range tiles {
		n := tile.H * tile.W
		for c := 0; c < tile.C; c++ {
			var s, sq float64
			for _, v := range tile.Data[c*n : (c+1)*n] {
				s += float64(v)
				sq += float64(v) * float64(v)
			}
			mean, variance := s/float64(n), sq/float64(n)-(s/float64(n))*(s/float64(n))
			if math.Abs(mean) > 1e-5 || math.Abs(variance-1) > 1e-4 {
				t.Fatalf("tile %d channel %d: mean %.3g variance %.6f, expected 0 and 1", i, c, mean, variance)
			}
		}
	}
	// A constant tile has no variance to scale: it becomes zero.
	flat := data.Tensor{C: 1, H: 4, W: 4, Data: make([]float32, 16)}
	for i := range flat.Data {
		flat.Data[i] = 0.7
	}
	for _, v := range normalizeTile(flat).Data {
		if v != 0 {
			t.Fatalf("constant tile normalised to %v, expected 0", v)
		}
	}
}

func TestTilesDeterministic(t *testing.T) {
	img := randImage(rand.New(rand.NewSource(6)), 3, 32, 32)
	cfg := DefaultTileConfig(32)
	cfg.GrayProb = 0.5
	cut := func(seed int64) []data.Tensor {
		tiles, err := MakeTiles(img, cfg, rand.New(rand.NewSource(seed)))
		if err != nil {
			t.Fatal(err)
		}
		return tiles
	}
	a, b, c := cut(9), cut(9), cut(10)
	differ := false
	for i := range a {
		for j := range a[i].Data {
			if a[i].Data[j] != b[i].Data[j] {
				t.Fatalf("same seed, tile %d value %d differs: %v vs %v", i, j, a[i].Data[j], b[i].Data[j])
			}
			differ = differ || a[i].Data[j] != c[i].Data[j]
		}
	}
	if !differ {
		t.Fatal("seeds 9 and 10 cut identical puzzles")
	}
}

// TestShiftedWindow checks the per-channel spatial jitter: every channel is
// the window translated by its own offset in [-shift, shift]^2, clamped to
// the source.
func TestShiftedWindow(t *testing.T) {
	const H, W, size, shift = 12, 14, 8, 2
	src := data.Tensor{C: 3, H: H, W: W, Data: make([]float32, 3*H*W)}
	for c := 0; c < 3; c++ {
		for y := 0; y < H; y++ {
			for x := 0; x < W; x++ {
				src.Data[(c*H+y)*W+x] = float32(1000*c + 100*y + x)
			}
		}
	}
	rng := rand.New(rand.NewSource(7))
	seen := map[[2]int]bool{}
	for trial := 0; trial < 50; trial++ {
		oy, ox := rng.Intn(H-size+1), rng.Intn(W-size+1)
		out := shiftedWindow(src, oy, ox, size, shift, rng)
		for c := 0; c < 3; c++ {
			// Recover the offset from an interior pixel, then check all.
			v := int(out.At(c, size/2, size/2)) - 1000*c
			dy, dx := v/100-(oy+size/2), v%100-(ox+size/2)
			if dy < -shift || dy > shift || dx < -shift || dx > shift {
				t.Fatalf("channel %d shifted by (%d, %d), beyond %d", c, dy, dx, shift)
			}
			seen[[2]int{dy, dx}] = true
			for y := 0; y < size; y++ {
				for x := 0; x < size; x++ {
					sy, sx := min(max(oy+y+dy, 0), H-1), min(max(ox+x+dx, 0), W-1)
					if got, want := out.At(c, y, x), src.At(c, sy, sx); got != want {
						t.Fatalf("channel %d (%d,%d): %v, expected %v (shift %d,%d)", c, y, x, got, want, dy, dx)
					}
				}
			}
		}
	}
	if len(seen) < 15 {
		t.Fatalf("only %d distinct channel shifts in 150 draws, expected most of the 25", len(seen))
	}
}

func TestGrayscaleAndJitterSwitches(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	img := randImage(rng, 3, 32, 32)
	cfg := plainTiles(DefaultTileConfig(32))
	cfg.GrayProb = 1
	p, err := CutPuzzle(img, cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Gray {
		t.Fatal("GrayProb 1 left the image in colour")
	}
	for i, tile := range p.Tiles {
		n := tile.H * tile.W
		for j := 0; j < n; j++ {
			if tile.Data[j] != tile.Data[n+j] || tile.Data[j] != tile.Data[2*n+j] {
				t.Fatalf("grey tile %d has different channels at %d", i, j)
			}
		}
	}
	// Jitter on, normalisation off: tiles stay in [0, 1] and differ from
	// the plain crop copy somewhere.
	cfg = plainTiles(DefaultTileConfig(32))
	cfg.Jitter = true
	changed := false
	for trial := 0; trial < 5; trial++ {
		p, err := CutPuzzle(img, cfg, rng)
		if err != nil {
			t.Fatal(err)
		}
		for i, tile := range p.Tiles {
			b := p.Boxes[i]
			for c := 0; c < 3; c++ {
				for y := 0; y < tile.H; y++ {
					for x := 0; x < tile.W; x++ {
						v := tile.At(c, y, x)
						if v < 0 || v > 1 {
							t.Fatalf("jittered tile value %v outside [0, 1]", v)
						}
						changed = changed || v != p.Crop.At(c, b.Top+y, b.Left+x)
					}
				}
			}
		}
	}
	if !changed {
		t.Fatal("jitter left every tile equal to its window of the crop")
	}
}
