package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/pretext"
)

func init() { extraCommands = append(extraCommands, jigsawPictureCommand()) }

// jigsawPictureCommand returns `selfsup jigsaw-picture`: a PNG showing an
// image, its 3x3 Jigsaw tiles with their gaps, and the tiles shuffled by one
// permutation of the set, so a user can see what the network must solve.
func jigsawPictureCommand() *cli.Command {
	return &cli.Command{
		Name:      "jigsaw-picture",
		Usage:     "draw an image, its Jigsaw tiles with gaps, and the tiles shuffled by one permutation (PNG)",
		UsageText: "selfsup jigsaw-picture --data DATA --index I --perm K [--n N] [--method M] [--perm-seed S] [--perms FILE] [--out jigsaw.png]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Required: true, Usage: "images: fashion-mnist, mnist, a folder or a .tar"},
			&cli.StringFlag{Name: "split", Value: "train", Usage: "split to take the image from"},
			&cli.IntFlag{Name: "index", Usage: "`I`: the image's index in the split"},
			&cli.IntFlag{Name: "perm", Usage: "`K`: index of the permutation in the set (0-based, as the network's class)"},
			&cli.IntFlag{Name: "n", Value: 100, Usage: "permutations in the set (as pretrain's jigsaw default)"},
			&cli.StringFlag{Name: "method", Value: pretext.PermMethodMaxAvg, Usage: "permutation-set method: maxavg, maxmin, random"},
			&cli.Int64Flag{Name: "perm-seed", Value: 1, Usage: "permutation-set seed"},
			&cli.StringFlag{Name: "perms", Usage: "read the permutation set from `FILE` (written by selfsup perms) instead"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed for the crop and tile positions"},
			&cli.BoolFlag{Name: "no-gap", Usage: "cut whole cells (no gaps) instead of random tiles inside them"},
			&cli.BoolFlag{Name: "jitter", Usage: "show the colour and per-channel spatial jitter"},
			&cli.StringFlag{Name: "out", Value: "jigsaw.png", Usage: "PNG file to write"},
		},
		Action: func(c *cli.Context) error {
			ds, err := openDataset(c.String("data"), c.String("split"), false, 0, 0)
			if err != nil {
				return err
			}
			i := c.Int("index")
			if i < 0 || i >= ds.Len() {
				return fmt.Errorf("jigsaw-picture: --index %d outside [0, %d) of %s %s", i, ds.Len(), c.String("data"), c.String("split"))
			}
			img, err := ds.Image(i)
			if err != nil {
				return err
			}
			jc := pretext.JigsawConfig{N: c.Int("n"), Method: c.String("method"), PermSeed: c.Int64("perm-seed"), PermFile: c.String("perms")}
			if jc.PermFile != "" && !c.IsSet("n") {
				jc.N = 0
			}
			set, err := jc.PermSet()
			if err != nil {
				return fmt.Errorf("jigsaw-picture: %w", err)
			}
			k := c.Int("perm")
			if k < 0 || k >= len(set.Perms) {
				return fmt.Errorf("jigsaw-picture: --perm %d outside [0, %d) of the permutation set", k, len(set.Perms))
			}
			cfg := pretext.DefaultTileConfig(min(img.H, img.W))
			cfg.PerTileNorm, cfg.GrayProb, cfg.Jitter, cfg.Gap = false, 0, c.Bool("jitter"), !c.Bool("no-gap")
			p, err := pretext.CutPuzzle(data.ToTensor(img), cfg, rand.New(rand.NewSource(c.Int64("seed"))))
			if err != nil {
				return err
			}
			method := set.Method
			if method == "" {
				method = "file"
			}
			pic, _, err := drawJigsawPicture(data.ToTensor(img), p, cfg, set.Perms[k], k, len(set.Perms), method)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := png.Encode(&buf, pic); err != nil {
				return fmt.Errorf("jigsaw-picture: encode: %w", err)
			}
			if err := os.WriteFile(c.String("out"), buf.Bytes(), 0o644); err != nil {
				return fmt.Errorf("jigsaw-picture: %w", err)
			}
			fmt.Fprintf(os.Stderr, "wrote %s: %s image %d, permutation %d of %d (%s): %s\n", c.String("out"), c.String("split"), i, k, len(set.Perms), method, permString(set.Perms[k]))
			return nil
		},
	}
}

// permString writes a permutation 1-based, as the paper's figures do.
func permString(perm []int) string {
	s := make([]string, len(perm))
	for i, v := range perm {
		s[i] = fmt.Sprint(v + 1)
	}
	return strings.Join(s, " ")
}

// pictureLayout records where drawJigsawPicture put things (for tests).
type pictureLayout struct {
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

// drawJigsawPicture draws three panels side by side: the source image with
// the random window outlined, the window's tiles at their places (the gaps
// picWhite), and the tiles in the order perm puts them (position p shows tile
// perm[p], labelled with its 1-based number), with the permutation written
// below. Tiles are drawn with nearest-neighbour upscaling; their values
// must be in [0, 1] (no per-tile normalisation).
func drawJigsawPicture(src data.Tensor, p *pretext.Puzzle, cfg pretext.TileConfig, perm []int, k, n int, method string) (*image.RGBA, pictureLayout, error) {
	const margin, text = 16, 2
	lh := 7*text + 10
	s := max(1, 300/cfg.Crop)
	P := s * cfg.Crop
	f := float64(P) / float64(p.Window[2]) // source pixels -> picture pixels
	ih, iw := int(math.Round(float64(src.H)*f)), int(math.Round(float64(src.W)*f))
	top := margin + lh
	x1, x2, x3 := margin, 2*margin+iw, 3*margin+iw+P
	lay := pictureLayout{Scale: s}
	titles := []struct {
		x    int
		text string
	}{{x1, "image"}, {x2, "tiles with gaps"}, {x3, fmt.Sprintf("shuffled: permutation %d", k)}}
	if !cfg.Gap {
		titles[1].text = "tiles (no gap)"
	}
	caption := fmt.Sprintf("permutation %d of %d (%s): %s", k, n, method, permString(perm))
	W := max(4*margin+iw+2*P, x3+textWidth(titles[2].text, text)+margin, 2*margin+textWidth(caption, text))
	H := 3*margin + lh + max(ih, P) + lh
	pic := image.NewRGBA(image.Rect(0, 0, W, H))
	for i := range pic.Pix {
		pic.Pix[i] = 255
	}
	for _, t := range titles {
		if err := drawText(pic, t.x, margin, t.text, text, picBlack); err != nil {
			return nil, lay, err
		}
	}

	// Panel 1: the image, the window in picRed.
	picBlit(pic, data.Resize(src, ih, iw), x1, top, 1)
	wy, wx := top+int(math.Round(float64(p.Window[0])*f)), x1+int(math.Round(float64(p.Window[1])*f))
	picStroke(pic, image.Rect(wx, wy, wx+P, wy+P), 2, picRed)

	// Panel 2: the tiles where they were cut, gaps left picWhite.
	for i, b := range p.Boxes {
		r := image.Rect(x2+b.Left*s, top+b.Top*s, x2+(b.Left+b.W)*s, top+(b.Top+b.H)*s)
		if !cfg.Gap { // whole cells: show them back at cell size with a thin border
			picBlit(pic, data.Resize(p.Tiles[i], b.H, b.W), r.Min.X, r.Min.Y, s)
			picStroke(pic, r, 1, picWhite)
		} else {
			picBlit(pic, p.Tiles[i], r.Min.X, r.Min.Y, s)
		}
		lay.Tiles = append(lay.Tiles, r)
		if err := tileLabel(pic, r.Min.X, r.Min.Y, i, cfg.Tile*s); err != nil {
			return nil, lay, err
		}
	}
	picStroke(pic, image.Rect(x2-1, top-1, x2+P+1, top+P+1), 1, picGrey)

	// Panel 3: position p holds tile perm[p].
	cell := P / cfg.Grid
	ts := cfg.Tile * s
	for pos, t := range perm {
		cx, cy := x3+(pos%cfg.Grid)*cell+(cell-ts)/2, top+(pos/cfg.Grid)*cell+(cell-ts)/2
		picBlit(pic, p.Tiles[t], cx, cy, s)
		r := image.Rect(cx, cy, cx+ts, cy+ts)
		lay.Slots = append(lay.Slots, r)
		if err := tileLabel(pic, cx, cy, t, ts); err != nil {
			return nil, lay, err
		}
	}
	picStroke(pic, image.Rect(x3-1, top-1, x3+P+1, top+P+1), 1, picGrey)

	if err := drawText(pic, margin, top+max(ih, P)+margin, caption, text, picBlack); err != nil {
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
	picFill(pic, image.Rect(x, y, x+textWidth(label, sc)+2*sc+2, y+7*sc+2*sc+2), picBlack)
	return drawText(pic, x+sc+1, y+sc+1, label, sc, picWhite)
}

// picBlit draws t ([C, H, W], values in [0, 1]; 1 or 3 channels) with its
// top-left corner at (x, y), each pixel an s x s square, clipped to dst.
func picBlit(dst *image.RGBA, t data.Tensor, x, y, s int) {
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

func picFill(dst *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(dst.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			dst.SetRGBA(x, y, c)
		}
	}
}

// picStroke draws the outline of r, w pixels wide, inside r.
func picStroke(dst *image.RGBA, r image.Rectangle, w int, c color.RGBA) {
	picFill(dst, image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+w), c)
	picFill(dst, image.Rect(r.Min.X, r.Max.Y-w, r.Max.X, r.Max.Y), c)
	picFill(dst, image.Rect(r.Min.X, r.Min.Y, r.Min.X+w, r.Max.Y), c)
	picFill(dst, image.Rect(r.Max.X-w, r.Min.Y, r.Max.X, r.Max.Y), c)
}
