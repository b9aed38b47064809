package detect

// vocIoU is the VOC devkit's overlap of boxes with corners (x1, y1, x2,
// y2) = (x, y, x+w, y+h), counting pixels inclusively: widths and heights
// are x2-x1+1 and y2-y1+1.
func vocIoU(d, g Box) float64 {
	dx2, dy2, gx2, gy2 := d[0]+d[2], d[1]+d[3], g[0]+g[2], g[1]+g[3]
	iw := max(min(gx2, dx2)-max(g[0], d[0])+1, 0)
	ih := max(min(gy2, dy2)-max(g[1], d[1])+1, 0)
	inter := iw * ih
	uni := (dx2-d[0]+1)*(dy2-d[1]+1) + (gx2-g[0]+1)*(gy2-g[1]+1) - inter
	return inter / uni
}

// VOC07Thresholds are the 11 recall points of the VOC2007 metric, numpy's
// arange(0., 1.1, 0.1): i*0.1, so the fourth is 0.30000000000000004 and a
// recall of exactly 0.3 does not reach it.
func VOC07Thresholds() []float64 {
	t := make([]float64, 11)
	step := 0.1
	for i := range t {
		t[i] = float64(i) * step
	}
	return t
}

// VOC07AP50 is the mean over classes of PASCAL VOC 2007's 11-point average
// precision at IoU > 0.5, as the VOC devkit's voc_eval with
// use_07_metric=True computes it (Everingham et al. 2010, section 4.2):
// boxes [x,y,w,h] become corners (x, y, x+w, y+h) and the IoU counts +1
// pixel on widths and heights; each detection, by descending score (ties
// kept in file order: a stable sort, where the devkit's quicksort leaves
// them unspecified), goes to the ground truth it overlaps most in its
// image; it is a true positive when that box is not yet taken, ignored
// when the box is difficult (IsCrowd or Difficult), a false positive
// otherwise; precision at recall r is the highest precision at any recall
// >= r. Classes without non-difficult ground truth are left out of the
// mean; with none at all the result is -1.
func VOC07AP50(gt *COCOGroundTruth, dts []Detection) (float64, error) {
	if err := gt.Validate(); err != nil {
		return 0, err
	}
	if err := CheckDetections(gt, dts); err != nil {
		return 0, err
	}
	cats, _, cells := group(gt, dts)
	thr := VOC07Thresholds()
	var aps []float64
	for _, cat := range cats {
		var classDts []*Detection
		npos := 0
		taken := map[*Annotation]bool{}
		for i := range gt.Annotations {
			a := &gt.Annotations[i]
			if a.CategoryID == cat && !a.IsCrowd && !a.Difficult {
				npos++
			}
		}
		for i := range dts {
			if dts[i].CategoryID == cat {
				classDts = append(classDts, &dts[i])
			}
		}
		if npos == 0 {
			continue
		}
		classDts = byScore(classDts)
		rec, prec := make([]float64, len(classDts)), make([]float64, len(classDts))
		var tp, fp float64
		for i, d := range classDts {
			var best *Annotation
			ovmax := -1.0
			if c := cells[[2]int64{d.ImageID, cat}]; c != nil {
				for _, g := range c.gts {
					if o := vocIoU(d.BBox, g.BBox); best == nil || o > ovmax {
						best, ovmax = g, o
					}
				}
			}
			switch {
			case best == nil || !(ovmax > 0.5):
				fp++
			case best.IsCrowd || best.Difficult:
			case !taken[best]:
				tp++
				taken[best] = true
			default:
				fp++
			}
			rec[i] = tp / float64(npos)
			prec[i] = tp / max(tp+fp, 0x1p-52)
		}
		ap := 0.0
		for _, t := range thr {
			p := 0.0
			for i := range rec {
				if rec[i] >= t && prec[i] > p {
					p = prec[i]
				}
			}
			ap = ap + p/11
		}
		aps = append(aps, ap)
	}
	return numpyMean(aps), nil
}
