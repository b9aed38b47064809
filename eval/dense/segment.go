package dense

import (
	"fmt"
	"math"
	"math/rand"
	"sort"
)

// SegHead is a per-pixel linear classifier over the channels of a feature
// map: logits[k, p] = sum_c W[k*C+c] f[c, p] + B[k], computed on the
// feature grid and then upsampled bilinearly, which equals the linear head
// on bilinearly upsampled features (both maps are linear). Classes are the
// mask ids (COCO panoptic ids) of the K outputs.
type SegHead struct {
	K, C    int
	Classes []int
	// P holds W [K, C] then B [K].
	P []float32
}

// NewSegHead is a zero head for classes over c channels.
func NewSegHead(classes []int, c int) *SegHead {
	return &SegHead{K: len(classes), C: c, Classes: classes, P: make([]float32, len(classes)*(c+1))}
}

// lowLogits is [K, h*w] for standardised features f [C, h*w].
func (s *SegHead) lowLogits(f []float32, hw int) []float32 {
	z := make([]float32, s.K*hw)
	for k := 0; k < s.K; k++ {
		zk := z[k*hw : (k+1)*hw]
		b := s.P[s.K*s.C+k]
		for p := range zk {
			zk[p] = b
		}
		for c := 0; c < s.C; c++ {
			w := s.P[k*s.C+c]
			if w == 0 {
				continue
			}
			fc := f[c*hw : (c+1)*hw]
			for p, v := range fc {
				zk[p] += w * v
			}
		}
	}
	return z
}

// Logits returns the head's logits [K, oh, ow] on the map f [C, h, w].
func (s *SegHead) Logits(f []float32, h, w, oh, ow int) []float32 {
	return Upsample(s.lowLogits(f, h*w), s.K, h, w, oh, ow)
}

// Predict returns the mask id of each pixel of an oh x ow grid.
func (s *SegHead) Predict(f []float32, h, w, oh, ow int) []int {
	z := s.Logits(f, h, w, oh, ow)
	n := oh * ow
	out := make([]int, n)
	for p := 0; p < n; p++ {
		best, bk := float32(math.Inf(-1)), 0
		for k := 0; k < s.K; k++ {
			if v := z[k*n+p]; v > best {
				best, bk = v, k
			}
		}
		out[p] = s.Classes[bk]
	}
	return out
}

// lossGrad adds to g (len(P)) the gradient of the summed softmax cross
// entropy over the labelled pixels of label [r*r] (an output index, or -1
// to ignore) for the map f [C, h, w], and returns the summed loss and the
// number of labelled pixels.
func (s *SegHead) lossGrad(f []float32, h, w int, label []int, r int, g []float64) (float64, int) {
	hw := h * w
	z := s.lowLogits(f, hw)
	ty, tx := NewTaps(h, r), NewTaps(w, r)
	dz := make([]float64, s.K*hw)
	logit := make([]float64, s.K)
	var loss float64
	n := 0
	for y := 0; y < r; y++ {
		r0, r1, fy := ty.I0[y]*w, (ty.I0[y]+ty.D[y])*w, float64(ty.F[y])
		for x := 0; x < r; x++ {
			t := label[y*r+x]
			if t < 0 {
				continue
			}
			c0, c1, fx := tx.I0[x], tx.I0[x]+tx.D[x], float64(tx.F[x])
			q := [4]int{r0 + c0, r0 + c1, r1 + c0, r1 + c1}
			wt := [4]float64{(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx}
			m := math.Inf(-1)
			for k := 0; k < s.K; k++ {
				zk := z[k*hw:]
				v := wt[0]*float64(zk[q[0]]) + wt[1]*float64(zk[q[1]]) + wt[2]*float64(zk[q[2]]) + wt[3]*float64(zk[q[3]])
				logit[k] = v
				m = math.Max(m, v)
			}
			var se float64
			for k := range logit {
				logit[k] = math.Exp(logit[k] - m)
				se += logit[k]
			}
			loss += math.Log(se) - math.Log(logit[t])
			n++
			for k := range logit {
				d := logit[k] / se
				if k == t {
					d--
				}
				dk := dz[k*hw:]
				for j := 0; j < 4; j++ {
					dk[q[j]] += wt[j] * d
				}
			}
		}
	}
	for k := 0; k < s.K; k++ {
		dk := dz[k*hw : (k+1)*hw]
		var sb float64
		for _, v := range dk {
			sb += v
		}
		g[s.K*s.C+k] += sb
		for c := 0; c < s.C; c++ {
			fc := f[c*hw : (c+1)*hw]
			var sw float64
			for p, v := range dk {
				sw += v * float64(fc[p])
			}
			g[k*s.C+c] += sw
		}
	}
	return loss, n
}

// Objective is the training loss over items rows of maps with labels
// (each [r*r], output indices or -1): the mean cross entropy over the
// labelled pixels plus l2/2 ||W||^2 (biases not penalised); g receives
// its gradient.
func (s *SegHead) Objective(m *Maps, labels [][]int, r int, rows []int, l2 float64, g []float64) float64 {
	clear(g)
	n := 0
	for _, i := range rows {
		for _, t := range labels[i] {
			if t >= 0 {
				n++
			}
		}
	}
	loss := sumRows(rows, g, func(i int, g []float64) float64 {
		l, _ := s.lossGrad(m.At(i), m.H, m.W, labels[i], r, g)
		return l
	})
	if n > 0 {
		inv := 1 / float64(n)
		loss *= inv
		for j := range g {
			g[j] *= inv
		}
	}
	for j := 0; j < s.K*s.C; j++ {
		w := float64(s.P[j])
		loss += l2 / 2 * w * w
		g[j] += l2 * w
	}
	return loss
}

// SegTrainConfig is the optimisation of a SegHead: Adam with learning
// rate LR on minibatches of Batch images, Epochs passes, shuffled by Seed.
type SegTrainConfig struct {
	L2     float64
	Epochs int
	LR     float64
	Batch  int
	Seed   int64
	// After, when set, is called after each epoch (1-based) with the head.
	After func(epoch int, h *SegHead)
}

// TrainSeg fits h on the rows of m with labels (see Objective).
func TrainSeg(h *SegHead, m *Maps, labels [][]int, r int, rows []int, cfg SegTrainConfig) error {
	if cfg.Batch < 1 || cfg.Epochs < 1 || !(cfg.LR > 0) {
		return fmt.Errorf("dense: segment: batch %d, epochs %d, learning rate %g: want all positive", cfg.Batch, cfg.Epochs, cfg.LR)
	}
	rng := rand.New(rand.NewSource(cfg.Seed))
	opt := newAdam(len(h.P), cfg.LR)
	g := make([]float64, len(h.P))
	order := append([]int(nil), rows...)
	for e := 1; e <= cfg.Epochs; e++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for b := 0; b < len(order); b += cfg.Batch {
			loss := h.Objective(m, labels, r, order[b:min(b+cfg.Batch, len(order))], cfg.L2, g)
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				return fmt.Errorf("dense: segment: loss %v at epoch %d", loss, e)
			}
			opt.step(h.P, g)
		}
		if cfg.After != nil {
			cfg.After(e, h)
		}
	}
	return nil
}

// SegCounts are one image's per-class pixel counts over its labelled
// pixels (truth != 0): true positives, false positives and false
// negatives, by mask id.
type SegCounts map[int]*[3]int64

// CountSeg compares a prediction with the truth (mask ids; 0 = unlabelled,
// ignored).
func CountSeg(truth, pred []int) SegCounts {
	c := SegCounts{}
	get := func(k int) *[3]int64 {
		v, ok := c[k]
		if !ok {
			v = &[3]int64{}
			c[k] = v
		}
		return v
	}
	for p, t := range truth {
		if t == 0 {
			continue
		}
		if pred[p] == t {
			get(t)[0]++
		} else {
			get(t)[2]++
			get(pred[p])[1]++
		}
	}
	return c
}

// SegMetrics are the segmentation scores, fractions: MIoU, the mean over
// classes in the truth of the images of TP/(TP+FP+FN) summed over images;
// PixelAcc, the share of labelled pixels right; Jaccard and Dice, the
// per-image IoU and 2TP/(2TP+FP+FN) of each class present in an image's
// truth, averaged over those images per class, then over classes (the
// JA / DI of medical segmentation tables).
type SegMetrics struct {
	MIoU, PixelAcc, Jaccard, Dice float64
}

// ScoreSeg computes SegMetrics over images idx (repeats count again).
func ScoreSeg(counts []SegCounts, idx []int) SegMetrics {
	tot := map[int]*[3]int64{}
	ja, di, nImg := map[int]float64{}, map[int]float64{}, map[int]int{}
	var right, all int64
	for _, i := range idx {
		for k, v := range counts[i] {
			t, ok := tot[k]
			if !ok {
				t = &[3]int64{}
				tot[k] = t
			}
			for j := range v {
				t[j] += v[j]
			}
			right += v[0]
			all += v[0] + v[2]
			if v[0]+v[2] > 0 { // present in this image's truth
				ja[k] += float64(v[0]) / float64(v[0]+v[1]+v[2])
				di[k] += 2 * float64(v[0]) / float64(2*v[0]+v[1]+v[2])
				nImg[k]++
			}
		}
	}
	var keys []int
	for k := range nImg {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var m SegMetrics
	if len(keys) == 0 {
		return SegMetrics{math.NaN(), math.NaN(), math.NaN(), math.NaN()}
	}
	for _, k := range keys {
		t := tot[k]
		m.MIoU += float64(t[0]) / float64(t[0]+t[1]+t[2])
		m.Jaccard += ja[k] / float64(nImg[k])
		m.Dice += di[k] / float64(nImg[k])
	}
	n := float64(len(keys))
	m.MIoU, m.Jaccard, m.Dice = m.MIoU/n, m.Jaccard/n, m.Dice/n
	m.PixelAcc = float64(right) / float64(all)
	return m
}

// DownsampleMask picks, for each cell of an r x r grid over a w x h mask,
// the mask pixel at the cell's centre (nearest neighbour).
func DownsampleMask(pix []uint8, w, h, r int) []int {
	out := make([]int, r*r)
	for y := 0; y < r; y++ {
		sy := min(int((float64(y)+0.5)*float64(h)/float64(r)), h-1)
		for x := 0; x < r; x++ {
			sx := min(int((float64(x)+0.5)*float64(w)/float64(r)), w-1)
			out[y*r+x] = int(pix[sy*w+sx])
		}
	}
	return out
}
