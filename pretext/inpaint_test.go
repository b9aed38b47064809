package pretext

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// inpaintRef is a plain reference for the masked L2 loss: crop the
// central r x r window (offset floor((P-r)/2)) of p [n, c, P, P], then the
// weighted mean of squared differences with t [n, c, r, r] and weights w
// [n, r, r], divided by c * sum(w).
func inpaintRef(p []float64, t, w []float32, n, c, side, r int) float64 {
	o := (side - r) / 2
	crop := make([]float64, 0, n*c*r*r)
	for i := 0; i < n; i++ {
		for ch := 0; ch < c; ch++ {
			for y := 0; y < r; y++ {
				for x := 0; x < r; x++ {
					crop = append(crop, p[((i*c+ch)*side+y+o)*side+x+o])
				}
			}
		}
	}
	var num, den float64
	for k, v := range crop {
		i, pix := k/(c*r*r), k%(r*r)
		wt := float64(w[i*r*r+pix])
		d := v - float64(t[k])
		num += wt * d * d
	}
	for _, v := range w {
		den += float64(v)
	}
	return num / (float64(c) * den)
}

// TestInpaintLossOp checks the masked L2 op's value and hole statistics
// against plain references, and its gradient (through a scale of 2.5, so
// the seed is used) against central finite differences, for a
// prediction larger than the region by an even and an odd margin.
func TestInpaintLossOp(t *testing.T) {
	for _, tc := range []struct{ n, c, side, r int }{{2, 3, 6, 4}, {3, 2, 7, 4}, {2, 1, 5, 5}} {
		rng := rand.New(rand.NewSource(int64(tc.side)))
		n, c, side, r := tc.n, tc.c, tc.side, tc.r
		st := &inpaintTarget{T: make([]float32, n*c*r*r), W: make([]float32, n*r*r), Hole: make([]float32, n*r*r), Tol: make([]float64, c)}
		for i := range st.T {
			st.T[i] = float32(rng.NormFloat64())
		}
		for i := range st.W {
			switch rng.Intn(3) {
			case 0: // outside the loss
			case 1:
				st.W[i], st.Hole[i] = 1, 1
			default: // an overlap border pixel
				st.W[i] = 10
			}
		}
		st.W[0], st.Hole[0] = 1, 1
		for ch := range st.Tol {
			st.Tol[ch] = 0.6 + 0.2*float64(ch)
		}
		pv := tensor.New(tensor.WithShape(n, c, side, side), tensor.Of(tensor.Float64))
		for i := range pv.Float64s() {
			pv.Float64s()[i] = rng.NormFloat64()
		}
		_, loss, dp, vm := lossGraph(t, pv, "p", 2.5, func(p *G.Node) (*G.Node, error) { return inpaintLoss(p, st, r) })
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		want := inpaintRef(pv.Float64s(), st.T, st.W, n, c, side, r)
		if got := loss.Value().Data().(float64); math.Abs(got-want) > 1e-12*math.Max(1, want) {
			t.Fatalf("%+v: loss %v, reference %v", tc, got, want)
		}
		// Hole statistics.
		o := (side - r) / 2
		var sse, sst float64
		count, hits := 0, 0
		for i := 0; i < n; i++ {
			for ch := 0; ch < c; ch++ {
				for y := 0; y < r; y++ {
					for x := 0; x < r; x++ {
						if st.Hole[(i*r+y)*r+x] == 0 {
							continue
						}
						tv := float64(st.T[((i*c+ch)*r+y)*r+x])
						d := pv.Float64s()[((i*c+ch)*side+y+o)*side+x+o] - tv
						sse, sst, count = sse+d*d, sst+tv*tv, count+1
						if math.Abs(d) <= st.Tol[ch] {
							hits++
						}
					}
				}
			}
		}
		if count != st.Count || hits != st.Hits || math.Abs(sse-st.SSE) > 1e-9 || math.Abs(sst-st.SST) > 1e-9 {
			t.Fatalf("%+v: stats count %d hits %d sse %v sst %v, reference %d %d %v %v", tc, st.Count, st.Hits, st.SSE, st.SST, count, hits, sse, sst)
		}
		if count == 0 || hits == 0 || hits == count {
			t.Fatalf("%+v: degenerate test data: %d hits of %d", tc, hits, count)
		}
		analytic := append([]float64(nil), dp.Value().Data().([]float64)...)
		vm.Close()
		const h = 1e-5
		x := pv.Float64s()
		nonzero := 0
		for i := range x {
			old := x[i]
			x[i] = old + h
			fp := 2.5 * inpaintRef(x, st.T, st.W, n, c, side, r)
			x[i] = old - h
			fm := 2.5 * inpaintRef(x, st.T, st.W, n, c, side, r)
			x[i] = old
			num := (fp - fm) / (2 * h)
			if math.Abs(num-analytic[i]) > 1e-6*math.Max(1, math.Abs(num)) {
				t.Fatalf("%+v: d/dp[%d]: analytic %v, finite difference %v", tc, i, analytic[i], num)
			}
			if analytic[i] != 0 {
				nonzero++
			}
		}
		if nonzero == 0 {
			t.Fatalf("%+v: gradient is all zero", tc)
		}
	}
}

// TestInpaintLossErrors: wrong buffer sizes and all-zero weights are
// errors, not silent zeros.
func TestInpaintLossErrors(t *testing.T) {
	g := G.NewGraph()
	p := G.NewTensor(g, tensor.Float32, 4, G.WithShape(1, 1, 4, 4), G.WithValue(tensor.New(tensor.WithShape(1, 1, 4, 4), tensor.Of(tensor.Float32))))
	if _, err := inpaintLoss(p, &inpaintTarget{}, 5); err == nil {
		t.Fatal("region larger than the prediction accepted")
	}
	st := &inpaintTarget{T: make([]float32, 4), W: make([]float32, 4), Hole: make([]float32, 4)}
	loss, err := inpaintLoss(p, st, 2)
	if err != nil {
		t.Fatal(err)
	}
	_ = loss
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	runFails(t, vm, "all-zero weights")
	st.W[1] = 1
	st.T = st.T[:3]
	runFails(t, vm, "short target")
}

// TestInpaintGeometry checks the center hole (half the side, a quarter of
// the area, centred), the overlap region around it, and random-block
// masks (coverage at least the asked fraction and under it plus one block,
// reproducible from the seed).
func TestInpaintGeometry(t *testing.T) {
	c := DefaultInpaintConfig()
	for _, s := range []int{32, 28, 224, 15} {
		g, err := c.Geometry(s)
		if err != nil {
			t.Fatal(err)
		}
		if g.Hole != s/2 || g.Region != g.Hole || g.HoleTop != (s-s/2)/2 || g.Top != g.HoleTop || g.Left != g.HoleLeft {
			t.Fatalf("size %d: %+v", s, g)
		}
		// Centred: the margins differ by at most one pixel.
		if m1, m2 := g.HoleTop, s-g.HoleTop-g.Hole; m1 < 0 || m2 < 0 || m2-m1 > 1 || m1 > m2 {
			t.Fatalf("size %d: margins %d, %d", s, m1, m2)
		}
	}
	if g, _ := c.Geometry(32); g.Hole*g.Hole*4 != 32*32 || g.HoleTop != 8 {
		t.Fatalf("32 px: %+v, expected a 16 px hole at 8", g)
	}
	c.Overlap = 2
	g, err := c.Geometry(32)
	if err != nil {
		t.Fatal(err)
	}
	if g.Region != 20 || g.Top != 6 || g.Hole != 16 || g.HoleTop != 8 {
		t.Fatalf("overlap 2: %+v", g)
	}
	c.Overlap = 9
	if _, err := c.Geometry(32); err == nil {
		t.Fatal("overlap past the image edge accepted")
	}

	c = DefaultInpaintConfig()
	c.Mask = InpaintMaskRandomBlock
	if g, _ := c.Geometry(32); g.Region != 32 || g.Top != 0 {
		t.Fatalf("random-block geometry %+v", g)
	}
	for seed := int64(1); seed <= 20; seed++ {
		m := c.Blocks(32, rand.New(rand.NewSource(seed)))
		covered := 0
		for _, v := range m {
			if v != 0 && v != 1 {
				t.Fatalf("mask value %v", v)
			}
			covered += int(v)
		}
		if covered < 256 || covered >= 256+64 {
			t.Fatalf("seed %d: %d of 1024 pixels covered, expected [256, 320)", seed, covered)
		}
		m2 := c.Blocks(32, rand.New(rand.NewSource(seed)))
		for i := range m {
			if m[i] != m2[i] {
				t.Fatalf("seed %d: masks differ at %d", seed, i)
			}
		}
	}
	if err := (InpaintConfig{Mask: "ring"}).Resolve().Validate(); err == nil {
		t.Fatal("unknown mask accepted")
	}
	if err := (InpaintConfig{Mask: InpaintMaskRandomBlock, Overlap: 2}).Resolve().Validate(); err == nil {
		t.Fatal("overlap with random blocks accepted")
	}
	if k, side, err := InpaintUpsamplings(4, 14); err != nil || k != 2 || side != 16 {
		t.Fatalf("4 -> 14: k %d side %d err %v", k, side, err)
	}
	if _, _, err := InpaintUpsamplings(8, 4); err == nil {
		t.Fatal("map larger than the region accepted")
	}
}

// gradientImage is a smooth image: per-channel base colour plus a
// horizontal ramp, so the centre is predictable from its context.
func gradientImage(rng *rand.Rand, s int) data.Image {
	img := data.Image{C: 3, H: s, W: s, Pix: make([]uint8, 3*s*s)}
	for ch := 0; ch < 3; ch++ {
		base, slope := 0.2+0.6*rng.Float64(), 0.6*(rng.Float64()-0.5)
		for y := 0; y < s; y++ {
			for x := 0; x < s; x++ {
				v := base + slope*(float64(x)-float64(s-1)/2)/float64(s)
				img.Pix[(ch*s+y)*s+x] = uint8(math.Round(255 * math.Max(0, math.Min(1, v))))
			}
		}
	}
	return img
}

func buildInpaint(t *testing.T, task Inpaint, arch string, cfg Config, batch int, heads models.Weights, mode *ops.Mode) (*inpaintModel, *models.Backbone) {
	t.Helper()
	return buildTask[*inpaintModel](t, task, arch, cfg.Channels, cfg, batch, heads, mode, rand.New(rand.NewSource(7)))
}

// TestInpaintBatch checks MakeBatch against the plain pipeline: the view
// equals the normalised image except on the hole, where it is 0; the
// target is the clean region; weights and hole mark the right pixels.
func TestInpaintBatch(t *testing.T) {
	cfg := DefaultConfig(3, 16)
	cfg.NoAugment = true
	task := Inpaint{Config: DefaultInpaintConfig()}
	task.Config.Overlap = 1
	m, _ := buildInpaint(t, task, "resnet20c", cfg, 2, nil, &ops.Mode{})
	rng := rand.New(rand.NewSource(3))
	imgs := []data.Image{gradientImage(rng, 16), gradientImage(rng, 16)}
	b, err := m.MakeBatch(imgs, nil, []int{0, 1}, rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	const s, r, top, hole = 16, 10, 3, 8 // hole 8 at 4, region 10 at 3
	if g := m.geo; g.Region != r || g.Top != top || g.Hole != hole || g.HoleTop != 4 {
		t.Fatalf("geometry %+v", g)
	}
	for i, img := range imgs {
		v, err := data.Normalize(data.ToTensor(img), cfg.Mean, cfg.Std)
		if err != nil {
			t.Fatal(err)
		}
		holes := 0
		for ch := 0; ch < 3; ch++ {
			for y := 0; y < s; y++ {
				for x := 0; x < s; x++ {
					inHole := y >= 4 && y < 12 && x >= 4 && x < 12
					got := b.Inputs[0][((i*3+ch)*s+y)*s+x]
					want := v.At(ch, y, x)
					if inHole {
						want = 0
						holes++
					}
					if got != want {
						t.Fatalf("image %d view[%d,%d,%d] = %v, expected %v", i, ch, y, x, got, want)
					}
				}
			}
			for y := 0; y < r; y++ {
				for x := 0; x < r; x++ {
					if got, want := b.Inputs[1][((i*3+ch)*r+y)*r+x], v.At(ch, top+y, top+x); got != want {
						t.Fatalf("image %d target[%d,%d,%d] = %v, expected %v", i, ch, y, x, got, want)
					}
				}
			}
		}
		if holes != 3*s*s/4 {
			t.Fatalf("%d blanked values, expected a quarter of %d", holes, 3*s*s)
		}
		for y := 0; y < r; y++ {
			for x := 0; x < r; x++ {
				inner := y >= 1 && y < r-1 && x >= 1 && x < r-1
				hw, ww := b.Inputs[3][(i*r+y)*r+x], b.Inputs[2][(i*r+y)*r+x]
				if inner && (hw != 1 || ww != 1) || !inner && (hw != 0 || ww != 10) {
					t.Fatalf("image %d (%d,%d): hole %v weight %v", i, y, x, hw, ww)
				}
			}
		}
	}
	if err := m.Load(b); err != nil {
		t.Fatal(err)
	}
	b.Inputs = b.Inputs[:3]
	if err := m.Load(b); err == nil {
		t.Fatal("batch without hole accepted")
	}
}

// TestInpaintDecoderShapes builds the task on resnet20c and resnet18c at
// 32 px (CIFAR) and resnet18c at 28 px (MNIST), with both masks, runs a
// forward pass and checks the prediction's shape, the loss window and
// that loss and metrics are finite, with the untrained loss near the
// mean baseline.
func TestInpaintDecoderShapes(t *testing.T) {
	for _, tc := range []struct {
		arch       string
		size       int
		mask       string
		overlap    int
		ups, pside int // up-convolutions, prediction side
		region     int
	}{
		{"resnet20c", 32, InpaintMaskCenter, 0, 1, 16, 16},
		{"resnet18c", 32, InpaintMaskCenter, 0, 2, 16, 16},
		{"resnet20c", 32, InpaintMaskCenter, 2, 2, 32, 20},
		{"resnet20c", 32, InpaintMaskRandomBlock, 0, 2, 32, 32},
		{"resnet18c", 28, InpaintMaskCenter, 0, 2, 16, 14},
	} {
		if testing.Short() && tc.arch == "resnet18c" && tc.size == 28 {
			continue
		}
		cfg := DefaultConfig(3, tc.size)
		ic := DefaultInpaintConfig()
		ic.Mask, ic.Overlap, ic.Width = tc.mask, tc.overlap, 32
		m, bb := buildInpaint(t, Inpaint{Config: ic}, tc.arch, cfg, 2, nil, &ops.Mode{Training: true})
		if got := m.pred.Shape(); !got.Eq(tensor.Shape{2, 3, tc.pside, tc.pside}) || m.geo.Region != tc.region {
			t.Fatalf("%+v: prediction %v, region %d", tc, got, m.geo.Region)
		}
		ups := 0
		for _, p := range m.params {
			if p.Dims() == 4 && p.Shape()[2] == 4 {
				ups++
			}
		}
		if ups != tc.ups {
			t.Fatalf("%+v: %d up-convolutions", tc, ups)
		}
		rng := rand.New(rand.NewSource(2))
		b, err := m.MakeBatch([]data.Image{gradientImage(rng, tc.size), gradientImage(rng, tc.size)}, nil, []int{0, 1}, rng)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Load(b); err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(bb.Graph)
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		vm.Close()
		loss := float64(m.loss.Value().Data().(float32))
		mt := m.Metrics()
		if math.IsNaN(loss) || math.IsInf(loss, 0) || loss <= 0 {
			t.Fatalf("%+v: loss %v", tc, loss)
		}
		if tc.overlap == 0 && math.Abs(loss-mt["recon_mse"]) > 1e-5*loss {
			t.Fatalf("%+v: loss %v differs from recon_mse %v without overlap", tc, loss, mt["recon_mse"])
		}
		// An untrained decoder (batch-normed, small output init) predicts
		// values of order 1: its error is within a few baselines.
		if mt["recon_mse"] > 10*mt["recon_mse_baseline"]+10 || mt["pretext_acc"] < 0 || mt["pretext_acc"] > 1 {
			t.Fatalf("%+v: metrics %v", tc, mt)
		}
	}
}

// gradientSet is an in-memory dataset of gradientImage pictures.
type gradientSet struct{ imgs []data.Image }

func (s *gradientSet) Len() int                        { return len(s.imgs) }
func (s *gradientSet) Image(i int) (data.Image, error) { return s.imgs[i], nil }
func (s *gradientSet) Label(int) int                   { return -1 }
func (s *gradientSet) Classes() []string               { return nil }
func (s *gradientSet) Source(int) string               { return "gradient" }

func gradients(n, size int, seed int64) *gradientSet {
	rng := rand.New(rand.NewSource(seed))
	s := &gradientSet{}
	for i := 0; i < n; i++ {
		s.imgs = append(s.imgs, gradientImage(rng, size))
	}
	return s
}

// TestInpaintTrains trains resnet20c with the center-mask decoder on
// 16 px colour ramps (the hole is predictable from its context) with
// plain SGD and checks, on held-out ramps through Inpaint.Evaluate (which
// rebuilds the model from the snapshotted backbone and head weights), that
// the masked-region error falls well below the predict-the-mean baseline,
// while an untrained model's does not.
func TestInpaintTrains(t *testing.T) {
	const size, batch = 16, 8
	const steps = 80
	cfg := DefaultConfig(3, size)
	ic := DefaultInpaintConfig()
	ic.Width = 32
	task := Inpaint{Config: ic}
	mode := &ops.Mode{Training: true}
	m, bb := buildInpaint(t, task, "resnet20c", cfg, batch, nil, mode)
	params, grads, vm := trainGraph(t, m, bb)
	held := gradients(40, size, 99)
	score := func() *InpaintScore {
		t.Helper()
		s, err := task.Evaluate("resnet20c", bb.Weights(), m.HeadWeights(), cfg, batch, held, 1)
		if err != nil {
			t.Fatal(err)
		}
		s.Acc = math.Round(s.Acc*1000) / 1000
		return s
	}
	before := score()
	if before.Images != 40 || before.MSE < 0.5*before.BaselineMSE {
		t.Fatalf("untrained: %+v", before)
	}
	train := gradients(256, size, 1)
	first, last := sgdSteps(t, m, vm, params, grads, train.imgs, steps, batch, 0.02)
	after := score()
	t.Logf("training loss %.4f -> %.4f; held-out before %+v, after %+v", first, last, before, after)
	if after.MSE > 0.5*after.BaselineMSE || after.Acc <= before.Acc {
		t.Fatalf("held-out after %d steps: %+v (before %+v): not clearly below the mean baseline", steps, after, before)
	}
	checkInpaintPicture(t, task, bb, m, cfg, held)
	hw := m.HeadWeights()
	for _, k := range []string{"head.inpaint.up1.weight", "head.inpaint.up1.bn.running_var", "head.inpaint.out.bias"} {
		if _, ok := hw[k]; !ok {
			t.Fatalf("head weights lack %s: %v", k, hw.Names())
		}
	}
	if _, err := task.Evaluate("resnet20c", bb.Weights(), models.Weights{}, cfg, batch, held, 1); err == nil {
		t.Fatal("evaluation without head weights accepted")
	}
}

// checkInpaintPicture checks the picture of the first 3 images of held:
// the first column is the image, the second its mean-filled hole, the
// third the image outside the hole and a prediction (not the mean colour
// everywhere) inside.
func checkInpaintPicture(t *testing.T, task Inpaint, bb *models.Backbone, m *inpaintModel, cfg Config, held *gradientSet) {
	t.Helper()
	pic, err := task.Picture("resnet20c", bb.Weights(), m.HeadWeights(), cfg, 16, held, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.InputSize
	z := 96 / s
	cell := z*s + 2
	if b := pic.Bounds(); b.Dx() != 3*cell+2 || b.Dy() != 3*cell+2 {
		t.Fatalf("picture %v, expected %dx%d", b, 3*cell+2, 3*cell+2)
	}
	g := m.geo
	predicted := 0
	for row := 0; row < 3; row++ {
		img := held.imgs[row]
		for y := 0; y < s; y++ {
			for x := 0; x < s; x++ {
				inHole := y >= g.HoleTop && y < g.HoleTop+g.Hole && x >= g.HoleLeft && x < g.HoleLeft+g.Hole
				for col := 0; col < 3; col++ {
					r, gg, b, _ := pic.At(2+col*cell+z*x+z/2, 2+row*cell+z*y+z/2).RGBA()
					got := [3]int{int(r >> 8), int(gg >> 8), int(b >> 8)}
					for ch := 0; ch < 3; ch++ {
						want := int(img.At(ch, y, x))
						if inHole && col == 1 {
							want = int(math.Round(255 * float64(cfg.Mean[ch])))
						}
						if inHole && col == 2 {
							if got[ch] != int(math.Round(255*float64(cfg.Mean[ch]))) {
								predicted++
							}
							continue
						}
						if d := got[ch] - want; d < -1 || d > 1 {
							t.Fatalf("picture row %d column %d (%d,%d) channel %d: %d, expected %d", row, col, y, x, ch, got[ch], want)
						}
					}
				}
			}
		}
	}
	if predicted < 3*3*g.Hole*g.Hole/2 {
		t.Fatalf("only %d of %d hole values differ from the mean colour", predicted, 3*3*g.Hole*g.Hole)
	}
}

// sgdSteps trains m for steps steps of SGD with momentum 0.9 (learning
// rate lr0 decayed linearly to 0) on batches drawn from imgs with a fixed
// seed, through vm and the gradients grads of params, and returns the
// first and the last loss; a NaN or infinite loss fails t.
func sgdSteps(t *testing.T, m Model, vm G.VM, params, grads G.Nodes, imgs []data.Image, steps, batch int, lr0 float64) (first, last float64) {
	t.Helper()
	rng := rand.New(rand.NewSource(5))
	vel := make([][]float32, len(params))
	for step := 0; step < steps; step++ {
		batchImgs := make([]data.Image, batch)
		for i := range batchImgs {
			batchImgs[i] = imgs[rng.Intn(len(imgs))]
		}
		b, err := m.MakeBatch(batchImgs, nil, make([]int, batch), rng)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Load(b); err != nil {
			t.Fatal(err)
		}
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		loss := float64(m.Loss().Value().Data().(float32))
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			t.Fatalf("step %d: loss %v", step, loss)
		}
		if step == 0 {
			first = loss
		}
		last = loss
		lr := float32(lr0 * (1 - float64(step)/float64(steps)))
		for i, p := range params {
			w, g := p.Value().Data().([]float32), grads[i].Value().Data().([]float32)
			if vel[i] == nil {
				vel[i] = make([]float32, len(w))
			}
			for j := range w {
				vel[i][j] = 0.9*vel[i][j] + g[j]
				w[j] -= lr * vel[i][j]
			}
		}
	}
	return first, last
}
