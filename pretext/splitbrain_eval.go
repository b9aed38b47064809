package pretext

import (
	"fmt"
	"math"
	"math/rand"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
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
	n := ds.Len()
	if n < 1 || batch < 1 {
		return nil, fmt.Errorf("pretext: evaluate splitbrain: %d images in batches of %d", n, batch)
	}
	for _, name := range []string{"ab.out.weight", "ab.out.bias", "l.out.weight", "l.out.bias"} {
		if _, ok := heads[splitPrefix+name]; !ok {
			return nil, fmt.Errorf("pretext: evaluate splitbrain: head weights lack %s%s (not a splitbrain checkpoint?)", splitPrefix, name)
		}
	}
	arch, _ = t.Arch(arch)
	spec, err := models.New(arch, cfg.InputChannels())
	if err != nil {
		return nil, err
	}
	cfg.NoAugment = true
	g := G.NewGraph()
	bb, err := models.NewBackbone(g, spec, backbone, tensor.Float32, &ops.Mode{Training: false})
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewSource(1))
	mod, err := t.Build(bb, batch, cfg, heads, rng)
	if err != nil {
		return nil, err
	}
	m := mod.(*splitModel)
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	s, side := cfg.InputSize, m.side
	cells := side * side
	meanL := float64(cfg.Mean[0]) * data.LabScale
	var pred, grey ABAccuracy
	var abHits, lHits int
	var lErr, lErrMean float64
	logits := map[*splitHead][]float64{m.ab: make([]float64, m.ab.q), m.l: make([]float64, m.l.q)}
	for lo := 0; lo < n; lo += batch {
		imgs := make([]data.Image, batch)
		real := min(batch, n-lo)
		for j := range imgs {
			if imgs[j], err = ds.Image(min(lo+j, n-1)); err != nil {
				return nil, fmt.Errorf("pretext: evaluate splitbrain: image %d: %w", min(lo+j, n-1), err)
			}
			if imgs[j].C != 3 {
				return nil, fmt.Errorf("pretext: evaluate splitbrain: %s has %d channels, expected 3 (RGB)", ds.Source(min(lo+j, n-1)), imgs[j].C)
			}
		}
		b, err := m.MakeBatch(imgs, make([]int, batch), make([]int, batch), rng)
		if err != nil {
			return nil, err
		}
		if err := m.Load(b); err != nil {
			return nil, err
		}
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			return nil, fmt.Errorf("pretext: evaluate splitbrain: images %d-%d: %w", lo, lo+real-1, err)
		}
		for j := 0; j < real; j++ {
			// The grid's annealed-mean predictions, upsampled.
			small := data.Tensor{C: 3, H: side, W: side, Data: make([]float32, 3*cells)}
			for p := 0; p < cells; p++ {
				cell := j*cells + p
				for _, h := range []*splitHead{m.ab, m.l} {
					best := h.cellLogits(cell, cells, logits[h])
					hit := best == int(h.target.Idx[cell*h.target.K])
					switch {
					case h == m.ab && hit:
						abHits++
					case h == m.l && hit:
						lHits++
					}
				}
				a, bb := m.bins.AnnealedMean(logits[m.ab], m.sc.AB.Temperature)
				small.Data[p] = float32(m.lbins.AnnealedMean(logits[m.l], m.sc.AB.Temperature))
				small.Data[cells+p], small.Data[2*cells+p] = float32(a), float32(bb)
			}
			up := data.Resize(small, s, s)
			truth := data.ToLab(data.Resize(data.ToTensor(imgs[j]), s, s))
			for p := 0; p < s*s; p++ {
				tl, ta, tb := float64(truth.Data[p]), float64(truth.Data[s*s+p]), float64(truth.Data[2*s*s+p])
				pred.Add(math.Hypot(float64(up.Data[s*s+p])-ta, float64(up.Data[2*s*s+p])-tb))
				grey.Add(math.Hypot(ta, tb))
				lErr += math.Abs(float64(up.Data[p]) - tl)
				lErrMean += math.Abs(meanL - tl)
			}
		}
	}
	px, nc := float64(n*s*s), float64(max(1, n*cells))
	return &SplitScore{AuC: pred.AuC(), GreyAuC: grey.AuC(), ABAcc: float64(abHits) / nc, LAcc: float64(lHits) / nc,
		LError: lErr / px, LErrorMean: lErrMean / px, Images: n}, nil
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
