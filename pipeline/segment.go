package pipeline

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval/dense"
	"github.com/selfsup/selfsup/internal/atomicfile"
	"github.com/selfsup/selfsup/internal/draw"
)

// SegmentConfig is `selfsup eval segment`: DenseConfig plus the head's
// search space.
type SegmentConfig struct {
	DenseConfig
	// Grid is the side of the label grid the head trains and is validated
	// on (masks sampled at cell centres); the test is scored at each
	// mask's full resolution. Default 64.
	Grid int
	// L2s and Epochs are searched on the validation split (Epochs as
	// checkpoints of one run per L2).
	L2s    []float64
	Epochs []int
	LR     float64
}

// SegmentResult is what `eval segment` reports; scores are fractions.
type SegmentResult struct {
	MIoU     float64    `json:"miou"`
	PixelAcc float64    `json:"pixel_acc"`
	Jaccard  float64    `json:"jaccard"`
	Dice     float64    `json:"dice"`
	MIoUCI   [2]float64 `json:"miou_ci95"`
	AccCI    [2]float64 `json:"pixel_acc_ci95"`
	JaccCI   [2]float64 `json:"jaccard_ci95"`
	DiceCI   [2]float64 `json:"dice_ci95"`
	Layer    string     `json:"layer"`
	L2       float64    `json:"l2"`
	Epochs   int        `json:"epochs"`
	ValMIoU  float64    `json:"val_miou"`
	Classes  int        `json:"classes"`
	NTrain   int        `json:"n_train"`
	NVal     int        `json:"n_val"`
	NTest    int        `json:"n_test"`
	Size     int        `json:"input_size_px"`
	Seconds  float64    `json:"seconds"`
	Source   string     `json:"model"`
}

func (r *SegmentResult) String() string {
	return fmt.Sprintf("segment (%s, %s, %d px, l2 %g, %d epochs; %d train, %d val, %d test images, %d classes): mIoU %.4f [%.4f, %.4f], pixel acc %.4f [%.4f, %.4f], Jaccard %.4f [%.4f, %.4f], Dice %.4f [%.4f, %.4f]",
		r.Source, r.Layer, r.Size, r.L2, r.Epochs, r.NTrain, r.NVal, r.NTest, r.Classes, r.MIoU, r.MIoUCI[0], r.MIoUCI[1],
		r.PixelAcc, r.AccCI[0], r.AccCI[1], r.Jaccard, r.JaccCI[0], r.JaccCI[1], r.Dice, r.DiceCI[0], r.DiceCI[1])
}

// RunSegment is Segment with the default search space (for the CLI).
func RunSegment(c DenseConfig) (any, error) { return Segment(SegmentConfig{DenseConfig: c}) }

// Segment trains a per-pixel linear head on frozen stage maps of the
// training split's masked images and scores it on the test split's.
func Segment(c SegmentConfig) (*SegmentResult, error) {
	start := time.Now()
	c.defaults()
	if c.Grid == 0 {
		c.Grid = 64
	}
	if len(c.L2s) == 0 {
		c.L2s = []float64{1e-4, 1e-3, 1e-2}
	}
	if len(c.Epochs) == 0 {
		c.Epochs = []int{5, 10, 20, 40}
	}
	if c.LR == 0 {
		c.LR = 0.01
	}
	log := logTo(c.Log)
	train, test, err := openSplits(&c.DenseConfig)
	if err != nil {
		return nil, err
	}
	trIdx, teIdx := train.WithMasks(), test.WithMasks()
	if len(trIdx) < 5 || len(teIdx) == 0 {
		return nil, fmt.Errorf("segment: %s has %d masked training and %d masked test images; want at least 5 and 1", c.Data, len(trIdx), len(teIdx))
	}
	src, err := openDense(&c.DenseConfig)
	if err != nil {
		return nil, err
	}
	defer src.sess.Close()
	trMaps, err := src.maps(&c.DenseConfig, train, c.TrainSplit, trIdx, false)
	if err != nil {
		return nil, err
	}
	teMaps, err := src.maps(&c.DenseConfig, test, c.TestSplit, teIdx, false)
	if err != nil {
		return nil, err
	}
	grid := make([][]int, len(trIdx)) // mask ids on the grid
	for j, i := range trIdx {
		m, err := train.Mask(i)
		if err != nil {
			return nil, err
		}
		grid[j] = dense.DownsampleMask(m.Pix, m.W, m.H, c.Grid)
	}
	fit, val := data.Split(len(trIdx), c.ValFraction, c.Seed)
	res := &SegmentResult{NTrain: len(fit), NVal: len(val), NTest: len(teIdx), Size: src.pre.Size, Source: c.Model, ValMIoU: -1}
	for _, layer := range c.Layers {
		m := cloneMaps(trMaps[layer])
		mean, std := dense.Standardize(m, fit)
		dense.Apply(m, mean, std)
		classes, labels := segLabels(grid, fit)
		valCounts := func(h *dense.SegHead) []dense.SegCounts {
			out := make([]dense.SegCounts, len(val))
			dense.ForEach(len(val), func(k int) { out[k] = dense.CountSeg(grid[val[k]], h.Predict(m.At(val[k]), m.H, m.W, c.Grid, c.Grid)) })
			return out
		}
		for _, l2 := range c.L2s {
			h := dense.NewSegHead(classes, m.C)
			err := dense.TrainSeg(h, m, labels, c.Grid, fit, dense.SegTrainConfig{L2: l2, Epochs: slices.Max(c.Epochs), LR: c.LR, Batch: 8, Seed: c.Seed,
				After: func(e int, h *dense.SegHead) {
					if !slices.Contains(c.Epochs, e) {
						return
					}
					counts := valCounts(h)
					v := dense.ScoreSeg(counts, seq(len(counts))).MIoU
					fmt.Fprintf(log, "  %s l2 %g epoch %d: val mIoU %.4f\n", layer, l2, e, v)
					if v > res.ValMIoU {
						res.ValMIoU, res.Layer, res.L2, res.Epochs = v, layer, l2, e
					}
				}})
			if err != nil {
				return nil, err
			}
		}
	}
	// Refit on the whole training split with the chosen settings.
	m := cloneMaps(trMaps[res.Layer])
	all := seq(len(trIdx))
	mean, std := dense.Standardize(m, all)
	dense.Apply(m, mean, std)
	classes, labels := segLabels(grid, all)
	h := dense.NewSegHead(classes, m.C)
	if err := dense.TrainSeg(h, m, labels, c.Grid, all, dense.SegTrainConfig{L2: res.L2, Epochs: res.Epochs, LR: c.LR, Batch: 8, Seed: c.Seed}); err != nil {
		return nil, err
	}
	tm := cloneMaps(teMaps[res.Layer])
	dense.Apply(tm, mean, std)
	counts := make([]dense.SegCounts, len(teIdx))
	var shown []segShown
	for k, i := range teIdx {
		mk, err := test.Mask(i)
		if err != nil {
			return nil, err
		}
		truth := make([]int, len(mk.Pix))
		for p, v := range mk.Pix {
			truth[p] = int(v)
		}
		pred := h.Predict(tm.At(k), tm.H, tm.W, mk.H, mk.W)
		counts[k] = dense.CountSeg(truth, pred)
		if len(shown) < 4 {
			shown = append(shown, segShown{i, mk, pred})
		}
	}
	res.Classes = len(classes)
	s := dense.ScoreSeg(counts, seq(len(counts)))
	res.MIoU, res.PixelAcc, res.Jaccard, res.Dice = s.MIoU, s.PixelAcc, s.Jaccard, s.Dice
	boot := func(f func(dense.SegMetrics) float64) [2]float64 {
		return dense.Bootstrap(len(counts), c.Bootstrap, c.Seed, func(idx []int) float64 { return f(dense.ScoreSeg(counts, idx)) })
	}
	res.MIoUCI = boot(func(m dense.SegMetrics) float64 { return m.MIoU })
	res.AccCI = boot(func(m dense.SegMetrics) float64 { return m.PixelAcc })
	res.JaccCI = boot(func(m dense.SegMetrics) float64 { return m.Jaccard })
	res.DiceCI = boot(func(m dense.SegMetrics) float64 { return m.Dice })
	if c.Picture != "" {
		if err := segPicture(test, shown, c.Picture); err != nil {
			return nil, err
		}
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func cloneMaps(m *dense.Maps) *dense.Maps {
	c := *m
	c.Data = slices.Clone(m.Data)
	return &c
}

// segLabels are the classes (mask ids other than 0) present in the rows of
// grid, sorted, and every grid as output indices (-1: unlabelled or a class
// absent from rows).
func segLabels(grid [][]int, rows []int) ([]int, [][]int) {
	seen := map[int]bool{}
	for _, i := range rows {
		for _, v := range grid[i] {
			if v != 0 {
				seen[v] = true
			}
		}
	}
	var classes []int
	for k := range seen {
		classes = append(classes, k)
	}
	sort.Ints(classes)
	index := map[int]int{}
	for j, k := range classes {
		index[k] = j
	}
	labels := make([][]int, len(grid))
	for i, g := range grid {
		labels[i] = make([]int, len(g))
		for p, v := range g {
			if j, ok := index[v]; ok && v != 0 {
				labels[i][p] = j
			} else {
				labels[i][p] = -1
			}
		}
	}
	return classes, labels
}

type segShown struct {
	item int
	mask data.Mask
	pred []int
}

// classColour is a fixed colour for mask id k (black for 0).
func classColour(k int) color.RGBA {
	if k == 0 {
		return color.RGBA{0, 0, 0, 255}
	}
	h := uint32(k) * 2654435761
	return color.RGBA{uint8(64 + h>>24%192), uint8(64 + h>>16%192), uint8(64 + h>>8%192), 255}
}

// segPicture draws a row per image: the image, the truth, the prediction,
// each 160 px high.
func segPicture(test *data.Annotated, shown []segShown, path string) error {
	const side = 160
	img := image.NewRGBA(image.Rect(0, 0, 3*side+8, len(shown)*(side+4)+12))
	draw.Fill(img, img.Bounds(), color.RGBA{255, 255, 255, 255})
	_ = draw.Text(img, 2, 2, "IMAGE / TRUTH / PREDICTION", 1, color.RGBA{0, 0, 0, 255})
	for r, s := range shown {
		y := 12 + r*(side+4)
		im, err := test.Decode(s.item, data.DecodeOptions{Size: side, Channels: 3})
		if err != nil {
			return err
		}
		draw.Blit(img, data.ToTensor(im), 0, y, 1)
		for col, lab := range [][]int{nil, s.pred} {
			for yy := 0; yy < side; yy++ {
				sy := min(yy*s.mask.H/side, s.mask.H-1)
				for xx := 0; xx < side; xx++ {
					sx := min(xx*s.mask.W/side, s.mask.W-1)
					k := int(s.mask.Pix[sy*s.mask.W+sx])
					if lab != nil {
						k = lab[sy*s.mask.W+sx]
					}
					img.SetRGBA((col+1)*(side+4)+xx, y+yy, classColour(k))
				}
			}
		}
	}
	return atomicfile.Write(path, func(w io.Writer) error { return png.Encode(w, img) })
}
