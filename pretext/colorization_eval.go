package pretext

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"math/rand"

	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
)

// ABMaxError is the largest ab error threshold of the paper's raw
// accuracy (section 3.1: thresholds from 0 to 150).
const ABMaxError = 150

// ABAccuracy accumulates per-pixel ab errors for the paper's raw
// accuracy: the area under the curve of the fraction of pixels whose
// Euclidean ab error is within a threshold t, for t from 0 to
// ABMaxError, normalised to [0, 1].
type ABAccuracy struct {
	// Count[t] is the number of errors in (t-1, t] (Count[0]: exactly 0);
	// Over counts errors above ABMaxError.
	Count [ABMaxError + 1]int
	Over  int
}

// Add records one pixel's error.
func (a *ABAccuracy) Add(err float64) {
	if !(err <= ABMaxError) {
		a.Over++
		return
	}
	a.Count[int(math.Ceil(err))]++
}

// Pixels is the number of errors recorded.
func (a *ABAccuracy) Pixels() int {
	n := a.Over
	for _, c := range a.Count {
		n += c
	}
	return n
}

// Within is the fraction of pixels with error <= t (t an integer in [0,
// ABMaxError]).
func (a *ABAccuracy) Within(t int) float64 {
	n := 0
	for _, c := range a.Count[:t+1] {
		n += c
	}
	return float64(n) / float64(max(1, a.Pixels()))
}

// AuC is the area under Within over [0, ABMaxError] (trapezoid rule on
// the integer thresholds) divided by ABMaxError: 1 when every error is 0.
func (a *ABAccuracy) AuC() float64 {
	var s float64
	for t := 0; t < ABMaxError; t++ {
		s += (a.Within(t) + a.Within(t+1)) / 2
	}
	return s / ABMaxError
}

// ColorScore is a colorization model's raw ab accuracy on a set of
// images (ABAccuracy.AuC of the annealed-mean prediction upsampled to the
// image) beside the grey prediction's (a = b = 0), and the fraction of
// grid cells whose most probable bin is their nearest (pretext_acc).
type ColorScore struct {
	AuC     float64 `json:"ab_auc"`
	GreyAuC float64 `json:"ab_auc_grey"`
	Acc     float64 `json:"pretext_acc"`
	Images  int     `json:"images"`
}

// Evaluate scores the task with backbone arch and the given backbone and
// head weights on every image of ds: inference mode, no augmentation
// (images resized to cfg.InputSize), batches of batch images (the last
// one padded with rows that are not scored). It is what `selfsup eval
// pretext` reports for colorization runs.
func (t Colorization) Evaluate(arch string, backbone, heads models.Weights, cfg Config, batch int, ds data.Dataset) (*ColorScore, error) {
	var pred, grey ABAccuracy
	hits, cells := 0, 0
	err := t.infer(arch, backbone, heads, cfg, batch, ds, ds.Len(), func(m *colorModel, views []data.Tensor, ab [][]float32, real int) error {
		s := m.cfg.InputSize
		for j := 0; j < real; j++ {
			lab := data.ToLab(views[j])
			for p := 0; p < s*s; p++ {
				ta, tb := float64(lab.Data[s*s+p]), float64(lab.Data[2*s*s+p])
				pa, pb := float64(ab[j][p]), float64(ab[j][s*s+p])
				pred.Add(math.Hypot(pa-ta, pb-tb))
				grey.Add(math.Hypot(ta, tb))
			}
			g := m.side * m.side
			for p := j * g; p < (j+1)*g; p++ {
				if m.argmax(p) == int(m.target.Idx[p*m.target.K]) {
					hits++
				}
			}
			cells += g
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ColorScore{AuC: pred.AuC(), GreyAuC: grey.AuC(), Acc: float64(hits) / float64(max(1, cells)), Images: ds.Len()}, nil
}

// argmax is the most probable bin of grid cell p (of the last run).
func (m *colorModel) argmax(p int) int {
	x := m.logits.Value().(*tensor.Dense).Float32s()
	g := m.side * m.side
	q := m.bins.Len()
	base := (p/g)*q*g + p%g
	best := 0
	for c := 1; c < q; c++ {
		if x[base+c*g] > x[base+best*g] {
			best = c
		}
	}
	return best
}

// predictAB is the annealed-mean ab of row j of the last run, upsampled
// (bilinear) from the grid to the input size: [2, S, S].
func (m *colorModel) predictAB(j int) []float32 {
	x := m.logits.Value().(*tensor.Dense).Float32s()
	g, q, s := m.side*m.side, m.bins.Len(), m.cfg.InputSize
	small := data.Tensor{C: 2, H: m.side, W: m.side, Data: make([]float32, 2*g)}
	logits := make([]float64, q)
	for p := 0; p < g; p++ {
		for c := range logits {
			logits[c] = float64(x[(j*q+c)*g+p])
		}
		a, b := m.bins.AnnealedMean(logits, m.cc.Temperature)
		small.Data[p], small.Data[g+p] = float32(a), float32(b)
	}
	return data.Resize(small, s, s).Data
}

// Picture colorizes the first n images of ds (as Evaluate sees them) and
// returns a grid with one row per image: the grey input (its lightness,
// a = b = 0), the prediction (its lightness with the annealed-mean ab)
// and the truth, 2 px apart on a white background, every pixel drawn as
// a block of max(1, 96/InputSize) pixels (3 for CIFAR).
func (t Colorization) Picture(arch string, backbone, heads models.Weights, cfg Config, batch int, ds data.Dataset, n int) (image.Image, error) {
	n = min(n, ds.Len())
	if n < 1 {
		return nil, fmt.Errorf("pretext: colorization picture: no images")
	}
	s := cfg.InputSize
	pic := newGridPicture(n, 3, s)
	put := pic.put
	lo := 0
	err := t.infer(arch, backbone, heads, cfg, batch, ds, n, func(m *colorModel, views []data.Tensor, ab [][]float32, real int) error {
		for j := 0; j < real; j++ {
			lab, v := data.ToLab(views[j]), views[j]
			for p := 0; p < s*s; p++ {
				y, x, l := p/s, p%s, float64(lab.Data[p])
				r, g, b := data.LabToRGB(l, 0, 0)
				put(lo+j, 0, y, x, r, g, b)
				r, g, b = data.LabToRGB(l, float64(ab[j][p]), float64(ab[j][s*s+p]))
				put(lo+j, 1, y, x, r, g, b)
				put(lo+j, 2, y, x, float64(v.Data[p]), float64(v.Data[s*s+p]), float64(v.Data[2*s*s+p]))
			}
		}
		lo += real
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pic.img, nil
}

// gridPicture is a grid of images of side s, rows by cols, 2 px apart on
// a white background, every pixel drawn as a block of max(1, 96/s)
// pixels (3 for CIFAR).
type gridPicture struct {
	img     *image.RGBA
	z, cell int
}

const gridGap = 2

func newGridPicture(rows, cols, s int) *gridPicture {
	z := max(1, 96/s)
	cell := z*s + gridGap
	img := image.NewRGBA(image.Rect(0, 0, cols*cell+gridGap, rows*cell+gridGap))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	return &gridPicture{img: img, z: z, cell: cell}
}

// put draws pixel (y, x) of the image at (row, col) in the colour (r, g,
// b), components in [0, 1].
func (p *gridPicture) put(row, col, y, x int, r, g, b float64) {
	c := color.RGBA{uint8(math.Round(255 * r)), uint8(math.Round(255 * g)), uint8(math.Round(255 * b)), 255}
	z, o := p.z, gridGap
	px := image.Rect(o+col*p.cell+z*x, o+row*p.cell+z*y, o+col*p.cell+z*(x+1), o+row*p.cell+z*(y+1))
	draw.Draw(p.img, px, &image.Uniform{c}, image.Point{}, draw.Src)
}

// infer builds the task in inference mode from the given weights and runs
// it over the first n images of ds in batches (the last one padded by
// repeating the last image), calling visit after every batch with the
// images resized to the input size (RGB, [0, 1]), their predicted ab
// ([2, S, S] each, annealed mean upsampled) and the number of real rows.
func (t Colorization) infer(arch string, backbone, heads models.Weights, cfg Config, batch int, ds data.Dataset, n int,
	visit func(m *colorModel, views []data.Tensor, ab [][]float32, real int) error) error {
	if n < 1 || n > ds.Len() || batch < 1 {
		return fmt.Errorf("pretext: evaluate colorization: %d of %d images in batches of %d", n, ds.Len(), batch)
	}
	if err := checkHeads("colorization", "a colorization", heads, colorPrefix, "out.weight", "out.bias"); err != nil {
		return err
	}
	cfg.NoAugment = true
	rng := rand.New(rand.NewSource(1))
	mod, vm, err := buildInfer(t, arch, cfg.InputChannels(), backbone, heads, cfg, batch, rng)
	if err != nil {
		return err
	}
	defer vm.Close()
	m := mod.(*colorModel)
	s := cfg.InputSize
	var views []data.Tensor
	return runBatches("colorization", "images", m, vm, n, batch, func(lo, _ int) (*Batch, error) {
		imgs, err := batchImages("colorization", ds, lo, n, batch, true)
		if err != nil {
			return nil, err
		}
		views = make([]data.Tensor, batch)
		for j := range imgs {
			views[j] = data.Resize(data.ToTensor(imgs[j]), s, s)
		}
		return m.MakeBatch(imgs, make([]int, batch), make([]int, batch), rng)
	}, func(_ *Batch, _, real int) error {
		ab := make([][]float32, real)
		for j := range ab {
			ab[j] = m.predictAB(j)
		}
		return visit(m, views[:real], ab, real)
	})
}
