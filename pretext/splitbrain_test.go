package pretext

import (
	"math"
	"math/rand"
	"slices"
	"sort"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// TestLBins: 20 bins of width 5 cover [0, 100]: every lightness (random,
// and the ends) lies in the cell of its nearest bin, every centre is its
// own nearest bin; widths that do not divide 100 into 2 to 100 bins are
// refused.
func TestLBins(t *testing.T) {
	b, err := NewLBins(5)
	if err != nil {
		t.Fatal(err)
	}
	if b.Len() != 20 || b.Centre(0) != 2.5 || b.Centre(19) != 97.5 {
		t.Fatalf("%d bins, centres %v .. %v", b.Len(), b.Centre(0), b.Centre(19))
	}
	rng := rand.New(rand.NewSource(1))
	ls := []float64{0, 100, 5, 99.999, 50}
	for i := 0; i < 5000; i++ {
		ls = append(ls, 100*rng.Float64())
	}
	hit := make([]bool, b.Len())
	for _, l := range ls {
		k := b.Nearest(l)
		if math.Abs(b.Centre(k)-l) > 2.5+1e-9 {
			t.Fatalf("L %v outside the cell of its bin %d (centre %v)", l, k, b.Centre(k))
		}
		hit[k] = true
	}
	for k := range hit {
		if !hit[k] || b.Nearest(b.Centre(k)) != k {
			t.Fatalf("bin %d: hit %v, nearest of its centre %d", k, hit[k], b.Nearest(b.Centre(k)))
		}
	}
	if b.Nearest(-3) != 0 || b.Nearest(104) != 19 {
		t.Fatal("lightness outside [0, 100] not clamped")
	}
	if b100, err := NewLBins(1); err != nil || b100.Len() != 100 {
		t.Fatalf("width 1 (the paper's 100 bins): %v, %v", b100.Len(), err)
	}
	for _, g := range []float64{0, -5, 3, 50.5, 100, 0.5} {
		if _, err := NewLBins(g); err == nil {
			t.Errorf("width %v accepted", g)
		}
	}
}

// lEncodeRef is the plain L target: all bins sorted by distance to l
// (ties to the lower bin), the first k, Gaussian weights normalised.
func lEncodeRef(b LBins, l, sigma float64, k int) ([]int32, []float64) {
	order := make([]int, b.Len())
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool {
		return math.Abs(b.Centre(order[i])-l) < math.Abs(b.Centre(order[j])-l)
	})
	if k == 1 { // the hard target: the bin holding l
		return []int32{int32(b.Nearest(l))}, []float64{1}
	}
	idx, z := make([]int32, k), make([]float64, k)
	var sum float64
	for j := 0; j < k; j++ {
		d := b.Centre(order[j]) - l
		idx[j], z[j] = int32(order[j]), math.Exp(-d*d/(2*sigma*sigma))
		sum += z[j]
	}
	for j := range z {
		z[j] /= sum
	}
	return idx, z
}

// TestLBinsEncode: the soft L targets (3 nearest bins, sigma 2.5; and 5
// at sigma 4) and the hard one (1 bin) against the plain reference, at
// random lightness values and at the ends of the range.
func TestLBinsEncode(t *testing.T) {
	b, _ := NewLBins(5)
	rng := rand.New(rand.NewSource(2))
	for _, c := range []struct {
		k     int
		sigma float64
	}{{3, 2.5}, {5, 4}, {1, 2.5}, {20, 10}} {
		for i := 0; i < 500; i++ {
			l := 100 * rng.Float64()
			switch i {
			case 0:
				l = 0
			case 1:
				l = 100
			case 2:
				l = 1
			}
			idx, z := make([]int32, c.k), make([]float32, c.k)
			b.Encode(l, c.sigma, idx, z)
			wi, wz := lEncodeRef(b, l, c.sigma, c.k)
			if idx[0] != int32(b.Nearest(l)) {
				t.Fatalf("k %d, L %v: first bin %d, nearest %d", c.k, l, idx[0], b.Nearest(l))
			}
			var sum float64
			for j := range z {
				if j > 0 && math.Abs(b.Centre(int(idx[j]))-l) < math.Abs(b.Centre(int(idx[j-1]))-l)-1e-12 {
					t.Fatalf("k %d, L %v: bins %v not nearest first", c.k, l, idx)
				}
				sum += float64(z[j])
				pos := slices.Index(wi, idx[j])
				if pos < 0 || math.Abs(float64(z[j])-wz[pos]) > 1e-6 {
					t.Fatalf("k %d, L %v: bin %d weight %v, reference %v (bins %v)", c.k, l, idx[j], z[j], wz, wi)
				}
			}
			if math.Abs(sum-1) > 1e-5 {
				t.Fatalf("weights sum to %v", sum)
			}
		}
	}
	peaked := make([]float64, 20)
	peaked[3] = 50
	if m := b.AnnealedMean(peaked, 0.01); math.Abs(m-b.Centre(3)) > 1e-9 {
		t.Fatalf("annealed mean of a peaked distribution %v, expected %v", m, b.Centre(3))
	}
	if m := b.AnnealedMean(make([]float64, 20), 0.38); math.Abs(m-50) > 1e-9 {
		t.Fatalf("annealed mean of the uniform distribution %v, expected 50", m)
	}
}

func buildSplit(t *testing.T, cfg Config, batch int, mode *ops.Mode, seed int64) (*splitModel, *models.Backbone) {
	t.Helper()
	return buildTask[*splitModel](t, SplitBrain{}, "resnet20c-split", cfg.InputChannels(), cfg, batch, nil, mode, rand.New(rand.NewSource(seed)))
}

// TestSplitBrainBatch: Prepare sets the lab space with its three
// statistics and the ab prior; the batch holds the normalised Lab image
// (channel 0 the lightness, 1-2 a and b) and the targets of the 4x4 grid
// (resnet20c-split at 16 px): the ab targets as colorization's, the L
// targets the soft encoding of the grid's lightness, deterministically
// under a seed and differently under another; the task needs the split
// form of the architecture (Arch gives it); unprepared configs, grey
// images and malformed batches are errors.
func TestSplitBrainBatch(t *testing.T) {
	const s = 16
	ds := colorImages(30, s, 1)
	cfg := DefaultConfig(3, s)
	if _, err := (SplitBrain{}).Build(nil, 2, cfg, nil, nil); err == nil {
		t.Fatal("unprepared config accepted")
	}
	if err := (SplitBrain{}).Prepare(&Config{Channels: 1, InputSize: s}, ds); err == nil {
		t.Fatal("grey images accepted")
	}
	if err := (SplitBrain{}).Prepare(&cfg, ds); err != nil {
		t.Fatal(err)
	}
	bins, _ := ColorBins(10)
	mean, std, _ := data.LabStats(ds, data.StatsImages)
	if cfg.Input != data.SpaceLab || cfg.InputChannels() != 3 || !slices.Equal(cfg.Mean, mean) || !slices.Equal(cfg.Std, std) ||
		cfg.SplitBrain == nil || len(cfg.SplitBrain.AB.Prior) != bins.Len() || cfg.SplitBrain.LGrid != 5 {
		t.Fatalf("prepared config: input %q, %d channels, mean %v, std %v, split-brain %+v", cfg.Input, cfg.InputChannels(), cfg.Mean, cfg.Std, cfg.SplitBrain)
	}
	for _, c := range []struct{ in, want string }{{"resnet20c", "resnet20c-split"}, {"resnet20c-split", "resnet20c-split"}, {"resnet18", "resnet18-split"}} {
		if got, err := (SplitBrain{}).Arch(c.in); err != nil || got != c.want {
			t.Fatalf("Arch(%s) = %s, %v", c.in, got, err)
		}
	}
	plain, _ := models.New("resnet20c", 3)
	pbb, _ := models.NewBackbone(G.NewGraph(), plain, models.InitWeights(plain, rand.New(rand.NewSource(1))), tensor.Float32, &ops.Mode{})
	if _, err := (SplitBrain{}).Build(pbb, 2, cfg, nil, rand.New(rand.NewSource(1))); err == nil {
		t.Fatal("a backbone that is not split accepted")
	}

	m, _ := buildSplit(t, cfg, 2, &ops.Mode{}, 7)
	if m.side != 4 || m.ab.q != 261 || m.l.q != 20 || m.ab.tap != "l.stage3" || m.l.tap != "ab.stage3" {
		t.Fatalf("grid %d, %d ab bins from %s, %d L bins from %s", m.side, m.ab.q, m.ab.tap, m.l.q, m.l.tap)
	}
	imgs := []data.Image{ds.imgs[0], ds.imgs[1]}
	make1 := func(c Config, seed int64) *Batch {
		t.Helper()
		mm := *m
		mm.cfg = c
		b, err := mm.MakeBatch(imgs, nil, []int{0, 1}, rand.New(rand.NewSource(seed)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	aug := make1(cfg, 1)
	if b2 := make1(cfg, 1); !equalInputs(aug, b2) {
		t.Fatal("the batch differs under the same seed")
	}
	if b3 := make1(cfg, 2); equalInputs(aug, b3) {
		t.Fatal("the batch is the same under another seed")
	}
	plainCfg := cfg
	plainCfg.NoAugment = true
	b := make1(plainCfg, 1)
	for i, n := range []int{2 * 3 * s * s, 2 * 16 * 5, 2 * 16 * 5, 2 * 16, 2 * 16 * 3, 2 * 16 * 3} {
		if len(b.Inputs[i]) != n {
			t.Fatalf("input %d has %d values, expected %d", i, len(b.Inputs[i]), n)
		}
	}
	w := RebalanceWeights(cfg.SplitBrain.AB.Prior, 0.5)
	lb, _ := NewLBins(5)
	for i, img := range imgs {
		tt := data.ToTensor(img)
		lab := data.ToLab(tt)
		// The Lab -> (L, ab) split: channel 0 the normalised L*/100,
		// channels 1 and 2 a* and b* over 100.
		for c := 0; c < 3; c++ {
			for p := 0; p < s*s; p++ {
				want := (lab.Data[c*s*s+p]/data.LabScale - cfg.Mean[c]) / cfg.Std[c]
				if got := b.Inputs[0][(i*3+c)*s*s+p]; math.Abs(float64(got-want)) > 1e-4 {
					t.Fatalf("image %d channel %d pixel %d: %v, expected %v", i, c, p, got, want)
				}
			}
		}
		small := data.Resize(lab, 4, 4)
		for p := 0; p < 16; p++ {
			q := bins.Nearest(float64(small.Data[16+p]), float64(small.Data[32+p]))
			row := (i*16 + p)
			if int(b.Inputs[1][row*5]) != q || float32(w[q]) != b.Inputs[3][row] {
				t.Fatalf("image %d cell %d: first ab bin %v weight %v, expected %d and %v", i, p, b.Inputs[1][row*5], b.Inputs[3][row], q, w[q])
			}
			wi, wz := lEncodeRef(lb, float64(small.Data[p]), 2.5, 3)
			for j := 0; j < 3; j++ {
				k := slices.Index(wi, int32(b.Inputs[4][row*3+j]))
				if k < 0 || math.Abs(float64(b.Inputs[5][row*3+j])-wz[k]) > 1e-6 {
					t.Fatalf("image %d cell %d (L %v): L bins %v weights %v, reference %v %v", i, p, small.Data[p], b.Inputs[4][row*3:row*3+3], b.Inputs[5][row*3:row*3+3], wi, wz)
				}
			}
		}
	}
	if err := m.Load(b); err != nil {
		t.Fatal(err)
	}
	b.Inputs[4][0] = 20
	if err := m.Load(b); err == nil {
		t.Fatal("L bin out of range accepted")
	}
	b.Inputs = b.Inputs[:5]
	if err := m.Load(b); err == nil {
		t.Fatal("batch without L weights accepted")
	}
	if _, err := m.MakeBatch([]data.Image{{C: 1, H: s, W: s, Pix: make([]uint8, s*s)}}, nil, []int{0}, rand.New(rand.NewSource(1))); err == nil {
		t.Fatal("grey image accepted")
	}
}

func equalInputs(a, b *Batch) bool {
	for i := range a.Inputs {
		if !slices.Equal(a.Inputs[i], b.Inputs[i]) {
			return false
		}
	}
	return true
}

// TestSplitBrainHalvesSeeTheirChannels: the L half's map (what the ab
// decoder reads) depends on the lightness channel only, the ab half's on
// the colour channels only.
func TestSplitBrainHalvesSeeTheirChannels(t *testing.T) {
	spec, _ := models.New("resnet20c-split", 3)
	w := models.InitWeights(spec, rand.New(rand.NewSource(3)))
	const n, s = 1, 8
	rng := rand.New(rand.NewSource(4))
	x := make([]float32, n*3*s*s)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	run := func(x []float32) map[string]models.Tensor {
		r, err := models.Reference(spec, w, x, n, s, s, []string{"l.stage3", "ab.stage3"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	base := run(x)
	for c := 0; c < 3; c++ {
		y := append([]float32(nil), x...)
		for p := 0; p < s*s; p++ {
			y[c*s*s+p] += 1
		}
		r := run(y)
		lSame, abSame := slices.Equal(r["l.stage3"].Data, base["l.stage3"].Data), slices.Equal(r["ab.stage3"].Data, base["ab.stage3"].Data)
		if c == 0 && (lSame || !abSame) || c > 0 && (!lSame || abSame) {
			t.Fatalf("changing channel %d: L half unchanged %v, ab half unchanged %v", c, lSame, abSame)
		}
	}
}

// TestSplitBrainLoss: the model's loss equals a plain reference built
// from scratch: the halves' maps from models.Reference (the ab decoder on
// the L half, the L decoder on the ab half), the 1x1 decoders by hand and
// the soft cross-entropies (the ab one rebalanced) of the batch's
// targets; the metrics are the halves' nearest-bin hits.
func TestSplitBrainLoss(t *testing.T) {
	const s, batch = 16, 3
	ds := colorImages(12, s, 5)
	cfg := DefaultConfig(3, s)
	if err := (SplitBrain{}).Prepare(&cfg, ds); err != nil {
		t.Fatal(err)
	}
	m, bb := buildSplit(t, cfg, batch, &ops.Mode{}, 9)
	// Non-zero decoder biases.
	rng := rand.New(rand.NewSource(6))
	for _, h := range []*splitHead{m.ab, m.l} {
		for i, b := range h.b.Value().Data().([]float32) {
			h.b.Value().Data().([]float32)[i] = b + float32(rng.NormFloat64())
		}
	}
	b, err := m.MakeBatch(ds.imgs[:batch], nil, make([]int, batch), rand.New(rand.NewSource(3)))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(b); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(bb.Graph)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	got := float64(m.Loss().Value().Data().(float32))
	maps, err := models.Reference(bb.Spec, bb.Weights(), b.Inputs[0], batch, s, s, []string{"l.stage3", "ab.stage3"})
	if err != nil {
		t.Fatal(err)
	}
	g := m.side * m.side
	var want float64
	hits := map[string]int{}
	for _, c := range []struct {
		name, tap string
		h         *splitHead
		idx, z, w []float32
		k         int
	}{
		{"ab", "l.stage3", m.ab, b.Inputs[1], b.Inputs[2], b.Inputs[3], 5},
		{"l", "ab.stage3", m.l, b.Inputs[4], b.Inputs[5], nil, 3},
	} {
		x := maps[c.tap]
		ch := x.Shape[1]
		wt, bias := c.h.w.Value().Data().([]float32), c.h.b.Value().Data().([]float32)
		var loss float64
		for i := 0; i < batch; i++ {
			for p := 0; p < g; p++ {
				logit := make([]float64, c.h.q)
				best := 0
				for q := range logit {
					v := float64(bias[q])
					for k := 0; k < ch; k++ {
						v += float64(wt[q*ch+k]) * float64(x.Data[(i*ch+k)*g+p])
					}
					logit[q] = v
					if v > logit[best] {
						best = q
					}
				}
				var lse float64
				for _, v := range logit {
					lse += math.Exp(v)
				}
				lse = math.Log(lse)
				cell := i*g + p
				pw := 1.0
				if c.w != nil {
					pw = float64(c.w[cell])
				}
				for j := 0; j < c.k; j++ {
					loss -= pw * float64(c.z[cell*c.k+j]) * (logit[int(c.idx[cell*c.k+j])] - lse)
				}
				if best == int(c.idx[cell*c.k]) {
					hits[c.name]++
				}
			}
		}
		want += loss / float64(batch*g)
	}
	if math.Abs(got-want) > 1e-4*math.Max(1, want) {
		t.Fatalf("loss %v, reference %v", got, want)
	}
	mt := m.Metrics()
	if mt["ab_acc"] != float64(hits["ab"])/float64(batch*g) || mt["l_acc"] != float64(hits["l"])/float64(batch*g) || mt["pretext_acc"] != (mt["ab_acc"]+mt["l_acc"])/2 {
		t.Fatalf("metrics %v, reference hits %v of %d", mt, hits, batch*g)
	}
	t.Logf("loss %.5f (reference %.5f), metrics %v", got, want, mt)
}

// TestSplitBrainTrains trains resnet20c-split on 16 px pictures whose
// colour follows their lightness (so each half can predict the other's
// channels), with plain SGD: the loss falls, and on held-out pictures
// (Evaluate, rebuilt from the snapshotted weights) the ab accuracy beats
// predicting grey and the L error beats predicting the mean lightness,
// better than before training; both halves' decoders learn.
func TestSplitBrainTrains(t *testing.T) {
	const size, batch, steps = 16, 8, 30
	train := colorImages(128, size, 1)
	held := colorImages(24, size, 99)
	cfg := DefaultConfig(3, size)
	if err := (SplitBrain{}).Prepare(&cfg, train); err != nil {
		t.Fatal(err)
	}
	m, bb := buildSplit(t, cfg, batch, &ops.Mode{Training: true}, 7)
	params, grads, vm := trainGraph(t, m, bb)
	score := func() *SplitScore {
		t.Helper()
		sc, err := SplitBrain{}.Evaluate("resnet20c", bb.Weights(), m.HeadWeights(), cfg, batch, held)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	before := score()
	if before.Images != 24 || before.GreyAuC <= 0 || before.GreyAuC >= 1 || !(before.LErrorMean > 0) {
		t.Fatalf("untrained: %+v", before)
	}
	headsBefore := m.HeadWeights()
	first, last := sgdSteps(t, m, vm, params, grads, train.imgs, steps, batch, 0.05)
	after := score()
	t.Logf("training loss %.4f -> %.4f; held-out before %+v, after %+v", first, last, before, after)
	if !(last < 0.7*first) || !(after.AuC > after.GreyAuC+0.05) || !(after.AuC > before.AuC) ||
		!(after.LError < 0.8*after.LErrorMean) || !(after.LError < before.LError) {
		t.Fatalf("after %d steps: loss %.4f -> %.4f, held-out %+v (before %+v)", steps, first, last, after, before)
	}
	for name, w := range m.HeadWeights() {
		if slices.Equal(w.Data, headsBefore[name].Data) {
			t.Errorf("decoder weight %s did not move", name)
		}
	}
	if _, err := (SplitBrain{}).Evaluate("resnet20c", bb.Weights(), models.Weights{}, cfg, batch, held); err == nil {
		t.Fatal("evaluation without head weights accepted")
	}
	checkSplitPicture(t, bb, m, cfg, held)
}

// checkSplitPicture: four columns per row, the first grey (R = G = B),
// the last the image itself, the two predictions coloured (not grey).
func checkSplitPicture(t *testing.T, bb *models.Backbone, m *splitModel, cfg Config, held *gradientSet) {
	t.Helper()
	pic, err := SplitBrain{}.Picture("resnet20c-split", bb.Weights(), m.HeadWeights(), cfg, 8, held, 3)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.InputSize
	z := 96 / s
	cell := z*s + 2
	if b := pic.Bounds(); b.Dx() != 4*cell+2 || b.Dy() != 3*cell+2 {
		t.Fatalf("picture %v, expected %dx%d", b, 4*cell+2, 3*cell+2)
	}
	coloured := [4]int{}
	for row := 0; row < 3; row++ {
		img := held.imgs[row]
		for y := 0; y < s; y++ {
			for x := 0; x < s; x++ {
				for col := 0; col < 4; col++ {
					r, g, b, _ := pic.At(2+col*cell+z*x+z/2, 2+row*cell+z*y+z/2).RGBA()
					c := [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
					if max(c[0], c[1], c[2])-min(c[0], c[1], c[2]) > 20 {
						coloured[col]++
					}
					if col == 0 && max(c[0], c[1], c[2])-min(c[0], c[1], c[2]) > 2 {
						t.Fatalf("row %d (%d,%d): grey column %v", row, y, x, c)
					}
					for ch := 0; col == 3 && ch < 3; ch++ {
						if d := c[ch] - int(img.At(ch, y, x)); d < -1 || d > 1 {
							t.Fatalf("row %d (%d,%d): truth column %v, image %d", row, y, x, c, img.At(ch, y, x))
						}
					}
				}
			}
		}
	}
	if coloured[1] < 3*s*s/2 || coloured[2] < 3*s*s/2 {
		t.Fatalf("coloured pixels by column %v of %d", coloured, 3*s*s)
	}
}

// TestSupervisedOnLab: the supervised task on a splitbrain config
// (fine-tuning its backbone, `eval lowshot --finetune`) builds on the
// split backbone and feeds it the normalised Lab values of RGB images.
func TestSupervisedOnLab(t *testing.T) {
	const s = 16
	cfg, ds, m, b := supervisedOn(t, SplitBrain{}, "resnet20c-split", 3, s)
	want, _ := data.Normalize(data.ToLabSpace(data.ToTensor(ds.imgs[1])), cfg.Mean, cfg.Std)
	if len(b.Inputs[0]) != 2*3*s*s || !slices.Equal(b.Inputs[0][3*s*s:], want.Data) {
		t.Fatalf("%d input values; image 1 is not its normalised Lab", len(b.Inputs[0]))
	}
	if err := m.Load(b); err != nil {
		t.Fatal(err)
	}
}
