// Package detect scores object detections against ground-truth boxes: the
// twelve COCO metrics exactly as pycocotools' COCOeval (iouType "bbox")
// computes them, and PASCAL VOC 2007's 11-point AP at IoU 0.5 as the VOC
// devkit computes it. It reads COCO instances files and COCO results files.
//
// COCO conventions (Lin et al. 2014, "Microsoft COCO", and pycocotools
// 2.0.11 cocoeval.py): IoU of [x,y,w,h] boxes without +1; IoU thresholds
// numpy's linspace(.5, .95, 10); precision read at the 101 recall points
// linspace(0, 1, 101) from the precision envelope; at most 1, 10 or 100
// detections per image and class, taken by score with a stable sort;
// crowd regions are ignored (a detection matched to one is ignored, its IoU
// is intersection over the detection's area, and it may match many
// detections); area ranges all / small / medium / large are [0, 1e10],
// [0, 32^2], [32^2, 96^2], [96^2, 1e10] of the annotation's "area", both
// ends inclusive, and an unmatched detection outside the range is ignored;
// a class without (non-ignored) ground truth in a range is left out of the
// mean; a metric with no class to average is -1.
//
// The means are summed in numpy's pairwise order, so on the generated
// cases of the tests (and a tenth of COCO's size) every number equals
// pycocotools' to the bit; the tests demand 1e-9.
package detect

import (
	"fmt"
	"sort"
)

// linspace is numpy's linspace(start, stop, num) for num > 1, to the bit:
// i*step + start with step = (stop-start)/(num-1), the last value stop.
func linspace(start, stop float64, num int) []float64 {
	step := (stop - start) / float64(num-1)
	y := make([]float64, num)
	for i := range y {
		y[i] = float64(float64(i)*step) + start // no fused multiply-add
	}
	y[num-1] = stop
	return y
}

// IoUThresholds are COCO's ten IoU thresholds, numpy's
// linspace(.5, 0.95, 10) (0.8999999999999999 included).
func IoUThresholds() []float64 { return linspace(0.5, 0.95, 10) }

// RecallThresholds are COCO's 101 recall points, numpy's
// linspace(0, 1, 101): index 30 is exactly 0.3, index 70 is
// 0.7000000000000001.
func RecallThresholds() []float64 { return linspace(0, 1, 101) }

// COCO's area ranges and detection limits, in pycocotools' order.
var (
	areaRanges = [4][2]float64{{0, 1e10}, {0, 32 * 32}, {32 * 32, 96 * 96}, {96 * 96, 1e10}}
	maxDets    = [3]int{1, 10, 100}
)

// COCOMetrics are the twelve numbers of COCOeval.summarize() for boxes,
// fractions in [0, 1], or -1 where no class has ground truth.
type COCOMetrics struct {
	AP       float64 `json:"ap"`        // IoU .50:.95, all areas, 100 detections
	AP50     float64 `json:"ap50"`      // IoU .50
	AP75     float64 `json:"ap75"`      // IoU .75
	APSmall  float64 `json:"ap_small"`  // area <= 32^2
	APMedium float64 `json:"ap_medium"` // 32^2 <= area <= 96^2
	APLarge  float64 `json:"ap_large"`  // area >= 96^2
	AR1      float64 `json:"ar1"`       // recall, IoU .50:.95, 1 detection per image
	AR10     float64 `json:"ar10"`      // 10 detections
	AR100    float64 `json:"ar100"`     // 100 detections
	ARSmall  float64 `json:"ar_small"`
	ARMedium float64 `json:"ar_medium"`
	ARLarge  float64 `json:"ar_large"`
}

// Stats returns the metrics in pycocotools' stats order.
func (m *COCOMetrics) Stats() [12]float64 {
	return [12]float64{m.AP, m.AP50, m.AP75, m.APSmall, m.APMedium, m.APLarge,
		m.AR1, m.AR10, m.AR100, m.ARSmall, m.ARMedium, m.ARLarge}
}

// imgCat is one image's ground truth and detections of one class, in file
// order.
type imgCat struct {
	gts []*Annotation
	dts []*Detection
}

// group collects gt and dts by class and image: the classes and images in
// ascending id order (as pycocotools sorts them), each cell's boxes in
// file order.
func group(gt *COCOGroundTruth, dts []Detection) (cats, imgs []int64, cells map[[2]int64]*imgCat) {
	for _, c := range gt.Categories {
		cats = append(cats, c.ID)
	}
	for _, im := range gt.Images {
		imgs = append(imgs, im.ID)
	}
	sort.Slice(cats, func(i, j int) bool { return cats[i] < cats[j] })
	sort.Slice(imgs, func(i, j int) bool { return imgs[i] < imgs[j] })
	cells = map[[2]int64]*imgCat{}
	cell := func(img, cat int64) *imgCat {
		c := cells[[2]int64{img, cat}]
		if c == nil {
			c = &imgCat{}
			cells[[2]int64{img, cat}] = c
		}
		return c
	}
	for i := range gt.Annotations {
		a := &gt.Annotations[i]
		c := cell(a.ImageID, a.CategoryID)
		c.gts = append(c.gts, a)
	}
	for i := range dts {
		d := &dts[i]
		c := cell(d.ImageID, d.CategoryID)
		c.dts = append(c.dts, d)
	}
	return cats, imgs, cells
}

// byScore returns dts sorted by descending score, ties in their given
// order (numpy's argsort(-scores, kind='mergesort')).
func byScore(dts []*Detection) []*Detection {
	s := append([]*Detection(nil), dts...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].Score > s[j].Score })
	return s
}

// cocoIoU is maskApi.c's bbIou: intersection over union of [x,y,w,h]
// boxes, over the detection's own area when g is a crowd region.
func cocoIoU(d, g Box, crowd bool) float64 {
	w := min(d[2]+d[0], g[2]+g[0]) - max(d[0], g[0])
	if w <= 0 {
		return 0
	}
	h := min(d[3]+d[1], g[3]+g[1]) - max(d[1], g[1])
	if h <= 0 {
		return 0
	}
	i := w * h
	da := d[2] * d[3]
	if crowd {
		return i / da
	}
	return i / (da + g[2]*g[3] - i)
}

// imgEval is evaluateImg's result for one image, class and area range:
// the kept detections (best first, at most 100) with, per IoU threshold,
// whether each matched and whether it is ignored, and the number of
// ground-truth boxes not ignored.
type imgEval struct {
	scores  []float64
	matched [][]bool // [threshold][detection]
	ignored [][]bool
	npig    int
}

// evaluateImg is pycocotools' COCOeval.evaluateImg for one cell (with its
// detections already sorted and cut to 100, and their IoUs ious[d][g]
// against c.gts in file order) and one area range.
func evaluateImg(c *imgCat, dts []*Detection, ious [][]float64, rng [2]float64, thr []float64) *imgEval {
	G := len(c.gts)
	ign := make([]bool, G)
	order := make([]int, G) // ground truth, the ignored last, stably
	for g, a := range c.gts {
		ign[g] = a.IsCrowd || a.Area < rng[0] || a.Area > rng[1]
		order[g] = g
	}
	sort.SliceStable(order, func(i, j int) bool { return !ign[order[i]] && ign[order[j]] })
	e := &imgEval{scores: make([]float64, len(dts)), matched: make([][]bool, len(thr)), ignored: make([][]bool, len(thr))}
	for _, g := range order {
		if !ign[g] {
			e.npig++
		}
	}
	for d, dt := range dts {
		e.scores[d] = dt.Score
	}
	for t, th := range thr {
		gtm := make([]bool, G)
		dtm, dtIg := make([]bool, len(dts)), make([]bool, len(dts))
		if G > 0 && len(dts) > 0 {
			for d := range dts {
				iou := min(th, 1-1e-10)
				m := -1
				for _, g := range order {
					if gtm[g] && !c.gts[g].IsCrowd {
						continue
					}
					if m > -1 && !ign[m] && ign[g] {
						break
					}
					if ious[d][g] < iou {
						continue
					}
					iou = ious[d][g]
					m = g
				}
				if m == -1 {
					continue
				}
				dtIg[d] = ign[m]
				dtm[d] = true
				gtm[m] = true
			}
		}
		for d, dt := range dts {
			a := dt.BBox[2] * dt.BBox[3]
			if !dtm[d] && (a < rng[0] || a > rng[1]) {
				dtIg[d] = true
			}
		}
		e.matched[t], e.ignored[t] = dtm, dtIg
	}
	return e
}

// pairwiseSum is numpy's pairwise_sum for float64: sequential below 8
// values, eight running sums up to 128, halves (multiples of 8) above.
func pairwiseSum(a []float64) float64 {
	n := len(a)
	switch {
	case n < 8:
		res := 0.0
		for _, v := range a {
			res += v
		}
		return res
	case n <= 128:
		var r [8]float64
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range r {
				r[j] += a[i+j]
			}
		}
		res := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			res += a[i]
		}
		return res
	}
	n2 := n / 2
	n2 -= n2 % 8
	return pairwiseSum(a[:n2]) + pairwiseSum(a[n2:])
}

// numpyMean is np.mean of a contiguous float64 array, to the bit: the
// pairwise sums of blocks of 8192 (numpy's buffer), added in turn, over
// the count; -1 for no values, as summarize() reports.
func numpyMean(a []float64) float64 {
	if len(a) == 0 {
		return -1
	}
	s := 0.0
	for i := 0; i < len(a); i += 8192 {
		s += pairwiseSum(a[i:min(i+8192, len(a))])
	}
	return s / float64(len(a))
}

// COCOEval computes the twelve COCO box metrics of dts against gt, as
// pycocotools 2.0.11's COCOeval(gt, dt, "bbox") evaluate(), accumulate()
// and summarize() do. Detections of unknown images or classes are an
// error (see CheckDetections); an empty dts scores 0 wherever there is
// ground truth.
func COCOEval(gt *COCOGroundTruth, dts []Detection) (*COCOMetrics, error) {
	if err := gt.Validate(); err != nil {
		return nil, err
	}
	if err := CheckDetections(gt, dts); err != nil {
		return nil, err
	}
	thr, rec := IoUThresholds(), RecallThresholds()
	T, R, A, M := len(thr), len(rec), len(areaRanges), len(maxDets)
	cats, imgs, cells := group(gt, dts)
	K := len(cats)
	// precision[t][r][k][a][m] and recall[t][k][a][m], -1 where undefined.
	precision := make([]float64, T*R*K*A*M)
	recall := make([]float64, T*K*A*M)
	for i := range precision {
		precision[i] = -1
	}
	for i := range recall {
		recall[i] = -1
	}
	P := func(t, r, k, a, m int) int { return (((t*R+r)*K+k)*A+a)*M + m }
	Q := func(t, k, a, m int) int { return ((t*K+k)*A+a)*M + m }
	evals := make([][]*imgEval, A) // per area range, per image
	for k, cat := range cats {
		for a := range evals {
			evals[a] = evals[a][:0]
		}
		for _, img := range imgs {
			c := cells[[2]int64{img, cat}]
			if c == nil || len(c.gts) == 0 && len(c.dts) == 0 {
				continue
			}
			sorted := byScore(c.dts)
			if len(sorted) > maxDets[M-1] {
				sorted = sorted[:maxDets[M-1]]
			}
			ious := make([][]float64, len(sorted))
			for d, dt := range sorted {
				ious[d] = make([]float64, len(c.gts))
				for g, a := range c.gts {
					ious[d][g] = cocoIoU(dt.BBox, a.BBox, a.IsCrowd)
				}
			}
			for a, rng := range areaRanges {
				evals[a] = append(evals[a], evaluateImg(c, sorted, ious, rng, thr))
			}
		}
		for a := range areaRanges {
			E := evals[a]
			if len(E) == 0 {
				continue
			}
			npig := 0
			for _, e := range E {
				npig += e.npig
			}
			if npig == 0 {
				continue
			}
			for m, maxDet := range maxDets {
				type ref struct{ e, d int }
				var all []ref
				for i, e := range E {
					for d := 0; d < len(e.scores) && d < maxDet; d++ {
						all = append(all, ref{i, d})
					}
				}
				sort.SliceStable(all, func(i, j int) bool {
					return E[all[i].e].scores[all[i].d] > E[all[j].e].scores[all[j].d]
				})
				nd := len(all)
				rc, pr := make([]float64, nd), make([]float64, nd)
				for t := range thr {
					var tp, fp float64
					for i, r := range all {
						if !E[r.e].ignored[t][r.d] {
							if E[r.e].matched[t][r.d] {
								tp++
							} else {
								fp++
							}
						}
						rc[i] = tp / float64(npig)
						pr[i] = tp / (fp + tp + 0x1p-52)
					}
					if nd > 0 {
						recall[Q(t, k, a, m)] = rc[nd-1]
					} else {
						recall[Q(t, k, a, m)] = 0
					}
					for i := nd - 1; i > 0; i-- {
						if pr[i] > pr[i-1] {
							pr[i-1] = pr[i]
						}
					}
					for r, x := range rec {
						pi := sort.SearchFloat64s(rc, x) // numpy searchsorted side='left'
						q := 0.0
						if pi < nd {
							q = pr[pi]
						}
						precision[P(t, r, k, a, m)] = q
					}
				}
			}
		}
	}
	tIndex := func(v float64) []int {
		for t, x := range thr {
			if x == v {
				return []int{t}
			}
		}
		return nil
	}
	allT := make([]int, T)
	for t := range allT {
		allT[t] = t
	}
	// summarize(): the mean of the defined values, in numpy's C order.
	ap := func(ts []int, a, m int) float64 {
		var s []float64
		for _, t := range ts {
			for r := 0; r < R; r++ {
				for k := 0; k < K; k++ {
					if v := precision[P(t, r, k, a, m)]; v > -1 {
						s = append(s, v)
					}
				}
			}
		}
		return numpyMean(s)
	}
	ar := func(a, m int) float64 {
		var s []float64
		for t := 0; t < T; t++ {
			for k := 0; k < K; k++ {
				if v := recall[Q(t, k, a, m)]; v > -1 {
					s = append(s, v)
				}
			}
		}
		return numpyMean(s)
	}
	return &COCOMetrics{
		AP: ap(allT, 0, 2), AP50: ap(tIndex(0.5), 0, 2), AP75: ap(tIndex(0.75), 0, 2),
		APSmall: ap(allT, 1, 2), APMedium: ap(allT, 2, 2), APLarge: ap(allT, 3, 2),
		AR1: ar(0, 0), AR10: ar(0, 1), AR100: ar(0, 2),
		ARSmall: ar(1, 2), ARMedium: ar(2, 2), ARLarge: ar(3, 2),
	}, nil
}

// String is the metrics as pycocotools prints them, one per line.
func (m *COCOMetrics) String() string {
	rows := []struct {
		what, iou, area string
		max             int
	}{
		{"Average Precision  (AP)", "0.50:0.95", "all", 100}, {"Average Precision  (AP)", "0.50", "all", 100},
		{"Average Precision  (AP)", "0.75", "all", 100}, {"Average Precision  (AP)", "0.50:0.95", "small", 100},
		{"Average Precision  (AP)", "0.50:0.95", "medium", 100}, {"Average Precision  (AP)", "0.50:0.95", "large", 100},
		{"Average Recall     (AR)", "0.50:0.95", "all", 1}, {"Average Recall     (AR)", "0.50:0.95", "all", 10},
		{"Average Recall     (AR)", "0.50:0.95", "all", 100}, {"Average Recall     (AR)", "0.50:0.95", "small", 100},
		{"Average Recall     (AR)", "0.50:0.95", "medium", 100}, {"Average Recall     (AR)", "0.50:0.95", "large", 100},
	}
	s := ""
	for i, v := range m.Stats() {
		r := rows[i]
		s += fmt.Sprintf(" %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f\n", r.what, r.iou, r.area, r.max, v)
	}
	return s
}
