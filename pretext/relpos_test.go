package pretext

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// relposCells is an S x S 3-channel image whose 3x3 cells are constant:
// cell i of channel c holds 20*(i+1) + 5*c + shade.
func relposCells(s, shade int) data.Image {
	img := data.Image{C: 3, H: s, W: s, Pix: make([]uint8, 3*s*s)}
	for c := 0; c < 3; c++ {
		for y := 0; y < s; y++ {
			for x := 0; x < s; x++ {
				img.Pix[(c*s+y)*s+x] = uint8(20*((y*3/s)*3+x*3/s+1) + 5*c + shade)
			}
		}
	}
	return img
}

// relposRandomTensor is a [c, h, w] tensor of uniform values in [0, 1].
func relposRandomTensor(c, h, w int, seed int64) data.Tensor {
	rng := rand.New(rand.NewSource(seed))
	t := data.Tensor{C: c, H: h, W: w, Data: make([]float32, c*h*w)}
	for i := range t.Data {
		t.Data[i] = rng.Float32()
	}
	return t
}

func buildRelPos(t *testing.T, rc *RelPosConfig, cfg Config, batch int, heads models.Weights) (*relposModel, *models.Backbone) {
	t.Helper()
	return buildTask[*relposModel](t, RelPos{Config: rc}, "resnet20c", cfg.Channels, cfg, batch, heads, &ops.Mode{Training: false}, rand.New(rand.NewSource(2)))
}

func TestRelPosOffsets(t *testing.T) {
	want := [][2]int{{-1, -1}, {-1, 0}, {-1, 1}, {0, -1}, {0, 1}, {1, -1}, {1, 0}, {1, 1}}
	for k, w := range want {
		dy, dx, ok := RelPosOffset(k)
		if !ok || dy != w[0] || dx != w[1] {
			t.Fatalf("RelPosOffset(%d) = (%d, %d, %v), expected (%d, %d)", k, dy, dx, ok, w[0], w[1])
		}
		// Raster order of the 3x3 grid with the centre (cell 4) left out.
		cell := (1+dy)*3 + (1 + dx)
		if wantCell := k + k/4; cell != wantCell {
			t.Fatalf("target %d is cell %d, expected %d", k, cell, wantCell)
		}
		if RelPosTarget(dy, dx) != k {
			t.Fatalf("RelPosTarget(%d, %d) = %d, expected %d", dy, dx, RelPosTarget(dy, dx), k)
		}
	}
	for _, k := range []int{-1, 8} {
		if _, _, ok := RelPosOffset(k); ok {
			t.Fatalf("RelPosOffset(%d) reported ok", k)
		}
	}
	if RelPosTarget(0, 0) != -1 || RelPosTarget(2, 0) != -1 {
		t.Fatal("RelPosTarget accepted the centre or a cell outside the grid")
	}
}

// TestRelPosGeometry cuts many pairs and checks that every box is a
// Patch x Patch square inside the crop and inside its cell (the centre in
// cell 4, the neighbour in the cell its target names), that neighbouring
// patches are at least Gap apart along every axis they differ in, that the
// jitter covers the whole allowed range (so the smallest gap is reached),
// and that the 8 targets are drawn about equally often.
func TestRelPosGeometry(t *testing.T) {
	for _, rc := range []RelPosConfig{
		DefaultRelPosConfig(32),
		{Crop: 100, CropFrac: 0.8, Patch: 20, Gap: 5, Pairs: 7}, // cells 33, 33, 34; odd gap
		{Crop: 30, CropFrac: 1, Patch: 7, Gap: 0, Pairs: 7},     // no gap
	} {
		t.Run(fmt.Sprintf("crop%d_patch%d_gap%d", rc.Crop, rc.Patch, rc.Gap), func(t *testing.T) {
			testRelPosGeometry(t, rc)
		})
	}
}

func testRelPosGeometry(t *testing.T, rc RelPosConfig) {
	rng := rand.New(rand.NewSource(7))
	img := relposRandomTensor(3, 40, 37, 1)
	counts := make([]int, RelPosClasses)
	minGap, maxGap := math.MaxInt, 0
	seenOff := map[[2]int]bool{}
	const cuts = 300
	for n := 0; n < cuts; n++ {
		cut, err := CutRelPos(img, rc, nil, nil, rng)
		if err != nil {
			t.Fatal(err)
		}
		side := int(math.Round(rc.CropFrac * 37))
		if w := cut.Window; w[2] != side || w[0] < 0 || w[1] < 0 || w[0]+side > 40 || w[1]+side > 37 {
			t.Fatalf("window %v, expected side %d inside 40x37", w, side)
		}
		if cut.Crop.H != rc.Crop || cut.Crop.W != rc.Crop {
			t.Fatalf("crop %dx%d, expected %d", cut.Crop.H, cut.Crop.W, rc.Crop)
		}
		if len(cut.Pairs) != rc.Pairs {
			t.Fatalf("%d pairs, expected %d", len(cut.Pairs), rc.Pairs)
		}
		for _, p := range cut.Pairs {
			counts[p.Target]++
			dy, dx, ok := RelPosOffset(p.Target)
			if !ok {
				t.Fatalf("target %d", p.Target)
			}
			cells := [2][2]int{{1, 1}, {1 + dy, 1 + dx}}
			for i, b := range p.Boxes {
				if b.H != rc.Patch || b.W != rc.Patch {
					t.Fatalf("box %+v, expected %d px square", b, rc.Patch)
				}
				cy, ch := cellSpan(cells[i][0], 3, rc.Crop)
				cx, cw := cellSpan(cells[i][1], 3, rc.Crop)
				lo, hi := (rc.Gap+1)/2, rc.Gap/2
				if b.Top < cy+lo || b.Top+b.H > cy+ch-hi || b.Left < cx+lo || b.Left+b.W > cx+cw-hi {
					t.Fatalf("patch %d box %+v outside cell (%d, %d) = rows [%d, %d) cols [%d, %d) less margins %d/%d",
						i, b, cells[i][0], cells[i][1], cy, cy+ch, cx, cx+cw, lo, hi)
				}
				if b.Top < 0 || b.Left < 0 || b.Top+b.H > rc.Crop || b.Left+b.W > rc.Crop {
					t.Fatalf("box %+v outside the %d px crop", b, rc.Crop)
				}
				seenOff[[2]int{b.Top - cy, b.Left - cx}] = true
				if pt := p.Patches[i]; pt.C != 3 || pt.H != rc.Patch || pt.W != rc.Patch || len(pt.Data) != 3*rc.Patch*rc.Patch {
					t.Fatalf("patch tensor %dx%dx%d", pt.C, pt.H, pt.W)
				}
			}
			c, nb := p.Boxes[0], p.Boxes[1]
			var gaps []int
			switch dx {
			case 1:
				gaps = append(gaps, nb.Left-(c.Left+c.W))
			case -1:
				gaps = append(gaps, c.Left-(nb.Left+nb.W))
			}
			switch dy {
			case 1:
				gaps = append(gaps, nb.Top-(c.Top+c.H))
			case -1:
				gaps = append(gaps, c.Top-(nb.Top+nb.H))
			}
			for _, g := range gaps {
				if g < rc.Gap {
					t.Fatalf("target %d (%d, %d): centre %+v, neighbour %+v are %d px apart, expected >= %d", p.Target, dy, dx, c, nb, g, rc.Gap)
				}
				minGap, maxGap = min(minGap, g), max(maxGap, g)
			}
		}
	}
	if minGap != rc.Gap {
		t.Fatalf("smallest gap seen %d px, expected the minimum %d to be reached", minGap, rc.Gap)
	}
	jit := rc.Crop/3 - rc.Patch - rc.Gap // jitter range of the smallest cell
	if maxGap < rc.Gap+2*jit {
		t.Fatalf("largest gap seen %d px, expected at least %d (full jitter)", maxGap, rc.Gap+2*jit)
	}
	lo := (rc.Gap + 1) / 2
	for _, o := range [][2]int{{lo, lo}, {lo + jit, lo + jit}} {
		if !seenOff[o] {
			t.Fatalf("in-cell offset %v never drawn (seen %d offsets)", o, len(seenOff))
		}
	}
	total := cuts * rc.Pairs
	for k, c := range counts {
		if e := float64(total) / 8; math.Abs(float64(c)-e) > 0.25*e {
			t.Fatalf("target %d drawn %d times of %d, expected about %.0f (counts %v)", k, c, total, e, counts)
		}
	}
}

// TestRelPosBatchShowsAnswer builds the task on images whose cells are
// constant, with normalisation by the dataset's statistics and no colour
// dropping, so each patch shows which cell it came from: row 2i of the
// batch must be the centre cell and row 2i+1 the cell RelPosOffset(target)
// names; the graph must concatenate (centre, neighbour) features in that
// order.
func TestRelPosBatchShowsAnswer(t *testing.T) {
	const B, S, P = 2, 36, 8
	rc := &RelPosConfig{Crop: 36, CropFrac: 1, Patch: P, Gap: 2, Pairs: 3, Hidden: 16}
	cfg := DefaultConfig(3, S)
	cfg.Mean, cfg.Std = []float32{0.4, 0.5, 0.6}, []float32{0.2, 0.25, 0.3}
	m, bb := buildRelPos(t, rc, cfg, B, nil)
	shades := []int{0, 2}
	imgs := []data.Image{relposCells(S, shades[0]), relposCells(S, shades[1])}
	b, err := m.MakeBatch(imgs, []int{-1, -1}, []int{4, 9}, rand.New(rand.NewSource(4)))
	if err != nil {
		t.Fatal(err)
	}
	const per = 3 * P * P
	n := B * rc.Pairs
	if len(b.Inputs) != 1 || len(b.Inputs[0]) != 2*n*per || len(b.Targets) != n || fmt.Sprint(b.Index) != "[4 9]" {
		t.Fatalf("batch: %d inputs, %d values, %d targets, index %v", len(b.Inputs), len(b.Inputs[0]), len(b.Targets), b.Index)
	}
	// cellOf decodes the cell a patch shows from its (constant) value.
	cellOf := func(row, shade int) int {
		found := -1
		for c := 0; c < 3; c++ {
			vals := b.Inputs[0][row*per+c*P*P : row*per+(c+1)*P*P]
			for _, v := range vals {
				raw := float64(v*cfg.Std[c]+cfg.Mean[c])*255 - float64(5*c+shade)
				cell := int(math.Round(raw/20)) - 1
				if math.Abs(raw-float64(20*(cell+1))) > 1e-2 || (found >= 0 && cell != found) {
					t.Fatalf("row %d channel %d value %v is no single cell's (decoded %v)", row, c, v, raw)
				}
				found = cell
			}
		}
		return found
	}
	for i, k := range b.Targets {
		dy, dx, _ := RelPosOffset(k)
		shade := shades[i/rc.Pairs]
		if c := cellOf(2*i, shade); c != 4 {
			t.Fatalf("pair %d: centre row shows cell %d, expected 4", i, c)
		}
		if c, want := cellOf(2*i+1, shade), (1+dy)*3+1+dx; c != want {
			t.Fatalf("pair %d, target %d (%d, %d): neighbour row shows cell %d, expected %d", i, k, dy, dx, c, want)
		}
	}
	if err := m.Load(b); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(bb.Graph)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	D := bb.Spec.FeatureDim
	feats := m.feats.Value().Data().([]float32)
	cat := m.concat.Value().Data().([]float32)
	if !m.feats.Shape().Eq(tensor.Shape{2 * n, D}) || !m.concat.Shape().Eq(tensor.Shape{n, 2 * D}) {
		t.Fatalf("features %v, concatenation %v, expected [%d %d] and [%d %d]", m.feats.Shape(), m.concat.Shape(), 2*n, D, n, 2*D)
	}
	distinct := false
	for d := 0; d < D; d++ {
		distinct = distinct || feats[d] != feats[D+d]
	}
	if !distinct {
		t.Fatal("centre and neighbour of pair 0 have identical features: the order check would be vacuous")
	}
	for i := 0; i < n; i++ {
		for d := 0; d < 2*D; d++ {
			if cat[i*2*D+d] != feats[(2*i)*D+d] {
				t.Fatalf("pair %d: concatenated value %d is %v, expected row %d's %v", i, d, cat[i*2*D+d], 2*i+d/D, feats[(2*i)*D+d])
			}
		}
	}
	// The loss is the head's cross-entropy computed by hand in float64.
	heads := m.HeadWeights()
	w7, b7, w8, b8 := heads["head.fc7.weight"], heads["head.fc7.bias"], heads["head.fc8.weight"], heads["head.fc8.bias"]
	var loss float64
	ranks := m.Ranks()
	for i, y := range b.Targets {
		x := cat[i*2*D : (i+1)*2*D]
		h := make([]float64, 16)
		for o := range h {
			s := float64(b7.Data[o])
			for j, v := range x {
				s += float64(w7.Data[o*2*D+j]) * float64(v)
			}
			h[o] = math.Max(s, 0)
		}
		logits := make([]float64, RelPosClasses)
		mx := math.Inf(-1)
		for o := range logits {
			s := float64(b8.Data[o])
			for j, v := range h {
				s += float64(w8.Data[o*16+j]) * v
			}
			logits[o], mx = s, math.Max(mx, s)
		}
		var z float64
		rank := 0
		for _, l := range logits {
			z += math.Exp(l - mx)
			if l > logits[y] {
				rank++
			}
		}
		loss += (mx + math.Log(z) - logits[y]) / float64(n)
		if ranks[i] != rank {
			t.Fatalf("pair %d: rank %d, expected %d", i, ranks[i], rank)
		}
	}
	got := float64(m.Loss().Value().Data().(float32))
	if math.Abs(got-loss) > 1e-4*math.Max(1, loss) {
		t.Fatalf("loss %v, hand-computed %v", got, loss)
	}
	if acc := m.Metrics()["pretext_acc"]; acc < 0 || acc > 1 {
		t.Fatalf("pretext_acc %v", acc)
	}
}

// TestRelPosPatchValues checks the pixel pipeline against a plain
// reference: per-patch normalisation, colour dropping (one channel kept
// exactly, the other two zero-mean noise of 1/100 its spread), the random
// grayscale, and dataset normalisation when per-patch normalisation is off.
func TestRelPosPatchValues(t *testing.T) {
	img := relposRandomTensor(3, 32, 32, 2)
	rc := DefaultRelPosConfig(32)
	rc.Pairs = 40
	cut, err := CutRelPos(img, rc, nil, nil, rand.New(rand.NewSource(5)))
	if err != nil {
		t.Fatal(err)
	}
	if cut.Gray {
		t.Fatal("turned grey with GrayProb 0")
	}
	n := rc.Patch * rc.Patch
	kept := map[int]int{}
	for _, p := range cut.Pairs {
		for i, b := range p.Boxes {
			ref := normalizeTile(data.Crop(cut.Crop, b.Top, b.Left, b.H, b.W))
			k := p.Kept[i]
			if k < 0 || k > 2 {
				t.Fatalf("kept channel %d", k)
			}
			kept[k]++
			for c := 0; c < 3; c++ {
				got := p.Patches[i].Data[c*n : (c+1)*n]
				if c == k {
					for j, v := range got {
						if v != ref.Data[c*n+j] {
							t.Fatalf("kept channel %d value %d = %v, expected %v", c, j, v, ref.Data[c*n+j])
						}
					}
					continue
				}
				var s, sq float64
				for _, v := range got {
					s += float64(v)
					sq += float64(v) * float64(v)
				}
				mean := s / float64(n)
				sd := math.Sqrt(sq/float64(n) - mean*mean)
				if math.Abs(mean) > 0.003 || sd < 0.007 || sd > 0.013 {
					t.Fatalf("dropped channel %d: mean %v, std %v; expected noise of std 0.01 around 0", c, mean, sd)
				}
			}
		}
	}
	if len(kept) != 3 {
		t.Fatalf("kept channels %v, expected all three", kept)
	}
	// Grey images: no colour dropping, all channels the same luma.
	rc.GrayProb = 1
	cut, err = CutRelPos(img, rc, nil, nil, rand.New(rand.NewSource(5)))
	if err != nil {
		t.Fatal(err)
	}
	if !cut.Gray {
		t.Fatal("not turned grey with GrayProb 1")
	}
	for _, p := range cut.Pairs {
		for i := range p.Patches {
			d := p.Patches[i].Data
			if p.Kept[i] != -1 {
				t.Fatalf("colour dropped on a grey image (kept %d)", p.Kept[i])
			}
			for j := 0; j < n; j++ {
				if d[j] != d[n+j] || d[j] != d[2*n+j] {
					t.Fatalf("grey patch differs between channels at %d: %v %v %v", j, d[j], d[n+j], d[2*n+j])
				}
			}
		}
	}
	// No per-patch normalisation: the dataset's statistics, no dropping.
	rc.GrayProb, rc.PerPatchNorm, rc.ColorDrop = 0, false, false
	mean, std := []float32{0.3, 0.4, 0.5}, []float32{0.2, 0.3, 0.4}
	cut, err = CutRelPos(img, rc, mean, std, rand.New(rand.NewSource(5)))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range cut.Pairs {
		for i, b := range p.Boxes {
			ref, err := data.Normalize(data.Crop(cut.Crop, b.Top, b.Left, b.H, b.W), mean, std)
			if err != nil {
				t.Fatal(err)
			}
			for j, v := range p.Patches[i].Data {
				if v != ref.Data[j] || p.Kept[i] != -1 {
					t.Fatalf("value %d = %v, expected %v (kept %d)", j, v, ref.Data[j], p.Kept[i])
				}
			}
		}
	}
	// One channel: nothing to drop.
	gray := relposRandomTensor(1, 32, 32, 3)
	rc.ColorDrop, rc.PerPatchNorm = true, true
	if cut, err = CutRelPos(gray, rc, nil, nil, rand.New(rand.NewSource(5))); err != nil {
		t.Fatal(err)
	}
	if p := cut.Pairs[0]; p.Kept != [2]int{-1, -1} || p.Patches[0].C != 1 {
		t.Fatalf("1-channel image: kept %v, %d channels", p.Kept, p.Patches[0].C)
	}
}

// TestRelPosDeterministic: the same rng seed gives the same batch, another
// seed a different one.
func TestRelPosDeterministic(t *testing.T) {
	cfg := DefaultConfig(3, 32)
	m, _ := buildRelPos(t, nil, cfg, 2, nil)
	imgs := make([]data.Image, 2)
	for i := range imgs {
		tt := relposRandomTensor(3, 32, 32, int64(10+i))
		img := data.Image{C: 3, H: 32, W: 32, Pix: make([]uint8, len(tt.Data))}
		for j, v := range tt.Data {
			img.Pix[j] = uint8(v * 255)
		}
		imgs[i] = img
	}
	mk := func(seed int64) *Batch {
		b, err := m.MakeBatch(imgs, []int{-1, -1}, []int{0, 1}, rand.New(rand.NewSource(seed)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := mk(8), mk(8), mk(9)
	if fmt.Sprint(a.Targets) != fmt.Sprint(b.Targets) || len(a.Inputs[0]) != len(b.Inputs[0]) {
		t.Fatalf("same seed: targets %v and %v", a.Targets, b.Targets)
	}
	for i := range a.Inputs[0] {
		if a.Inputs[0][i] != b.Inputs[0][i] {
			t.Fatalf("same seed: value %d differs: %v vs %v", i, a.Inputs[0][i], b.Inputs[0][i])
		}
	}
	same := fmt.Sprint(a.Targets) == fmt.Sprint(c.Targets)
	for i := range a.Inputs[0] {
		same = same && a.Inputs[0][i] == c.Inputs[0][i]
	}
	if same {
		t.Fatal("seeds 8 and 9 gave identical batches")
	}
}

func TestRelPosConfig(t *testing.T) {
	for _, c := range []struct {
		size                   int
		crop, patch, gap, jitt int
	}{{32, 84, 21, 4, 3}, {20, 84, 21, 4, 3}, {224, 198, 50, 9, 7}, {512, 225, 56, 11, 8}} {
		r := DefaultRelPosConfig(c.size)
		if r.Crop != c.crop || r.Patch != c.patch || r.Gap != c.gap || r.Crop/3-r.Patch-r.Gap != c.jitt ||
			r.Pairs != 2 || r.Hidden != 512 || !r.PerPatchNorm || !r.ColorDrop || r.GrayProb != 0 {
			t.Fatalf("defaults for %d px: %+v", c.size, r)
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("defaults for %d px: %v", c.size, err)
		}
	}
	r := ResolveRelPos(&RelPosConfig{Pairs: 3, ColorDrop: true}, 32)
	if r.Crop != 84 || r.Patch != 21 || r.Gap != 4 || r.Pairs != 3 || r.Hidden != 512 || r.CropFrac != 225.0/256 || r.PerPatchNorm || !r.ColorDrop {
		t.Fatalf("partial config resolved to %+v", r)
	}
	if r := ResolveRelPos(nil, 32); r != DefaultRelPosConfig(32) {
		t.Fatalf("nil resolved to %+v", r)
	}
	for name, mod := range map[string]func(*RelPosConfig){
		"patch+gap > cell": func(r *RelPosConfig) { r.Gap = 8 },
		"crop 2":           func(r *RelPosConfig) { r.Crop = 2 },
		"patch 0":          func(r *RelPosConfig) { r.Patch = 0 },
		"gap -1":           func(r *RelPosConfig) { r.Gap = -1 },
		"frac 0":           func(r *RelPosConfig) { r.CropFrac = 0 },
		"frac 1.1":         func(r *RelPosConfig) { r.CropFrac = 1.1 },
		"pairs 0":          func(r *RelPosConfig) { r.Pairs = 0 },
		"gray 1.5":         func(r *RelPosConfig) { r.GrayProb = 1.5 },
	} {
		r := DefaultRelPosConfig(32)
		mod(&r)
		if r.Validate() == nil {
			t.Fatalf("%s passed validation: %+v", name, r)
		}
		if _, err := CutRelPos(relposRandomTensor(3, 8, 8, 1), r, nil, nil, rand.New(rand.NewSource(1))); err == nil {
			t.Fatalf("%s: CutRelPos ran", name)
		}
	}
	if _, err := CutRelPos(data.Tensor{C: 3, H: 4, W: 4}, DefaultRelPosConfig(32), nil, nil, rand.New(rand.NewSource(1))); err == nil {
		t.Fatal("an image tensor without values was cut")
	}
}

func TestRelPosHeadsAndLoad(t *testing.T) {
	cfg := DefaultConfig(3, 32)
	rc := &RelPosConfig{Hidden: 16, PerPatchNorm: true, ColorDrop: true}
	m, bb := buildRelPos(t, rc, cfg, 2, nil)
	D := bb.Spec.FeatureDim
	heads := m.HeadWeights()
	if len(heads) != 4 || fmt.Sprint(heads["head.fc7.weight"].Shape) != fmt.Sprint([]int{16, 2 * D}) ||
		fmt.Sprint(heads["head.fc8.weight"].Shape) != "[8 16]" || len(m.Learnables()) != 4 {
		t.Fatalf("head weights %v, %d learnables", heads.Names(), len(m.Learnables()))
	}
	if got := m.input.Shape(); !got.Eq(tensor.Shape{2 * 2 * 2, 3, 21, 21}) {
		t.Fatalf("input %v, expected [8 3 21 21] (2 images x 2 pairs x 2 patches)", got)
	}
	// Restored heads are used as given.
	m2, _ := buildRelPos(t, rc, cfg, 2, heads)
	for k, v := range m2.HeadWeights() {
		for i := range v.Data {
			if v.Data[i] != heads[k].Data[i] {
				t.Fatalf("restored %s differs at %d", k, i)
			}
		}
	}
	// Without fc7, fc8 maps the concatenation to the 8 positions.
	m3, _ := buildRelPos(t, &RelPosConfig{Hidden: -1}, cfg, 1, nil)
	if h := m3.HeadWeights(); len(h) != 2 || fmt.Sprint(h["head.fc8.weight"].Shape) != fmt.Sprint([]int{8, 2 * D}) {
		t.Fatalf("no fc7: head weights %v", h.Names())
	}
	var _ Ranker = m
	// Load rejects malformed batches.
	imgs := []data.Image{relposCells(32, 0), relposCells(32, 1)}
	b, err := m.MakeBatch(imgs, []int{-1, -1}, []int{0, 1}, rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(b); err != nil {
		t.Fatal(err)
	}
	bad := *b
	bad.Targets = append([]int{8}, b.Targets[1:]...)
	if m.Load(&bad) == nil {
		t.Fatal("Load accepted target 8")
	}
	bad.Targets = b.Targets[1:]
	if m.Load(&bad) == nil {
		t.Fatal("Load accepted 3 targets for 4 pairs")
	}
	bad.Targets, bad.Inputs = b.Targets, [][]float32{b.Inputs[0][1:]}
	if m.Load(&bad) == nil {
		t.Fatal("Load accepted a short input")
	}
	gray := data.Image{C: 1, H: 32, W: 32, Pix: make([]uint8, 32*32)}
	if _, err := m.MakeBatch([]data.Image{gray, gray}, []int{-1, -1}, []int{0, 1}, rand.New(rand.NewSource(1))); err == nil {
		t.Fatal("MakeBatch accepted 1-channel images for a 3-channel task")
	}
	// Build errors: a 1-channel config on a 3-channel backbone, an invalid geometry.
	spec, _ := models.New("resnet20c", 3)
	bb2, err := models.NewBackbone(G.NewGraph(), spec, models.InitWeights(spec, rand.New(rand.NewSource(1))), tensor.Float32, &ops.Mode{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (RelPos{}).Build(bb2, 1, DefaultConfig(1, 32), nil, rand.New(rand.NewSource(1))); err == nil {
		t.Fatal("built a 1-channel task on a 3-channel backbone")
	}
	if _, err := (RelPos{Config: &RelPosConfig{Crop: 30, Patch: 10, Gap: 1}}).Build(bb2, 1, cfg, nil, rand.New(rand.NewSource(1))); err == nil {
		t.Fatal("built with patch + gap larger than a cell")
	}
	if task, err := New("relpos"); err != nil || task.Name() != "relpos" || task.NeedsLabels() {
		t.Fatalf("registry: %v %v", task, err)
	}
}
