package pretext

import (
	"fmt"
	"math"
	"math/rand"

	"github.com/selfsup/selfsup/data"
)

// Tile pipeline of the Jigsaw pretext task.
//
// Noroozi & Favaro 2016, "Unsupervised Learning of Visual Representations by
// Solving Jigsaw Puzzles" (ECCV), Section 3.3: a 225x225 window is cropped at
// random from an image resized to 256 pixels, divided into a 3x3 grid of
// 75x75 cells, and a 64x64 tile is picked at a random position inside each
// cell, so that neighbouring tiles are separated by a random gap (11 px on
// average) and edges do not continue across tiles. Each tile is normalised
// to zero mean and unit variance on its own, so that low-level statistics
// (mean brightness, contrast) do not identify neighbours, and the colour
// channels of colour images are jittered spatially by up to 2 pixels against
// chromatic aberration. The reference implementation
// (bbrattoli/JigsawPuzzlePytorch) also turns 30% of the images grey.

// TileConfig describes how a Jigsaw puzzle is cut from an image. Every
// shortcut protection can be switched off on its own (Noroozi & Favaro
// 2016, Table 5). Sizes are in pixels.
type TileConfig struct {
	// Grid is the number of cells along each side (3: nine tiles).
	Grid int `json:"grid"`
	// Crop is the side of the square window, after resizing, that is split
	// into Grid x Grid cells (paper: 225, cells of 75).
	Crop int `json:"crop"`
	// CropFrac is the side of the random square window taken from the
	// image, as a fraction of its shorter side, before the window is
	// resized to Crop (paper: 225 out of 256, 0.879).
	CropFrac float64 `json:"crop_frac"`
	// Tile is the side of every tile (paper: 64).
	Tile int `json:"tile"`
	// Gap picks each tile at a uniformly random position inside its cell,
	// leaving random gaps between neighbouring tiles (their average is
	// cell - Tile). Without it each tile is its whole cell resized to
	// Tile, and edges continue from one tile to the next.
	Gap bool `json:"gap"`
	// PerTileNorm brings every channel of every tile to zero mean and unit
	// variance on its own (per channel, as bbrattoli/JigsawPuzzlePytorch
	// does; a constant channel becomes zero). Without it tiles keep values
	// in [0, 1] and the task normalises them with the dataset's mean and
	// standard deviation.
	PerTileNorm bool `json:"per_tile_norm"`
	// Jitter applies, independently to every tile, a colour jitter
	// (data.ColorJitter with the strengths below) and, on colour images, a
	// spatial shift of every colour channel by up to ChannelShift pixels
	// in each direction (paper: 0, +-1, +-2 px at 64 px tiles).
	Jitter       bool    `json:"jitter"`
	ChannelShift int     `json:"channel_shift"`
	Brightness   float32 `json:"brightness"`
	Contrast     float32 `json:"contrast"`
	Saturation   float32 `json:"saturation"`
	Hue          float32 `json:"hue"`
	// GrayProb turns a whole 3-channel image grey (every channel its
	// BT.601 luma) with this probability before it is cut (reference
	// implementation: 0.3).
	GrayProb float64 `json:"gray_prob"`
}

// DefaultTileConfig returns the paper's tile geometry scaled to images whose
// shorter side is imageSize pixels, with every shortcut protection on.
//
// Large images: the window is CropFrac = 225/256 of the shorter side, cut
// into cells of round(window/3) pixels, at most 75 (larger images are
// downsampled to the paper's 225 px window); tiles keep the paper's ratio
// 64/75 of a cell (64 px in 75 px cells, average gap 11 px).
//
// Small images (cells under 28 px, images under about 96 px) are cut at
// their native scale, never upsampled: the backbone then learns its
// filters at the scale at which a probe later shows it whole images (an
// earlier version upsampled CIFAR's 28 px window 3x, and its features
// transferred no better than random weights). The window is 15/16 of the
// image (30 px of 32), cells of a third of it (10 px) and tiles of
// min(round(cell*64/75), cell-2) pixels (8 px), so the average gap is at
// least 2 px and at most 4 px between neighbours: the gap the paper keeps
// against edge continuity, at a scale where a pixel is an eighth of a tile.
//
// ChannelShift is 2 px at 64 px tiles, scaled with the tile and at least
// 1. Colour jitter: brightness, contrast and saturation 0.3, hue 0.05;
// GrayProb 0.3.
func DefaultTileConfig(imageSize int) TileConfig {
	frac := 225.0 / 256
	cell := min(int(math.Round(float64(imageSize)*frac/3)), 75)
	tile := int(math.Round(float64(cell) * 64 / 75))
	if cell < 28 {
		cell = max(3, imageSize*15/16/3)
		frac = min(1, float64(3*cell)/float64(imageSize))
		tile = max(1, min(int(math.Round(float64(cell)*64/75)), cell-2))
	}
	return TileConfig{
		Grid: 3, Crop: 3 * cell, CropFrac: frac, Tile: tile,
		Gap: true, PerTileNorm: true, Jitter: true,
		ChannelShift: max(1, int(math.Round(2*float64(tile)/64))),
		Brightness:   0.3, Contrast: 0.3, Saturation: 0.3, Hue: 0.05,
		GrayProb: 0.3,
	}
}

// Validate checks that the geometry is consistent.
func (c TileConfig) Validate() error {
	switch {
	case c.Grid < 1:
		return fmt.Errorf("pretext: tiles: grid must be >= 1, got %d", c.Grid)
	case c.Crop < c.Grid:
		return fmt.Errorf("pretext: tiles: crop %d px is smaller than the %dx%d grid", c.Crop, c.Grid, c.Grid)
	case c.Tile < 1 || c.Tile > c.Crop/c.Grid:
		return fmt.Errorf("pretext: tiles: tile %d px must be in [1, %d] (the smallest cell of a %d px crop in a %dx%d grid)", c.Tile, c.Crop/c.Grid, c.Crop, c.Grid, c.Grid)
	case c.CropFrac <= 0 || c.CropFrac > 1:
		return fmt.Errorf("pretext: tiles: crop fraction must be in (0, 1], got %g", c.CropFrac)
	case c.ChannelShift < 0:
		return fmt.Errorf("pretext: tiles: channel shift must be >= 0, got %d", c.ChannelShift)
	case c.GrayProb < 0 || c.GrayProb > 1:
		return fmt.Errorf("pretext: tiles: grayscale probability must be in [0, 1], got %g", c.GrayProb)
	case c.Brightness < 0 || c.Contrast < 0 || c.Saturation < 0 || c.Hue < 0 || c.Hue > 0.5:
		return fmt.Errorf("pretext: tiles: colour jitter strengths must be >= 0 (hue <= 0.5), got %g %g %g %g", c.Brightness, c.Contrast, c.Saturation, c.Hue)
	}
	return nil
}

// TileBox is the part of the resized crop a tile shows: rows [Top,
// Top+H), columns [Left, Left+W). With Gap it is Tile x Tile; without, the
// whole cell (which is then resized to Tile x Tile).
type TileBox struct {
	Top, Left, H, W int
}

// Puzzle is what CutPuzzle cuts from one image, with the geometry kept for
// pictures and tests.
type Puzzle struct {
	// Crop is the random window resized to [C, Crop, Crop], values in
	// [0, 1], after the random grayscale.
	Crop data.Tensor
	// Window is the window in the source image: top, left, side.
	Window [3]int
	// Gray reports whether the image was turned grey.
	Gray bool
	// Boxes[i] is tile i's window in Crop (before any channel shift).
	Boxes []TileBox
	// Tiles are the Grid*Grid tiles in raster order, each [C, Tile,
	// Tile], after jitter and normalisation.
	Tiles []data.Tensor
}

// cellSpan returns the first pixel and the size of cell i of n along a side
// of length crop (cells differ by at most a pixel when crop % n != 0).
func cellSpan(i, n, crop int) (int, int) {
	lo, hi := i*crop/n, (i+1)*crop/n
	return lo, hi - lo
}

// MakeTiles cuts img ([C, H, W], values in [0, 1]) into cfg.Grid^2 tiles in
// raster order (row-major: 0 1 2 / 3 4 5 / 6 7 8), each [C, Tile, Tile].
// All randomness comes from rng; see CutPuzzle for the steps.
func MakeTiles(img data.Tensor, cfg TileConfig, rng *rand.Rand) ([]data.Tensor, error) {
	p, err := CutPuzzle(img, cfg, rng)
	if err != nil {
		return nil, err
	}
	return p.Tiles, nil
}

// CutPuzzle cuts a Jigsaw puzzle from img ([C, H, W], values in [0, 1]):
//
//  1. with probability GrayProb a 3-channel image is turned grey;
//  2. a random square window of side round(CropFrac * min(H, W)) is taken
//     and resized to Crop x Crop;
//  3. the window is split into Grid x Grid cells; with Gap each tile is the
//     Tile x Tile square at a uniformly random position inside its cell,
//     otherwise the whole cell resized to Tile x Tile;
//  4. with Jitter each colour channel of a colour tile is shifted by a
//     random whole number of pixels in [-ChannelShift, ChannelShift] along
//     each axis (sampling stays inside the cell; edge pixels repeat), then
//     data.ColorJitter is applied to the tile;
//  5. with PerTileNorm each channel of each tile is brought to zero mean
//     and unit variance.
//
// The draws, in order: grayscale, window position, then per tile: position
// in the cell (with Gap), channel shifts (with Jitter on colour images),
// colour jitter (with Jitter).
func CutPuzzle(img data.Tensor, cfg TileConfig, rng *rand.Rand) (*Puzzle, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !img.Valid() {
		return nil, fmt.Errorf("pretext: tiles: invalid image tensor %dx%dx%d with %d values", img.C, img.H, img.W, len(img.Data))
	}
	p := &Puzzle{}
	if img.C == 3 && rng.Float64() < cfg.GrayProb {
		g := data.ToGray(img)
		img = data.Tensor{C: 3, H: img.H, W: img.W, Data: append(append(append(make([]float32, 0, 3*len(g.Data)), g.Data...), g.Data...), g.Data...)}
		p.Gray = true
	}
	side := max(1, int(math.Round(cfg.CropFrac*float64(min(img.H, img.W)))))
	top, left := rng.Intn(img.H-side+1), rng.Intn(img.W-side+1)
	p.Window = [3]int{top, left, side}
	p.Crop = data.Resize(data.Crop(img, top, left, side, side), cfg.Crop, cfg.Crop)
	shift := 0
	if cfg.Jitter && img.C > 1 && !p.Gray {
		shift = cfg.ChannelShift
	}
	n := cfg.Grid
	for i := 0; i < n*n; i++ {
		cy, ch := cellSpan(i/n, n, cfg.Crop)
		cx, cw := cellSpan(i%n, n, cfg.Crop)
		cell := data.Crop(p.Crop, cy, cx, ch, cw)
		var src data.Tensor
		var box TileBox
		if cfg.Gap {
			oy, ox := rng.Intn(ch-cfg.Tile+1), rng.Intn(cw-cfg.Tile+1)
			src, box = cell, TileBox{Top: cy + oy, Left: cx + ox, H: cfg.Tile, W: cfg.Tile}
		} else {
			src, box = data.Resize(cell, cfg.Tile, cfg.Tile), TileBox{Top: cy, Left: cx, H: ch, W: cw}
		}
		tile := shiftedWindow(src, box.Top-cy, box.Left-cx, cfg.Tile, shift, rng)
		if cfg.Jitter {
			tile = data.ColorJitter(tile, rng, cfg.Brightness, cfg.Contrast, cfg.Saturation, cfg.Hue)
		}
		if cfg.PerTileNorm {
			tile = normalizeTile(tile)
		}
		p.Boxes = append(p.Boxes, box)
		p.Tiles = append(p.Tiles, tile)
	}
	return p, nil
}

// shiftedWindow copies the size x size window of src at (oy, ox), each
// channel displaced by its own random (dy, dx) in [-shift, shift]^2 (drawn
// only when shift > 0) with coordinates clamped to src.
func shiftedWindow(src data.Tensor, oy, ox, size, shift int, rng *rand.Rand) data.Tensor {
	out := data.Tensor{C: src.C, H: size, W: size, Data: make([]float32, src.C*size*size)}
	for c := 0; c < src.C; c++ {
		dy, dx := 0, 0
		if shift > 0 {
			dy, dx = rng.Intn(2*shift+1)-shift, rng.Intn(2*shift+1)-shift
		}
		plane := src.Data[c*src.H*src.W : (c+1)*src.H*src.W]
		dst := out.Data[c*size*size : (c+1)*size*size]
		for y := 0; y < size; y++ {
			sy := min(max(oy+y+dy, 0), src.H-1)
			row := plane[sy*src.W : (sy+1)*src.W]
			for x := 0; x < size; x++ {
				dst[y*size+x] = row[min(max(ox+x+dx, 0), src.W-1)]
			}
		}
	}
	return out
}

// normalizeTile returns t with every channel shifted and scaled to zero
// mean and unit (population) variance; a channel whose standard deviation
// is below 1e-6 is only centred.
func normalizeTile(t data.Tensor) data.Tensor {
	out := data.Tensor{C: t.C, H: t.H, W: t.W, Data: make([]float32, len(t.Data))}
	n := t.H * t.W
	for c := 0; c < t.C; c++ {
		src, dst := t.Data[c*n:(c+1)*n], out.Data[c*n:(c+1)*n]
		var s, sq float64
		for _, v := range src {
			s += float64(v)
		}
		mean := s / float64(n)
		for _, v := range src {
			d := float64(v) - mean
			sq += d * d
		}
		std := math.Sqrt(sq / float64(n))
		inv := 1.0
		if std >= 1e-6 {
			inv = 1 / std
		}
		for i, v := range src {
			dst[i] = float32((float64(v) - mean) * inv)
		}
	}
	return out
}
