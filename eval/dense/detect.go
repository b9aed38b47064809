package dense

import (
	"fmt"
	"math"
	"math/rand"
	"sort"

	"github.com/selfsup/selfsup/data"
)

// DetHead is a CenterNet-style head (Zhou et al. 2019, "Objects as
// Points", section 3) on a feature map f [C, h, w]: O = K+4 outputs per
// cell, K class-heatmap logits, then box width and height and the centre's
// x and y offset, in feature cells. Linear (M = 0): a 1x1 convolution
// C -> O. Otherwise a 3x3 convolution C -> M (padding 1) with ReLU, then
// 1x1 M -> O.
type DetHead struct {
	K, C, M int
	// P holds, for M = 0, W [O, C] then B [O]; for M > 0, W1 [M, C, 3, 3],
	// B1 [M], W2 [O, M], B2 [O].
	P []float32
}

// NewDetHead is a head for k classes over c channels (m hidden channels
// of a 3x3 convolution; 0: linear) with small random weights from seed
// and heatmap biases at the prior -2.19 (probability 0.1, as CenterNet).
func NewDetHead(k, c, m int, seed int64) *DetHead {
	h := &DetHead{K: k, C: c, M: m}
	o := k + 4
	rng := rand.New(rand.NewSource(seed))
	if m == 0 {
		h.P = make([]float32, o*c+o)
		for i := 0; i < o*c; i++ {
			h.P[i] = float32(rng.NormFloat64() * 0.01)
		}
		for i := 0; i < k; i++ {
			h.P[o*c+i] = -2.19
		}
		return h
	}
	h.P = make([]float32, m*c*9+m+o*m+o)
	for i := 0; i < m*c*9; i++ {
		h.P[i] = float32(rng.NormFloat64() * math.Sqrt(2/float64(c*9)))
	}
	for i := 0; i < o*m; i++ {
		h.P[m*c*9+m+i] = float32(rng.NormFloat64() * 0.01)
	}
	for i := 0; i < k; i++ {
		h.P[m*c*9+m+o*m+i] = -2.19
	}
	return h
}

// outBias is the head's output bias: K heatmap logits, then box width,
// height, x offset and y offset (all in cells of the map).
func (h *DetHead) outBias() []float32 {
	o := h.K + 4
	return h.P[len(h.P)-o:]
}

// InitFromTargets sets the size and offset biases to the mean box size
// and centre offset (in cells) of the objects of targets[rows], as the
// heatmap bias starts at the prior -2.19: a head trained for a few hundred
// steps cannot grow sizes from 0 to tens of cells (each Adam step moves a
// bias by about the learning rate), so without it every predicted box is
// tiny and AP50 reads 0 whatever the features. A no-op without objects.
func (h *DetHead) InitFromTargets(targets []DetTarget, rows []int) {
	var sw, sh, ox, oy, n float64
	for _, r := range rows {
		t := targets[r]
		for j := range t.Size {
			sw, sh = sw+float64(t.Size[j][0]), sh+float64(t.Size[j][1])
			ox, oy = ox+float64(t.Offset[j][0]), oy+float64(t.Offset[j][1])
			n++
		}
	}
	if n == 0 {
		return
	}
	b := h.outBias()
	b[h.K], b[h.K+1], b[h.K+2], b[h.K+3] = float32(sw/n), float32(sh/n), float32(ox/n), float32(oy/n)
}

// pointwise is out[o, p] = b[o] + sum_c w[o*c+c] x[c, p].
func pointwise(w, b, x []float32, o, c, hw int) []float32 {
	out := make([]float32, o*hw)
	for i := 0; i < o; i++ {
		oi := out[i*hw : (i+1)*hw]
		for p := range oi {
			oi[p] = b[i]
		}
		for j := 0; j < c; j++ {
			wv := w[i*c+j]
			for p, v := range x[j*hw : (j+1)*hw] {
				oi[p] += wv * v
			}
		}
	}
	return out
}

// Forward returns the head's outputs [O, h*w] and, for a conv head, the
// hidden activations [M, h*w] after ReLU.
func (d *DetHead) Forward(f []float32, h, w int) (out, hid []float32) {
	o, hw := d.K+4, h*w
	if d.M == 0 {
		return pointwise(d.P[:o*d.C], d.P[o*d.C:], f, o, d.C, hw), nil
	}
	w1, b1 := d.P[:d.M*d.C*9], d.P[d.M*d.C*9:d.M*d.C*9+d.M]
	rest := d.P[d.M*d.C*9+d.M:]
	hid = make([]float32, d.M*hw)
	for m := 0; m < d.M; m++ {
		hm := hid[m*hw : (m+1)*hw]
		for p := range hm {
			hm[p] = b1[m]
		}
		for c := 0; c < d.C; c++ {
			fc := f[c*hw : (c+1)*hw]
			for ky := -1; ky <= 1; ky++ {
				for kx := -1; kx <= 1; kx++ {
					wv := w1[((m*d.C+c)*3+ky+1)*3+kx+1]
					for y := max(0, -ky); y < min(h, h-ky); y++ {
						src, dst := fc[(y+ky)*w:], hm[y*w:]
						for x := max(0, -kx); x < min(w, w-kx); x++ {
							dst[x] += wv * src[x+kx]
						}
					}
				}
			}
		}
		for p, v := range hm {
			if v < 0 {
				hm[p] = 0
			}
		}
	}
	return pointwise(rest[:o*d.M], rest[o*d.M:], hid, o, d.M, hw), hid
}

// DetTarget is one image's CenterNet targets on an h x w map: Heat [K,
// h*w] (Gaussian peaks of 1 at object centres), and per object its centre
// cell, size and offset.
type DetTarget struct {
	Heat    []float32
	Cell    []int
	Size    [][2]float32
	Offset  [][2]float32
	Objects int
}

// gaussianRadius is CenterNet's gaussian_radius for a box of height bh
// and width bw at min_overlap 0.7.
func gaussianRadius(bh, bw float64) float64 {
	const o = 0.7
	b1, c1 := bh+bw, bw*bh*(1-o)/(1+o)
	r1 := (b1 + math.Sqrt(b1*b1-4*c1)) / 2
	b2, c2 := 2*(bh+bw), (1-o)*bw*bh
	r2 := (b2 + math.Sqrt(b2*b2-16*c2)) / 2
	a3, b3, c3 := 4*o, -2*o*(bh+bw), (o-1)*bw*bh
	r3 := (b3 + math.Sqrt(b3*b3-4*a3*c3)) / 2
	return math.Min(r1, math.Min(r2, r3))
}

// MakeTarget builds the targets of boxes (pixels of an imgW x imgH image)
// on an h x w map of k classes.
func MakeTarget(boxes []data.Box, imgW, imgH, k, h, w int) DetTarget {
	t := DetTarget{Heat: make([]float32, k*h*w)}
	sx, sy := float64(w)/float64(imgW), float64(h)/float64(imgH)
	for _, b := range boxes {
		if b.Class < 0 || b.Class >= k || b.Difficult {
			continue
		}
		cx, cy := (b.X0+b.X1)/2*sx, (b.Y0+b.Y1)/2*sy
		bw, bh := b.W()*sx, b.H()*sy
		ix, iy := min(int(cx), w-1), min(int(cy), h-1)
		r := max(0, int(gaussianRadius(math.Ceil(bh), math.Ceil(bw))))
		sigma := float64(2*r+1) / 6
		heat := t.Heat[b.Class*h*w:]
		for y := max(0, iy-r); y <= min(h-1, iy+r); y++ {
			for x := max(0, ix-r); x <= min(w-1, ix+r); x++ {
				dx, dy := float64(x-ix), float64(y-iy)
				v := float32(math.Exp(-(dx*dx + dy*dy) / (2 * sigma * sigma)))
				if v > heat[y*w+x] {
					heat[y*w+x] = v
				}
			}
		}
		t.Cell = append(t.Cell, iy*w+ix)
		t.Size = append(t.Size, [2]float32{float32(bw), float32(bh)})
		t.Offset = append(t.Offset, [2]float32{float32(cx - float64(ix)), float32(cy - float64(iy))})
		t.Objects++
	}
	return t
}

func softplus(z float64) float64 {
	if z > 0 {
		return z + math.Log1p(math.Exp(-z))
	}
	return math.Log1p(math.Exp(z))
}

// SizeWeight weighs the size L1 loss against the focal and offset losses (CenterNet's 0.1).
const SizeWeight = 0.1

// lossGrad returns one image's loss (focal loss with alpha 2, beta 4 on the
// heatmaps, L1 on size and offset at object centres, all divided by the
// object count, at least 1) and adds its gradient to g.
func (d *DetHead) lossGrad(f []float32, h, w int, t DetTarget, g []float64) float64 {
	o, hw := d.K+4, h*w
	out, hid := d.Forward(f, h, w)
	dout := make([]float64, o*hw)
	norm := 1 / math.Max(1, float64(t.Objects))
	var loss float64
	for i := 0; i < d.K*hw; i++ {
		z := float64(out[i])
		p := 1 / (1 + math.Exp(-z))
		lp, l1p := -softplus(-z), -softplus(z)
		if y := float64(t.Heat[i]); y >= 1 {
			loss -= math.Pow(1-p, 2) * lp * norm
			dout[i] = (1 - p) * (1 - p) * (2*p*lp - (1 - p)) * norm
		} else {
			wgt := math.Pow(1-y, 4)
			loss -= wgt * p * p * l1p * norm
			dout[i] = wgt * p * p * (p - 2*(1-p)*l1p) * norm
		}
	}
	for j, cell := range t.Cell {
		for a := 0; a < 4; a++ {
			want, wt := float64(t.Size[j][a%2]), SizeWeight
			if a >= 2 {
				want, wt = float64(t.Offset[j][a-2]), 1
			}
			idx := (d.K+a)*hw + cell
			diff := float64(out[idx]) - want
			loss += wt * math.Abs(diff) * norm
			s := 0.0
			if diff > 0 {
				s = 1
			} else if diff < 0 {
				s = -1
			}
			dout[idx] += wt * s * norm
		}
	}
	// Back through the last pointwise layer: input x [in, hw].
	x, in, base := f, d.C, 0
	if d.M > 0 {
		x, in, base = hid, d.M, d.M*d.C*9+d.M
	}
	var dx []float64
	if d.M > 0 {
		dx = make([]float64, in*hw)
	}
	for i := 0; i < o; i++ {
		di := dout[i*hw : (i+1)*hw]
		var sb float64
		for _, v := range di {
			sb += v
		}
		g[base+o*in+i] += sb
		for j := 0; j < in; j++ {
			xj := x[j*hw : (j+1)*hw]
			var sw float64
			for p, v := range di {
				sw += v * float64(xj[p])
			}
			g[base+i*in+j] += sw
			if dx != nil {
				wv := float64(d.P[base+i*in+j])
				dxj := dx[j*hw : (j+1)*hw]
				for p, v := range di {
					dxj[p] += wv * v
				}
			}
		}
	}
	if d.M == 0 {
		return loss
	}
	for m := 0; m < d.M; m++ {
		dm := dx[m*hw : (m+1)*hw]
		hm := hid[m*hw : (m+1)*hw]
		var sb float64
		for p := range dm {
			if hm[p] <= 0 {
				dm[p] = 0
			}
			sb += dm[p]
		}
		g[d.M*d.C*9+m] += sb
		for c := 0; c < d.C; c++ {
			fc := f[c*hw : (c+1)*hw]
			for ky := -1; ky <= 1; ky++ {
				for kx := -1; kx <= 1; kx++ {
					var s float64
					for y := max(0, -ky); y < min(h, h-ky); y++ {
						src, dr := fc[(y+ky)*w:], dm[y*w:]
						for xx := max(0, -kx); xx < min(w, w-kx); xx++ {
							s += dr[xx] * float64(src[xx+kx])
						}
					}
					g[((m*d.C+c)*3+ky+1)*3+kx+1] += s
				}
			}
		}
	}
	return loss
}

// Objective is the mean of lossGrad over rows plus l2/2 ||P||^2 over the
// weights (all of P: biases included, for brevity of the bookkeeping; l2
// is small); g receives its gradient.
func (d *DetHead) Objective(m *Maps, targets []DetTarget, rows []int, l2 float64, g []float64) float64 {
	clear(g)
	loss := sumRows(rows, g, func(i int, g []float64) float64 { return d.lossGrad(m.At(i), m.H, m.W, targets[i], g) })
	inv := 1 / float64(max(1, len(rows)))
	loss *= inv
	for j, v := range d.P {
		g[j] = g[j]*inv + l2*float64(v)
		loss += l2 / 2 * float64(v) * float64(v)
	}
	return loss
}

// DetTrainConfig: see SegTrainConfig.
type DetTrainConfig struct {
	L2, LR        float64
	Epochs, Batch int
	Seed          int64
	After         func(epoch int, d *DetHead) error
}

// TrainDet fits d with Adam on minibatches of rows.
func TrainDet(d *DetHead, m *Maps, targets []DetTarget, rows []int, cfg DetTrainConfig) error {
	if cfg.Batch < 1 || cfg.Epochs < 1 || !(cfg.LR > 0) {
		return fmt.Errorf("dense: detect: batch %d, epochs %d, learning rate %g: want all positive", cfg.Batch, cfg.Epochs, cfg.LR)
	}
	rng := rand.New(rand.NewSource(cfg.Seed))
	opt := newAdam(len(d.P), cfg.LR)
	g := make([]float64, len(d.P))
	order := append([]int(nil), rows...)
	for e := 1; e <= cfg.Epochs; e++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for b := 0; b < len(order); b += cfg.Batch {
			loss := d.Objective(m, targets, order[b:min(b+cfg.Batch, len(order))], cfg.L2, g)
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				return fmt.Errorf("dense: detect: loss %v at epoch %d", loss, e)
			}
			opt.step(d.P, g)
		}
		if cfg.After != nil {
			if err := cfg.After(e, d); err != nil {
				return err
			}
		}
	}
	return nil
}

// Peak is one decoded detection: class, score and box in pixels of the
// original image.
type Peak struct {
	Class int
	Score float64
	Box   data.Box
}

// Decode finds the heatmap peaks (cells equal to the maximum of their 3x3
// neighbourhood, CenterNet's max-pooling NMS), keeps the top topK by score
// over all classes, and turns each into a box scaled to imgW x imgH.
func (d *DetHead) Decode(f []float32, h, w, imgW, imgH, topK int) []Peak {
	out, _ := d.Forward(f, h, w)
	hw := h * w
	var peaks []Peak
	var cells []int
	for k := 0; k < d.K; k++ {
		hk := out[k*hw : (k+1)*hw]
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := hk[y*w+x]
				peak := true
				for dy := -1; dy <= 1 && peak; dy++ {
					for dx := -1; dx <= 1; dx++ {
						if yy, xx := y+dy, x+dx; yy >= 0 && yy < h && xx >= 0 && xx < w && hk[yy*w+xx] > v {
							peak = false
							break
						}
					}
				}
				if peak {
					peaks = append(peaks, Peak{Class: k, Score: 1 / (1 + math.Exp(-float64(v)))})
					cells = append(cells, y*w+x)
				}
			}
		}
	}
	order := make([]int, len(peaks))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return peaks[order[a]].Score > peaks[order[b]].Score })
	if len(order) > topK {
		order = order[:topK]
	}
	sx, sy := float64(imgW)/float64(w), float64(imgH)/float64(h)
	res := make([]Peak, 0, len(order))
	for _, i := range order {
		p, cell := peaks[i], cells[i]
		cx := float64(cell%w) + float64(out[(d.K+2)*hw+cell])
		cy := float64(cell/w) + float64(out[(d.K+3)*hw+cell])
		bw, bh := math.Max(float64(out[d.K*hw+cell]), 0), math.Max(float64(out[(d.K+1)*hw+cell]), 0)
		clamp := func(v, hi float64) float64 { return math.Min(math.Max(v, 0), hi) }
		p.Box = data.Box{Class: p.Class, X0: clamp((cx-bw/2)*sx, float64(imgW)), Y0: clamp((cy-bh/2)*sy, float64(imgH)),
			X1: clamp((cx+bw/2)*sx, float64(imgW)), Y1: clamp((cy+bh/2)*sy, float64(imgH))}
		res = append(res, p)
	}
	return res
}
