package pipeline

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"slices"
	"time"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval/dense"
	"github.com/selfsup/selfsup/eval/detect"
	"github.com/selfsup/selfsup/internal/atomicfile"
	"github.com/selfsup/selfsup/internal/draw"
)

// DetectConfig is `selfsup eval detect`: DenseConfig plus the head search.
type DetectConfig struct {
	DenseConfig
	// Hidden are the head variants searched: 0 is the linear 1x1 head, m >
	// 0 a 3x3 convolution to m channels with ReLU before it. Default {0, 32}.
	Hidden []int
	L2s    []float64
	Epochs []int
	LR     float64
}

// DetectResult is what `eval detect` reports: the COCO metrics (same keys
// as `eval ap`) and VOC07 AP50 on the test split, fractions, with
// bootstrap 95% intervals, and class-agnostic and person AP.
type DetectResult struct {
	detect.COCOMetrics
	VOC07AP50  float64               `json:"voc07_ap50"`
	AgnosticAP float64               `json:"agnostic_ap"`
	PersonAP   float64               `json:"person_ap"`
	CI95       map[string][2]float64 `json:"ci95"`
	Layer      string                `json:"layer"`
	Hidden     int                   `json:"hidden"`
	L2         float64               `json:"l2"`
	Epochs     int                   `json:"epochs"`
	ValAP50    float64               `json:"val_ap50"`
	NTrain     int                   `json:"n_train"`
	NVal       int                   `json:"n_val"`
	NTest      int                   `json:"n_test"`
	Size       int                   `json:"input_size_px"`
	StridePx   float64               `json:"feature_stride_px"`
	Seconds    float64               `json:"seconds"`
	Source     string                `json:"model"`
}

func (r *DetectResult) String() string {
	ci := func(k string) string { return fmt.Sprintf("[%.4f, %.4f]", r.CI95[k][0], r.CI95[k][1]) }
	return fmt.Sprintf("detect (%s, %s, %d px, head %d, l2 %g, %d epochs; %d train, %d val, %d test): AP %.4f %s, AP50 %.4f %s, AP75 %.4f %s, VOC07 AP50 %.4f %s, class-agnostic AP %.4f %s, person AP %.4f %s",
		r.Source, r.Layer, r.Size, r.Hidden, r.L2, r.Epochs, r.NTrain, r.NVal, r.NTest, r.AP, ci("ap"), r.AP50, ci("ap50"), r.AP75, ci("ap75"),
		r.VOC07AP50, ci("voc07_ap50"), r.AgnosticAP, ci("agnostic_ap"), r.PersonAP, ci("person_ap"))
}

// RunDetect is Detect with the default search space (for the CLI).
func RunDetect(c DenseConfig) (any, error) { return Detect(DetectConfig{DenseConfig: c}) }

// detScores scores peaks against truth over images idx (repeats become
// new images): COCO metrics, VOC07 AP50, class-agnostic AP, person AP.
func detScores(truth [][]data.Box, peaks [][]dense.Peak, idx []int, k, person int) (map[string]float64, *detect.COCOMetrics, error) {
	build := func(agnostic bool, only int) (*detect.COCOGroundTruth, []detect.Detection) {
		gt := &detect.COCOGroundTruth{}
		var dts []detect.Detection
		cat := func(c int) int64 {
			if agnostic {
				return 1
			}
			return int64(c + 1)
		}
		for c := 0; c < k; c++ {
			if (!agnostic || c == 0) && (only < 0 || c == only) {
				gt.Categories = append(gt.Categories, detect.Category{ID: cat(c)})
			}
		}
		id := int64(0)
		for n, i := range idx {
			img := int64(n + 1)
			gt.Images = append(gt.Images, detect.Image{ID: img})
			for _, b := range truth[i] {
				if only >= 0 && b.Class != only {
					continue
				}
				id++
				gt.Annotations = append(gt.Annotations, detect.Annotation{ID: id, ImageID: img, CategoryID: cat(b.Class),
					BBox: detect.Box{b.X0, b.Y0, b.W(), b.H()}, Area: b.W() * b.H(), IsCrowd: b.Difficult})
			}
			for _, p := range peaks[i] {
				if only >= 0 && p.Class != only {
					continue
				}
				dts = append(dts, detect.Detection{ImageID: img, CategoryID: cat(p.Class), BBox: detect.Box{p.Box.X0, p.Box.Y0, p.Box.W(), p.Box.H()}, Score: p.Score})
			}
		}
		return gt, dts
	}
	gt, dts := build(false, -1)
	m, err := detect.COCOEval(gt, dts)
	if err != nil {
		return nil, nil, err
	}
	voc, err := detect.VOC07AP50(gt, dts)
	if err != nil {
		return nil, nil, err
	}
	out := map[string]float64{"ap": m.AP, "ap50": m.AP50, "ap75": m.AP75, "voc07_ap50": voc}
	gt, dts = build(true, -1)
	a, err := detect.COCOEval(gt, dts)
	if err != nil {
		return nil, nil, err
	}
	out["agnostic_ap"] = a.AP
	out["person_ap"] = -1
	if person >= 0 {
		gt, dts = build(false, person)
		p, err := detect.COCOEval(gt, dts)
		if err != nil {
			return nil, nil, err
		}
		out["person_ap"] = p.AP
	}
	return out, m, nil
}

// Detect trains CenterNet-style heads on frozen stage maps of the training
// split (each image also horizontally flipped) and scores the one picked
// on the validation split on the test split.
func Detect(c DetectConfig) (*DetectResult, error) {
	start := time.Now()
	c.defaults()
	if c.Bootstrap == 1000 {
		c.Bootstrap = 200 // each resample runs the COCO evaluation three times
	}
	if len(c.Hidden) == 0 {
		c.Hidden = []int{0, 32}
	}
	if len(c.L2s) == 0 {
		c.L2s = []float64{1e-4}
	}
	if len(c.Epochs) == 0 {
		c.Epochs = []int{10, 20, 40}
	}
	if c.LR == 0 {
		c.LR = 2e-3
	}
	log := logTo(c.Log)
	train, test, err := openSplits(&c.DenseConfig)
	if err != nil {
		return nil, err
	}
	trIdx, teIdx := train.WithBoxes(), test.WithBoxes()
	if len(trIdx) < 5 || len(teIdx) == 0 {
		return nil, fmt.Errorf("detect: %s has %d labelled training and %d labelled test images; want at least 5 and 1", c.Data, len(trIdx), len(teIdx))
	}
	k := len(train.BoxClasses)
	person := slices.Index(train.BoxClasses, "person")
	src, err := openDense(&c.DenseConfig)
	if err != nil {
		return nil, err
	}
	defer src.sess.Close()
	maps := map[bool]map[string]*dense.Maps{}
	for _, flip := range []bool{false, true} {
		if maps[flip], err = src.maps(&c.DenseConfig, train, c.TrainSplit, trIdx, flip); err != nil {
			return nil, err
		}
	}
	teMaps, err := src.maps(&c.DenseConfig, test, c.TestSplit, teIdx, false)
	if err != nil {
		return nil, err
	}
	truthOf := func(a *data.Annotated, idx []int, flip bool) [][]data.Box {
		out := make([][]data.Box, len(idx))
		for j, i := range idx {
			it := a.Items[i]
			for _, b := range it.Boxes {
				if flip {
					b.X0, b.X1 = float64(it.W)-b.X1, float64(it.W)-b.X0
				}
				out[j] = append(out[j], b)
			}
		}
		return out
	}
	n := len(trIdx)
	trTruth := append(truthOf(train, trIdx, false), truthOf(train, trIdx, true)...)
	fit, val := data.Split(n, c.ValFraction, c.Seed)
	fitRows := append(slices.Clone(fit), offset(fit, n)...)
	res := &DetectResult{NTrain: len(fit), NVal: len(val), NTest: len(teIdx), Size: src.pre.Size, Source: c.Model, ValAP50: -1}
	stack := func(layer string, rows []int) (m *dense.Maps, targets []dense.DetTarget, mean, std []float32) {
		a, b := maps[false][layer], maps[true][layer]
		m = &dense.Maps{N: 2 * n, C: a.C, H: a.H, W: a.W, Data: append(slices.Clone(a.Data), b.Data...)}
		mean, std = dense.Standardize(m, rows)
		dense.Apply(m, mean, std)
		targets = make([]dense.DetTarget, 2*n)
		for j := range targets {
			it := train.Items[trIdx[j%n]]
			targets[j] = dense.MakeTarget(trTruth[j], it.W, it.H, k, m.H, m.W)
		}
		return m, targets, mean, std
	}
	decode := func(d *dense.DetHead, m *dense.Maps, a *data.Annotated, idx []int, rows []int) [][]dense.Peak {
		out := make([][]dense.Peak, len(rows))
		dense.ForEach(len(rows), func(j int) {
			it := a.Items[idx[rows[j]%len(idx)]]
			out[j] = d.Decode(m.At(rows[j]), m.H, m.W, it.W, it.H, 100)
		})
		return out
	}
	for _, layer := range c.Layers {
		m, targets, _, _ := stack(layer, fitRows)
		valTruth := make([][]data.Box, len(val))
		for j, i := range val {
			valTruth[j] = trTruth[i]
		}
		for _, hidden := range c.Hidden {
			for _, l2 := range c.L2s {
				d := dense.NewDetHead(k, m.C, hidden, c.Seed)
				d.InitFromTargets(targets, fitRows)
				err := dense.TrainDet(d, m, targets, fitRows, dense.DetTrainConfig{L2: l2, LR: c.LR, Epochs: slices.Max(c.Epochs), Batch: 8, Seed: c.Seed,
					After: func(e int, d *dense.DetHead) error {
						if !slices.Contains(c.Epochs, e) {
							return nil
						}
						s, _, err := detScores(valTruth, decode(d, m, train, trIdx, val), seq(len(val)), k, person)
						if err != nil {
							return err
						}
						fmt.Fprintf(log, "  %s head %d l2 %g epoch %d: val AP50 %.4f, AP %.4f\n", layer, hidden, l2, e, s["ap50"], s["ap"])
						if s["ap50"] > res.ValAP50 {
							res.ValAP50, res.Layer, res.Hidden, res.L2, res.Epochs = s["ap50"], layer, hidden, l2, e
						}
						return nil
					}})
				if err != nil {
					return nil, err
				}
			}
		}
	}
	// Refit on all of train (and its flips) with the chosen settings.
	all := seq(2 * n)
	m, targets, mean, std := stack(res.Layer, all)
	d := dense.NewDetHead(k, m.C, res.Hidden, c.Seed)
	d.InitFromTargets(targets, all)
	if err := dense.TrainDet(d, m, targets, all, dense.DetTrainConfig{L2: res.L2, LR: c.LR, Epochs: res.Epochs, Batch: 8, Seed: c.Seed}); err != nil {
		return nil, err
	}
	tm := cloneMaps(teMaps[res.Layer])
	dense.Apply(tm, mean, std)
	res.StridePx = float64(src.pre.Size) / float64(tm.W)
	teTruth := truthOf(test, teIdx, false)
	peaks := decode(d, tm, test, teIdx, seq(len(teIdx)))
	s, coco, err := detScores(teTruth, peaks, seq(len(teIdx)), k, person)
	if err != nil {
		return nil, err
	}
	res.COCOMetrics, res.VOC07AP50, res.AgnosticAP, res.PersonAP = *coco, s["voc07_ap50"], s["agnostic_ap"], s["person_ap"]
	res.CI95 = map[string][2]float64{}
	boot := map[string][]float64{}
	var bootErr error
	dense.Bootstrap(len(teIdx), c.Bootstrap, c.Seed, func(idx []int) float64 {
		s, _, err := detScores(teTruth, peaks, idx, k, person)
		if err != nil {
			bootErr = err
			return 0
		}
		for key, v := range s {
			boot[key] = append(boot[key], v)
		}
		return 0
	})
	if bootErr != nil {
		return nil, bootErr
	}
	for key, v := range boot {
		slices.Sort(v)
		res.CI95[key] = [2]float64{v[int(0.025*float64(len(v)-1)+0.5)], v[int(0.975*float64(len(v)-1)+0.5)]}
	}
	if c.Picture != "" {
		if err := detPicture(test, teIdx, teTruth, peaks, c.Picture); err != nil {
			return nil, err
		}
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func offset(rows []int, by int) []int {
	out := make([]int, len(rows))
	for i, r := range rows {
		out[i] = r + by
	}
	return out
}

// detPicture draws four test images with true boxes (green) and the
// detections scoring over 0.3 (red), each 240 px.
func detPicture(test *data.Annotated, idx []int, truth [][]data.Box, peaks [][]dense.Peak, path string) error {
	const side = 240
	shown := min(4, len(idx))
	img := image.NewRGBA(image.Rect(0, 0, shown*(side+4), side+14))
	draw.Fill(img, img.Bounds(), color.RGBA{255, 255, 255, 255})
	_ = draw.Text(img, 2, 2, "GREEN: TRUTH  RED: DETECTIONS > 0.3", 1, color.RGBA{0, 0, 0, 255})
	for j := 0; j < shown; j++ {
		it := test.Items[idx[j]]
		im, err := test.Decode(idx[j], data.DecodeOptions{Size: side, Channels: 3})
		if err != nil {
			return err
		}
		x0 := j * (side + 4)
		draw.Blit(img, data.ToTensor(im), x0, 12, 1)
		sx, sy := float64(side)/float64(it.W), float64(side)/float64(it.H)
		rect := func(b data.Box) image.Rectangle {
			return image.Rect(x0+int(b.X0*sx), 12+int(b.Y0*sy), x0+int(b.X1*sx)+1, 12+int(b.Y1*sy)+1)
		}
		for _, b := range truth[j] {
			draw.Stroke(img, rect(b), 1, color.RGBA{0, 200, 0, 255})
		}
		for _, p := range peaks[j] {
			if p.Score > 0.3 {
				draw.Stroke(img, rect(p.Box), 1, color.RGBA{230, 0, 0, 255})
			}
		}
	}
	return atomicfile.Write(path, func(w io.Writer) error { return png.Encode(w, img) })
}
