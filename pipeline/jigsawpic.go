package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"math/rand"
	"os"
	"strings"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/draw"
	"github.com/selfsup/selfsup/pretext"
)

// JigsawPictureConfig is `selfsup jigsaw-picture`: a PNG showing an image,
// its 3x3 Jigsaw tiles with their gaps, and the tiles shuffled by one
// permutation of the set, so a user can see what the network must solve.
type JigsawPictureConfig struct {
	Data, Split string
	Index       int // the image's index in the split
	Perm        int // index of the permutation in the set (0-based, as the network's class)
	// N, Method and PermSeed make the permutation set, unless PermFile
	// names one written by selfsup perms (N 0: as many as the file has).
	N        int
	Method   string
	PermSeed int64
	PermFile string
	Seed     int64 // seed for the crop and tile positions
	NoGap    bool  // cut whole cells (no gaps) instead of random tiles inside them
	Jitter   bool  // show the colour and per-channel spatial jitter
	Out      string
	Log      io.Writer
}

// JigsawPicture draws the picture and writes it to c.Out.
func JigsawPicture(ctx context.Context, c JigsawPictureConfig) error {
	ds, err := data.Open(c.Data, c.Split, data.OpenOptions{Log: c.Log})
	if err != nil {
		return err
	}
	i := c.Index
	if i < 0 || i >= ds.Len() {
		return fmt.Errorf("jigsaw-picture: --index %d outside [0, %d) of %s %s", i, ds.Len(), c.Data, c.Split)
	}
	img, err := ds.Image(i)
	if err != nil {
		return err
	}
	jc := pretext.JigsawConfig{N: c.N, Method: c.Method, PermSeed: c.PermSeed, PermFile: c.PermFile}
	set, err := jc.PermSet()
	if err != nil {
		return fmt.Errorf("jigsaw-picture: %w", err)
	}
	k := c.Perm
	if k < 0 || k >= len(set.Perms) {
		return fmt.Errorf("jigsaw-picture: --perm %d outside [0, %d) of the permutation set", k, len(set.Perms))
	}
	cfg := pretext.DefaultTileConfig(min(img.H, img.W))
	cfg.PerTileNorm, cfg.GrayProb, cfg.Jitter, cfg.Gap = false, 0, c.Jitter, !c.NoGap
	p, err := pretext.CutPuzzle(data.ToTensor(img), cfg, rand.New(rand.NewSource(c.Seed)))
	if err != nil {
		return err
	}
	method := set.Method
	if method == "" {
		method = "file"
	}
	pic, _, err := DrawJigsawPicture(data.ToTensor(img), p, cfg, set.Perms[k], k, len(set.Perms), method)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, pic); err != nil {
		return fmt.Errorf("jigsaw-picture: encode: %w", err)
	}
	if err := os.WriteFile(c.Out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("jigsaw-picture: %w", err)
	}
	fmt.Fprintf(logTo(c.Log), "wrote %s: %s image %d, permutation %d of %d (%s): %s\n", c.Out, c.Split, i, k, len(set.Perms), method, permString(set.Perms[k]))
	return nil
}

// permString writes a permutation 1-based, as the paper's figures do.
func permString(perm []int) string {
	s := make([]string, len(perm))
	for i, v := range perm {
		s[i] = fmt.Sprint(v + 1)
	}
	return strings.Join(s, " ")
}

// PictureLayout records where DrawJigsawPicture put things (for tests).
type PictureLayout struct {
	Scale int               // picture pixels per crop pixel
	Tiles []image.Rectangle // tile i in the "tiles with gaps" panel
	Slots []image.Rectangle // the tile at shuffled position p
}

var (
	picWhite = color.RGBA{255, 255, 255, 255}
	picBlack = color.RGBA{0, 0, 0, 255}
	picRed   = color.RGBA{220, 30, 30, 255}
	picGrey  = color.RGBA{200, 200, 200, 255}
)

// DrawJigsawPicture draws three panels side by side: the source image with
// the random window outlined, the window's tiles at their places (the gaps
// picWhite), and the tiles in the order perm puts them (position p shows tile
// perm[p], labelled with its 1-based number), with the permutation written
// below. Tiles are drawn with nearest-neighbour upscaling; their values
// must be in [0, 1] (no per-tile normalisation).
func DrawJigsawPicture(src data.Tensor, p *pretext.Puzzle, cfg pretext.TileConfig, perm []int, k, n int, method string) (*image.RGBA, PictureLayout, error) {
	const margin, text = 16, 2
	lh := 7*text + 10
	s := max(1, 300/cfg.Crop)
	P := s * cfg.Crop
	f := float64(P) / float64(p.Window[2]) // source pixels -> picture pixels
	ih, iw := int(math.Round(float64(src.H)*f)), int(math.Round(float64(src.W)*f))
	top := margin + lh
	x1, x2, x3 := margin, 2*margin+iw, 3*margin+iw+P
	lay := PictureLayout{Scale: s}
	titles := []struct {
		x    int
		text string
	}{{x1, "image"}, {x2, "tiles with gaps"}, {x3, fmt.Sprintf("shuffled: permutation %d", k)}}
	if !cfg.Gap {
		titles[1].text = "tiles (no gap)"
	}
	caption := fmt.Sprintf("permutation %d of %d (%s): %s", k, n, method, permString(perm))
	W := max(4*margin+iw+2*P, x3+draw.TextWidth(titles[2].text, text)+margin, 2*margin+draw.TextWidth(caption, text))
	H := 3*margin + lh + max(ih, P) + lh
	pic := image.NewRGBA(image.Rect(0, 0, W, H))
	for i := range pic.Pix {
		pic.Pix[i] = 255
	}
	for _, t := range titles {
		if err := draw.Text(pic, t.x, margin, t.text, text, picBlack); err != nil {
			return nil, lay, err
		}
	}

	// Panel 1: the image, the window in picRed.
	draw.Blit(pic, data.Resize(src, ih, iw), x1, top, 1)
	wy, wx := top+int(math.Round(float64(p.Window[0])*f)), x1+int(math.Round(float64(p.Window[1])*f))
	draw.Stroke(pic, image.Rect(wx, wy, wx+P, wy+P), 2, picRed)

	// Panel 2: the tiles where they were cut, gaps left picWhite.
	for i, b := range p.Boxes {
		r := image.Rect(x2+b.Left*s, top+b.Top*s, x2+(b.Left+b.W)*s, top+(b.Top+b.H)*s)
		if !cfg.Gap { // whole cells: show them back at cell size with a thin border
			draw.Blit(pic, data.Resize(p.Tiles[i], b.H, b.W), r.Min.X, r.Min.Y, s)
			draw.Stroke(pic, r, 1, picWhite)
		} else {
			draw.Blit(pic, p.Tiles[i], r.Min.X, r.Min.Y, s)
		}
		lay.Tiles = append(lay.Tiles, r)
		if err := tileLabel(pic, r.Min.X, r.Min.Y, i, cfg.Tile*s); err != nil {
			return nil, lay, err
		}
	}
	draw.Stroke(pic, image.Rect(x2-1, top-1, x2+P+1, top+P+1), 1, picGrey)

	// Panel 3: position p holds tile perm[p].
	cell := P / cfg.Grid
	ts := cfg.Tile * s
	for pos, t := range perm {
		cx, cy := x3+(pos%cfg.Grid)*cell+(cell-ts)/2, top+(pos/cfg.Grid)*cell+(cell-ts)/2
		draw.Blit(pic, p.Tiles[t], cx, cy, s)
		r := image.Rect(cx, cy, cx+ts, cy+ts)
		lay.Slots = append(lay.Slots, r)
		if err := tileLabel(pic, cx, cy, t, ts); err != nil {
			return nil, lay, err
		}
	}
	draw.Stroke(pic, image.Rect(x3-1, top-1, x3+P+1, top+P+1), 1, picGrey)

	if err := draw.Text(pic, margin, top+max(ih, P)+margin, caption, text, picBlack); err != nil {
		return nil, lay, err
	}
	return pic, lay, nil
}

// tileLabel writes tile i's 1-based number in picWhite on picBlack at (x, y),
// at twice the font size on tiles drawn at least 60 px wide.
func tileLabel(pic *image.RGBA, x, y, i, size int) error {
	sc := 1
	if size >= 60 {
		sc = 2
	}
	label := fmt.Sprint(i + 1)
	draw.Fill(pic, image.Rect(x, y, x+draw.TextWidth(label, sc)+2*sc+2, y+7*sc+2*sc+2), picBlack)
	return draw.Text(pic, x+sc+1, y+sc+1, label, sc, picWhite)
}
