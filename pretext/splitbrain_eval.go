package pretext

import (
	"fmt"
	"image"
	"math"
	"math/rand"

	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
)

// SplitScore is a split-brain model's pretext figures on a set of images,
// unaugmented. The L -> ab half is scored as colorization is: AuC, the
// paper's raw ab accuracy (ABAccuracy.AuC) of the annealed-mean ab
// upsampled to the image, beside GreyAuC, predicting grey; ABAcc, the
// fraction of grid cells whose most probable ab bin is their nearest. The
// ab -> L half: LAcc, the same for the L bins (the top-1 of the L-bin
// classification), and LError, the mean absolute L* error of the
// annealed-mean lightness upsampled to the image, beside LErrorMean, the
// error of predicting every pixel at the training images' mean lightness.
type SplitScore struct {
	AuC        float64 `json:"ab_auc"`
	GreyAuC    float64 `json:"ab_auc_grey"`
	ABAcc      float64 `json:"ab_acc"`
	LAcc       float64 `json:"l_acc"`
	LError     float64 `json:"l_error"`
	LErrorMean float64 `json:"l_error_mean"`
	Images     int     `json:"images"`
}

// Evaluate scores the task with backbone arch (its split form) and the
// given backbone and head weights on every image of ds: inference mode,
// no augmentation (images resized to cfg.InputSize), batches of batch
// images (the last one padded with rows that are not scored). It is what
// `selfsup eval pretext` reports for splitbrain runs.
func (t SplitBrain) Evaluate(arch string, backbone, heads models.Weights, cfg Config, batch int, ds data.Dataset) (*SplitScore, error) {
	var pred, grey ABAccuracy
	var abHits, lHits, cells int
	var lErr, lErrMean float64
	meanL := float64(cfg.Mean[0]) * data.LabScale
	s := cfg.InputSize
	err := t.infer(arch, backbone, heads, cfg, batch, ds, ds.Len(), func(v splitVisit) error {
		for p := 0; p < s*s; p++ {
			tl, ta, tb := float64(v.truth.Data[p]), float64(v.truth.Data[s*s+p]), float64(v.truth.Data[2*s*s+p])
			pred.Add(math.Hypot(float64(v.pred.Data[s*s+p])-ta, float64(v.pred.Data[2*s*s+p])-tb))
			grey.Add(math.Hypot(ta, tb))
			lErr += math.Abs(float64(v.pred.Data[p]) - tl)
			lErrMean += math.Abs(meanL - tl)
		}
		abHits, lHits, cells = abHits+v.abHits, lHits+v.lHits, cells+v.cells
		return nil
	})
	if err != nil {
		return nil, err
	}
	px, nc := float64(ds.Len()*s*s), float64(max(1, cells))
	return &SplitScore{AuC: pred.AuC(), GreyAuC: grey.AuC(), ABAcc: float64(abHits) / nc, LAcc: float64(lHits) / nc,
		LError: lErr / px, LErrorMean: lErrMean / px, Images: ds.Len()}, nil
}

// Picture draws the first n images of ds (as Evaluate sees them), one row
// each, in the layout of Colorization.Picture: the L half's input (the
// lightness, grey), its colorization (the true L with the predicted ab),
// the ab half's prediction (the predicted L with the true ab) and the
// truth.
func (t SplitBrain) Picture(arch string, backbone, heads models.Weights, cfg Config, batch int, ds data.Dataset, n int) (image.Image, error) {
	n = min(n, ds.Len())
	if n < 1 {
		return nil, fmt.Errorf("pretext: splitbrain picture: no images")
	}
	s := cfg.InputSize
	pic := newGridPicture(n, 4, s)
	row := 0
	err := t.infer(arch, backbone, heads, cfg, batch, ds, n, func(v splitVisit) error {
		for p := 0; p < s*s; p++ {
			y, x := p/s, p%s
			tl, ta, tb := float64(v.truth.Data[p]), float64(v.truth.Data[s*s+p]), float64(v.truth.Data[2*s*s+p])
			for col, lab := range [][3]float64{{tl, 0, 0}, {tl, float64(v.pred.Data[s*s+p]), float64(v.pred.Data[2*s*s+p])}, {float64(v.pred.Data[p]), ta, tb}, {tl, ta, tb}} {
				r, g, b := data.LabToRGB(lab[0], lab[1], lab[2])
				pic.put(row, col, y, x, r, g, b)
			}
		}
		row++
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pic.img, nil
}

// splitVisit is what infer hands over for each image: its Lab planes at
// the input size (CIE units), the halves' annealed-mean predictions
// upsampled to it (L from the ab half, ab from the L half, as [3, S, S])
// and the grid cells whose most probable bin is their nearest, of each
// half.
type splitVisit struct {
	truth, pred          data.Tensor
	abHits, lHits, cells int
}

// infer builds the task in inference mode from the given weights, runs it
// over the first n images of ds in batches (the last one padded by
// repeating the last image) and calls visit for every image in order.
func (t SplitBrain) infer(arch string, backbone, heads models.Weights, cfg Config, batch int, ds data.Dataset, n int, visit func(splitVisit) error) error {
	if n < 1 || n > ds.Len() || batch < 1 {
		return fmt.Errorf("pretext: evaluate splitbrain: %d of %d images in batches of %d", n, ds.Len(), batch)
	}
	if err := checkHeads("splitbrain", "a splitbrain", heads, splitPrefix, "ab.out.weight", "ab.out.bias", "l.out.weight", "l.out.bias"); err != nil {
		return err
	}
	arch, _ = t.Arch(arch)
	cfg.NoAugment = true
	rng := rand.New(rand.NewSource(1))
	mod, vm, err := buildInfer(t, arch, cfg.InputChannels(), backbone, heads, cfg, batch, rng)
	if err != nil {
		return err
	}
	defer vm.Close()
	m := mod.(*splitModel)
	s, side := cfg.InputSize, m.side
	cells := side * side
	logits := map[*splitHead][]float64{m.ab: make([]float64, m.ab.q), m.l: make([]float64, m.l.q)}
	var imgs []data.Image
	return runBatches("splitbrain", "images", m, vm, n, batch, func(lo, _ int) (b *Batch, err error) {
		if imgs, err = batchImages("splitbrain", ds, lo, n, batch, true); err != nil {
			return nil, err
		}
		return m.MakeBatch(imgs, make([]int, batch), make([]int, batch), rng)
	}, func(_ *Batch, _, real int) error {
		for j := 0; j < real; j++ {
			v := splitVisit{cells: cells, truth: data.ToLab(data.Resize(data.ToTensor(imgs[j]), s, s))}
			small := data.Tensor{C: 3, H: side, W: side, Data: make([]float32, 3*cells)}
			for p := 0; p < cells; p++ {
				cell := j*cells + p
				if m.ab.cellLogits(cell, cells, logits[m.ab]) == int(m.ab.target.Idx[cell*m.ab.target.K]) {
					v.abHits++
				}
				if m.l.cellLogits(cell, cells, logits[m.l]) == int(m.l.target.Idx[cell*m.l.target.K]) {
					v.lHits++
				}
				a, bb := m.bins.AnnealedMean(logits[m.ab], m.sc.AB.Temperature)
				small.Data[p] = float32(m.lbins.AnnealedMean(logits[m.l], m.sc.AB.Temperature))
				small.Data[cells+p], small.Data[2*cells+p] = float32(a), float32(bb)
			}
			v.pred = data.Resize(small, s, s)
			if err := visit(v); err != nil {
				return err
			}
		}
		return nil
	})
}

// cellLogits copies the logits of grid cell (image cell/cells, position
// cell%cells) of the last run into out [q] and returns the most probable
// bin.
func (h *splitHead) cellLogits(cell, cells int, out []float64) int {
	x := h.logits.Value().(*tensor.Dense).Float32s()
	base := (cell/cells)*h.q*cells + cell%cells
	best := 0
	for c := range out {
		out[c] = float64(x[base+c*cells])
		if out[c] > out[best] {
			best = c
		}
	}
	return best
}
