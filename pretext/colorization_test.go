package pretext

import (
	"math"
	"math/rand"
	"sort"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// TestColorBins: 261 bins of side 10 centred on multiples of 10, every
// centre its own nearest bin, and every sRGB colour (random 8-bit and
// float colours) inside the cell of its nearest bin: the bins cover the
// gamut.
func TestColorBins(t *testing.T) {
	bins, err := ColorBins(10)
	if err != nil {
		t.Fatal(err)
	}
	if bins.Len() != 261 {
		t.Fatalf("%d bins at grid 10, expected 261", bins.Len())
	}
	for q, c := range bins.Centres {
		if math.Mod(c[0], 10) != 0 || math.Mod(c[1], 10) != 0 || c[0] < -90 || c[0] > 100 || c[1] < -110 || c[1] > 90 {
			t.Fatalf("bin %d centre %v", q, c)
		}
		if got := bins.Nearest(c[0]+2, c[1]-3); got != q {
			t.Fatalf("nearest bin of %v is %d, expected %d", c, got, q)
		}
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		_, a, b := data.RGBToLab(rng.Float64(), rng.Float64(), rng.Float64())
		c := bins.Centres[bins.Nearest(a, b)]
		if math.Abs(c[0]-a) > 5+1e-9 || math.Abs(c[1]-b) > 5+1e-9 {
			t.Fatalf("ab (%.2f, %.2f) outside the cell of its nearest bin %v", a, b, c)
		}
	}
	coarse, err := ColorBins(20)
	if err != nil || coarse.Len() >= bins.Len() || coarse.Len() < 50 {
		t.Fatalf("grid 20: %v bins, %v", coarse.Len(), err)
	}
	if _, err := ColorBins(0.5); err == nil {
		t.Fatal("bin size 0.5 accepted")
	}
}

// TestColorBinsGamut: all 2^24 8-bit colours fall into the bins ColorBins
// finds from the cube's faces and a lattice (and reach every one of
// them). Only without -short: the scan takes a few seconds.
func TestColorBinsGamut(t *testing.T) {
	if testing.Short() {
		return
	}
	bins, _ := ColorBins(10)
	lut := data.LinearLUT()
	hit := make([]bool, bins.Len())
	for r := 0; r < 256; r++ {
		for g := 0; g < 256; g++ {
			for b := 0; b < 256; b++ {
				_, a, bb := data.LinearRGBToLab(lut[r], lut[g], lut[b])
				q := bins.Nearest(a, bb)
				c := bins.Centres[q]
				if math.Abs(c[0]-a) > 5 || math.Abs(c[1]-bb) > 5 {
					t.Fatalf("colour (%d, %d, %d), ab (%.2f, %.2f): no bin holds it (nearest %v)", r, g, b, a, bb, c)
				}
				hit[q] = true
			}
		}
	}
	for q, h := range hit {
		if !h {
			t.Fatalf("bin %d %v holds no colour", q, bins.Centres[q])
		}
	}
}

// TestColorEncode checks the soft encoding against a brute-force sort:
// the 5 nearest bins, nearest first, with Gaussian weights summing to 1.
func TestColorEncode(t *testing.T) {
	bins, _ := ColorBins(10)
	rng := rand.New(rand.NewSource(2))
	idx, z := make([]int32, 5), make([]float32, 5)
	for i := 0; i < 200; i++ {
		a, b := rng.Float64()*160-80, rng.Float64()*160-80
		bins.Encode(a, b, 5, idx, z)
		type qd struct {
			q int
			d float64
		}
		all := make([]qd, bins.Len())
		for q, c := range bins.Centres {
			all[q] = qd{q, (c[0]-a)*(c[0]-a) + (c[1]-b)*(c[1]-b)}
		}
		sort.SliceStable(all, func(i, j int) bool { return all[i].d < all[j].d })
		var sum, wsum float64
		for k := range idx {
			if all[k].d != (func() float64 { c := bins.Centres[idx[k]]; return (c[0]-a)*(c[0]-a) + (c[1]-b)*(c[1]-b) })() {
				t.Fatalf("(%v, %v): neighbour %d is bin %d, expected distance %v", a, b, k, idx[k], all[k].d)
			}
			wsum += math.Exp(-all[k].d / 50)
		}
		for k := range z {
			want := math.Exp(-all[k].d/50) / wsum
			if math.Abs(float64(z[k])-want) > 1e-6 {
				t.Fatalf("(%v, %v): weight %d = %v, expected %v", a, b, k, z[k], want)
			}
			sum += float64(z[k])
		}
		if math.Abs(sum-1) > 1e-5 || int(idx[0]) != bins.Nearest(a, b) {
			t.Fatalf("(%v, %v): weights sum to %v, first bin %d, nearest %d", a, b, sum, idx[0], bins.Nearest(a, b))
		}
	}
}

// TestRebalanceWeights: the weights' expectation under the prior is 1,
// rarer bins weigh more, a uniform prior (or lambda 1) gives weights 1;
// the smoothed prior sums to 1 and spreads a single bin as a Gaussian.
func TestRebalanceWeights(t *testing.T) {
	bins, _ := ColorBins(10)
	rng := rand.New(rand.NewSource(3))
	hist := make([]float64, bins.Len())
	for i := 0; i < 5000; i++ {
		hist[bins.Nearest(rng.NormFloat64()*15, rng.NormFloat64()*15+10)]++
	}
	prior := bins.SmoothPrior(hist, 5)
	var ps float64
	for _, p := range prior {
		ps += p
	}
	if math.Abs(ps-1) > 1e-9 {
		t.Fatalf("prior sums to %v", ps)
	}
	w := RebalanceWeights(prior, 0.5)
	var e float64
	for q := range w {
		e += prior[q] * w[q]
	}
	if math.Abs(e-1) > 1e-9 {
		t.Fatalf("E_prior[w] = %v, expected 1", e)
	}
	grey, far := bins.Nearest(0, 10), bins.Nearest(80, 60)
	if !(w[far] > w[grey]) || !(w[grey] < 1) {
		t.Fatalf("weights grey %v, far %v: rare colours must weigh more", w[grey], w[far])
	}
	// The paper's bound: w <= 1/(λ/Q) / E, so max/min <= ((1-λ)max p + λ/Q)/(λ/Q).
	uni := make([]float64, bins.Len())
	for q := range uni {
		uni[q] = 1 / float64(bins.Len())
	}
	for _, tc := range []struct {
		prior  []float64
		lambda float64
	}{{uni, 0.5}, {prior, 1}} {
		for q, v := range RebalanceWeights(tc.prior, tc.lambda) {
			if math.Abs(v-1) > 1e-9 {
				t.Fatalf("lambda %v: weight %d = %v, expected 1", tc.lambda, q, v)
			}
		}
	}
	one := make([]float64, bins.Len())
	q0 := bins.Nearest(0, 0)
	one[q0] = 1
	sm := bins.SmoothPrior(one, 5)
	nb := bins.Nearest(10, 0)
	// Neighbour at distance 10 with sigma 5: exp(-100/50) of the centre.
	if r := sm[nb] / sm[q0]; math.Abs(r-math.Exp(-2)) > 1e-9 {
		t.Fatalf("smoothed delta: neighbour/centre %v, expected %v", r, math.Exp(-2))
	}
}

// TestAnnealedMean: temperature 1 is the plain mean of the centres under
// the softmax; a low temperature tends to the mode.
func TestAnnealedMean(t *testing.T) {
	bins, _ := ColorBins(10)
	rng := rand.New(rand.NewSource(4))
	logits := make([]float64, bins.Len())
	for q := range logits {
		logits[q] = rng.NormFloat64()
	}
	mode := bins.Nearest(40, -30)
	logits[mode] = 6
	var sum, a, b float64
	for q, v := range logits {
		e := math.Exp(v)
		sum, a, b = sum+e, a+e*bins.Centres[q][0], b+e*bins.Centres[q][1]
	}
	ga, gb := bins.AnnealedMean(logits, 1)
	if math.Abs(ga-a/sum) > 1e-9 || math.Abs(gb-b/sum) > 1e-9 {
		t.Fatalf("T=1: (%v, %v), expected the mean (%v, %v)", ga, gb, a/sum, b/sum)
	}
	ma, mb := bins.AnnealedMean(logits, 0.05)
	if math.Hypot(ma-40, mb+30) > 1e-3 {
		t.Fatalf("T=0.05: (%v, %v), expected the mode (40, -30)", ma, mb)
	}
	ta, tb := bins.AnnealedMean(logits, 0.38)
	if d1, d2 := math.Hypot(ta-40, tb+30), math.Hypot(ga-40, gb+30); !(d1 < d2) {
		t.Fatalf("T=0.38 at %v from the mode, T=1 at %v: annealing must move towards it", d1, d2)
	}
}

// TestABAccuracy checks the AuC on closed forms: all errors 0 -> 1, all
// above 150 -> 0, half 0 and half above -> 0.5, all 75 (or 74.5, the
// thresholds are integers) -> 75.5/150 (the curve steps from 0 to 1 at 75;
// the trapezoid on [74, 75] counts half).
func TestABAccuracy(t *testing.T) {
	for _, tc := range []struct {
		errs []float64
		want float64
	}{{[]float64{0, 0}, 1}, {[]float64{151, 1e9, math.NaN()}, 0}, {[]float64{75, 75}, 75.5 / 150}, {[]float64{0, 160}, 0.5}, {[]float64{74.5}, 75.5 / 150}} {
		var a ABAccuracy
		for _, e := range tc.errs {
			a.Add(e)
		}
		if got := a.AuC(); math.Abs(got-tc.want) > 1e-12 || a.Pixels() != len(tc.errs) {
			t.Fatalf("errors %v: AuC %v (%d pixels), expected %v", tc.errs, got, a.Pixels(), tc.want)
		}
	}
}

// colorRef is a plain reference for the loss: dense soft targets, log
// softmax per pixel, weighted, averaged over pixels.
func colorRef(x []float64, st *colorTarget, n, q, hw int) float64 {
	var loss float64
	for i := 0; i < n; i++ {
		for j := 0; j < hw; j++ {
			p := i*hw + j
			zd := make([]float64, q)
			for k := 0; k < st.K; k++ {
				zd[st.Idx[p*st.K+k]] += float64(st.Z[p*st.K+k])
			}
			var lse float64
			for c := 0; c < q; c++ {
				lse += math.Exp(x[(i*q+c)*hw+j])
			}
			lse = math.Log(lse)
			for c := 0; c < q; c++ {
				loss -= float64(st.W[p]) * zd[c] * (x[(i*q+c)*hw+j] - lse)
			}
		}
	}
	return loss / float64(n*hw)
}

// TestColorLossOp checks the rebalanced soft cross-entropy against the
// dense reference, its hit count, and its gradient (through a scale of
// 2.5) against central finite differences; then the errors on bad targets.
func TestColorLossOp(t *testing.T) {
	const n, q, h, w, k = 2, 7, 2, 3, 3
	hw := h * w
	rng := rand.New(rand.NewSource(5))
	st := &colorTarget{K: k, Idx: make([]int32, n*hw*k), Z: make([]float32, n*hw*k), W: make([]float32, n*hw)}
	for p := 0; p < n*hw; p++ {
		perm := rng.Perm(q)
		var s float32
		for j := 0; j < k; j++ {
			st.Idx[p*k+j] = int32(perm[j])
			st.Z[p*k+j] = rng.Float32() + 0.1
			s += st.Z[p*k+j]
		}
		for j := 0; j < k; j++ {
			st.Z[p*k+j] /= s
		}
		st.W[p] = 0.2 + 2*rng.Float32()
	}
	xv := tensor.New(tensor.WithShape(n, q, h, w), tensor.Of(tensor.Float64))
	x := xv.Float64s()
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	xn, loss, dx, vm := lossGraph(t, xv, "x", 2.5, func(x *G.Node) (*G.Node, error) { return colorLoss(x, st) })
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	want := colorRef(x, st, n, q, hw)
	if got := loss.Value().Data().(float64); math.Abs(got-want) > 1e-12*math.Max(1, want) {
		t.Fatalf("loss %v, reference %v", got, want)
	}
	hits := 0
	for p := 0; p < n*hw; p++ {
		i, j := p/hw, p%hw
		best := 0
		for c := 1; c < q; c++ {
			if x[(i*q+c)*hw+j] > x[(i*q+best)*hw+j] {
				best = c
			}
		}
		if best == int(st.Idx[p*k]) {
			hits++
		}
	}
	if st.Hits != hits || st.Count != n*hw {
		t.Fatalf("hits %d of %d, reference %d of %d", st.Hits, st.Count, hits, n*hw)
	}
	analytic := append([]float64(nil), dx.Value().Data().([]float64)...)
	vm.Close()
	const eps = 1e-5
	for i := range x {
		old := x[i]
		x[i] = old + eps
		fp := 2.5 * colorRef(x, st, n, q, hw)
		x[i] = old - eps
		fm := 2.5 * colorRef(x, st, n, q, hw)
		x[i] = old
		num := (fp - fm) / (2 * eps)
		if math.Abs(num-analytic[i]) > 1e-7*math.Max(1, math.Abs(num)) {
			t.Fatalf("d/dx[%d]: analytic %v, finite difference %v", i, analytic[i], num)
		}
	}

	// Bad targets are errors.
	st.Idx[3] = q
	vm2 := G.NewTapeMachine(xn.Graph())
	defer vm2.Close()
	runFails(t, vm2, "target bin out of range")
	st.Idx[3] = 0
	st.W = st.W[:5]
	runFails(t, vm2, "short weights")
}

// colorImage is a picture whose colour is a function of its lightness
// (testenv.ToyTar's rule: (v, v/2, 255-v)) over a random smooth pattern,
// so that ab is predictable from L.
func colorImage(rng *rand.Rand, s int) data.Image {
	img := data.Image{C: 3, H: s, W: s, Pix: make([]uint8, 3*s*s)}
	fx, fy, ph := 1+rng.Float64()*2, 1+rng.Float64()*2, rng.Float64()*6
	for y := 0; y < s; y++ {
		for x := 0; x < s; x++ {
			v := 0.5 + 0.45*math.Sin(fx*float64(x)/float64(s)*math.Pi+fy*float64(y)/float64(s)*math.Pi+ph)
			p := uint8(math.Round(255 * v))
			img.Pix[y*s+x], img.Pix[s*s+y*s+x], img.Pix[2*s*s+y*s+x] = p, p/2, 255-p
		}
	}
	return img
}

func colorImages(n, s int, seed int64) *gradientSet {
	rng := rand.New(rand.NewSource(seed))
	set := &gradientSet{}
	for i := 0; i < n; i++ {
		set.imgs = append(set.imgs, colorImage(rng, s))
	}
	return set
}

func buildColor(t *testing.T, cfg Config, batch int, mode *ops.Mode) (*colorModel, *models.Backbone) {
	t.Helper()
	return buildTask[*colorModel](t, Colorization{}, "resnet20c", cfg.InputChannels(), cfg, batch, nil, mode, rand.New(rand.NewSource(7)))
}

// TestColorizationBatch: Prepare sets the lightness space, its one-value
// statistics and a prior over the bins; the batch holds the normalised
// lightness and the soft-encoded, rebalanced targets of the 4x4 grid
// (resnet20c at 16 px), deterministically under a seed; unprepared
// configs, grey images and malformed batches are errors.
func TestColorizationBatch(t *testing.T) {
	const s = 16
	ds := colorImages(30, s, 1)
	cfg := DefaultConfig(3, s)
	if _, err := (Colorization{}).Build(nil, 2, cfg, nil, nil); err == nil {
		t.Fatal("unprepared config accepted")
	}
	if err := (Colorization{}).Prepare(&Config{Channels: 1, InputSize: s}, ds); err == nil {
		t.Fatal("grey images accepted")
	}
	if err := (Colorization{}).Prepare(&cfg, ds); err != nil {
		t.Fatal(err)
	}
	bins, _ := ColorBins(10)
	if cfg.Input != data.SpaceLabL || cfg.InputChannels() != 1 || len(cfg.Mean) != 1 || len(cfg.Std) != 1 || len(cfg.Colorization.Prior) != bins.Len() {
		t.Fatalf("prepared config: input %q, %d channels, mean %v, std %v, prior of %d", cfg.Input, cfg.InputChannels(), cfg.Mean, cfg.Std, len(cfg.Colorization.Prior))
	}
	wantMean, _, _ := data.LabLStats(ds, data.StatsImages)
	if cfg.Mean[0] != wantMean[0] {
		t.Fatalf("mean %v, LabLStats %v", cfg.Mean, wantMean)
	}
	cfg.NoAugment = true
	m, _ := buildColor(t, cfg, 2, &ops.Mode{})
	if m.side != 4 {
		t.Fatalf("grid %d, expected 4", m.side)
	}
	imgs := []data.Image{ds.imgs[0], ds.imgs[1]}
	b, err := m.MakeBatch(imgs, nil, []int{0, 1}, rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := m.MakeBatch(imgs, nil, []int{0, 1}, rand.New(rand.NewSource(1)))
	for i := range b.Inputs {
		for j := range b.Inputs[i] {
			if b.Inputs[i][j] != b2.Inputs[i][j] {
				t.Fatalf("input %d differs at %d under the same seed", i, j)
			}
		}
	}
	w := RebalanceWeights(cfg.Colorization.Prior, 0.5)
	for i, img := range imgs {
		tt := data.ToTensor(img)
		l := data.ToLabL(tt)
		for p := 0; p < s*s; p++ {
			want := (l.Data[p] - cfg.Mean[0]) / cfg.Std[0]
			if got := b.Inputs[0][i*s*s+p]; math.Abs(float64(got-want)) > 1e-5 {
				t.Fatalf("image %d lightness %d: %v, expected %v", i, p, got, want)
			}
		}
		lab := data.ToLab(tt)
		small := data.Resize(data.Tensor{C: 2, H: s, W: s, Data: lab.Data[s*s:]}, 4, 4)
		for p := 0; p < 16; p++ {
			q := bins.Nearest(float64(small.Data[p]), float64(small.Data[16+p]))
			row := (i*16 + p) * 5
			if int(b.Inputs[1][row]) != q || float32(w[q]) != b.Inputs[3][i*16+p] {
				t.Fatalf("image %d cell %d: first bin %v weight %v, expected %d and %v", i, p, b.Inputs[1][row], b.Inputs[3][i*16+p], q, w[q])
			}
		}
	}
	if err := m.Load(b); err != nil {
		t.Fatal(err)
	}
	b.Inputs[1][0] = 1e6
	if err := m.Load(b); err == nil {
		t.Fatal("bin out of range accepted")
	}
	b.Inputs = b.Inputs[:3]
	if err := m.Load(b); err == nil {
		t.Fatal("batch without weights accepted")
	}
	if _, err := m.MakeBatch([]data.Image{{C: 1, H: s, W: s, Pix: make([]uint8, s*s)}}, nil, []int{0}, rand.New(rand.NewSource(1))); err == nil {
		t.Fatal("grey image accepted")
	}
}

// TestColorizationTrains trains resnet20c with the colorization head on
// 16 px pictures whose colour follows their lightness, with plain SGD, and
// checks that the loss falls and that on held-out pictures
// (Colorization.Evaluate, rebuilt from the snapshotted weights) the ab
// accuracy beats predicting grey, which the untrained model's does not
// clearly; then the picture's layout and columns.
func TestColorizationTrains(t *testing.T) {
	const size, batch, steps = 16, 8, 30
	train := colorImages(128, size, 1)
	held := colorImages(24, size, 99)
	cfg := DefaultConfig(3, size)
	if err := (Colorization{}).Prepare(&cfg, train); err != nil {
		t.Fatal(err)
	}
	m, bb := buildColor(t, cfg, batch, &ops.Mode{Training: true})
	params, grads, vm := trainGraph(t, m, bb)
	score := func() *ColorScore {
		t.Helper()
		sc, err := Colorization{}.Evaluate("resnet20c", bb.Weights(), m.HeadWeights(), cfg, batch, held)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	before := score()
	if before.Images != 24 || before.GreyAuC <= 0 || before.GreyAuC >= 1 {
		t.Fatalf("untrained: %+v", before)
	}
	first, last := sgdSteps(t, m, vm, params, grads, train.imgs, steps, batch, 0.05)
	after := score()
	t.Logf("training loss %.4f -> %.4f; held-out before %+v, after %+v", first, last, before, after)
	if !(last < 0.7*first) || !(after.AuC > after.GreyAuC+0.05) || !(after.AuC > before.AuC) {
		t.Fatalf("after %d steps: loss %.4f -> %.4f, held-out %+v (before %+v)", steps, first, last, after, before)
	}
	checkColorPicture(t, bb, m, cfg, held)
	if _, err := (Colorization{}).Evaluate("resnet20c", bb.Weights(), models.Weights{}, cfg, batch, held); err == nil {
		t.Fatal("evaluation without head weights accepted")
	}
}

// checkColorPicture: three columns per row, the first grey (R = G = B),
// the last the image itself, the middle coloured (not grey).
func checkColorPicture(t *testing.T, bb *models.Backbone, m *colorModel, cfg Config, held *gradientSet) {
	t.Helper()
	pic, err := Colorization{}.Picture("resnet20c", bb.Weights(), m.HeadWeights(), cfg, 8, held, 3)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.InputSize
	z := 96 / s
	cell := z*s + 2
	if b := pic.Bounds(); b.Dx() != 3*cell+2 || b.Dy() != 3*cell+2 {
		t.Fatalf("picture %v, expected %dx%d", b, 3*cell+2, 3*cell+2)
	}
	coloured := 0
	for row := 0; row < 3; row++ {
		img := held.imgs[row]
		for y := 0; y < s; y++ {
			for x := 0; x < s; x++ {
				at := func(col int) [3]int {
					r, g, b, _ := pic.At(2+col*cell+z*x+z/2, 2+row*cell+z*y+z/2).RGBA()
					return [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
				}
				if g := at(0); max(g[0], g[1], g[2])-min(g[0], g[1], g[2]) > 2 {
					t.Fatalf("row %d (%d,%d): grey column %v", row, y, x, g)
				}
				tr := at(2)
				for ch := 0; ch < 3; ch++ {
					if d := tr[ch] - int(img.At(ch, y, x)); d < -1 || d > 1 {
						t.Fatalf("row %d (%d,%d): truth column %v, image %d", row, y, x, tr, img.At(ch, y, x))
					}
				}
				if p := at(1); p[0]-p[2] > 20 || p[2]-p[0] > 20 {
					coloured++
				}
			}
		}
	}
	if coloured < 3*s*s/2 {
		t.Fatalf("only %d of %d predicted pixels coloured", coloured, 3*s*s)
	}
}

// TestSupervisedOnLightness: the supervised task on a colorization config
// (fine-tuning its backbone, `eval lowshot --finetune`) builds on the
// 1-channel backbone and feeds it the normalised lightness of RGB images.
func TestSupervisedOnLightness(t *testing.T) {
	const s = 16
	cfg, ds, m, b := supervisedOn(t, Colorization{}, "resnet20c", 1, s)
	want, _ := data.Normalize(data.ToLabL(data.ToTensor(ds.imgs[1])), cfg.Mean, cfg.Std)
	if len(b.Inputs[0]) != 2*s*s || b.Inputs[0][s*s+5] != want.Data[5] {
		t.Fatalf("%d input values; image 1 value 5 %v, lightness %v", len(b.Inputs[0]), b.Inputs[0][s*s+5], want.Data[5])
	}
	if err := m.Load(b); err != nil {
		t.Fatal(err)
	}
}
