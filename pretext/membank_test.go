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

func norm32(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func TestMemoryBankInitIsUnitAndSeeded(t *testing.T) {
	a, err := NewMemoryBank(50, 16, 0.5, rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewMemoryBank(50, 16, 0.5, rand.New(rand.NewSource(1)))
	c, _ := NewMemoryBank(50, 16, 0.5, rand.New(rand.NewSource(2)))
	var mean [16]float64
	for i := 0; i < a.N; i++ {
		if n := norm32(a.Row(i)); math.Abs(n-1) > 1e-6 {
			t.Fatalf("row %d has norm %v", i, n)
		}
		for j, v := range a.Row(i) {
			mean[j] += float64(v) / float64(a.N)
		}
	}
	for i := range a.Data {
		if a.Data[i] != b.Data[i] {
			t.Fatal("same seed, different banks")
		}
	}
	same := 0
	for i := range a.Data {
		if a.Data[i] == c.Data[i] {
			same++
		}
	}
	if same == len(a.Data) {
		t.Fatal("different seeds, same bank")
	}
	if _, err := NewMemoryBank(0, 16, 0.5, rand.New(rand.NewSource(1))); err == nil {
		t.Fatal("expected an error for an empty bank")
	}
	if _, err := NewMemoryBank(4, 16, 1, rand.New(rand.NewSource(1))); err == nil {
		t.Fatal("expected an error for momentum 1")
	}
}

// m = (1, 0, 0), f = (0, 1, 0), momentum 0.5: m <- (0.5, 0.5, 0)/|.| =
// (1/sqrt2, 1/sqrt2, 0). Momentum 0.75 and f = (0, 0, 1): m <- (0.75, 0,
// 0.25)/|.|.
func TestMemoryBankUpdate(t *testing.T) {
	b := &MemoryBank{N: 3, Dim: 3, Momentum: 0.5, Data: []float32{1, 0, 0, 0, 1, 0, 0, 0, 1}}
	if err := b.Update([]int{0}, []float32{0, 1, 0}); err != nil {
		t.Fatal(err)
	}
	r := 1 / math.Sqrt2
	want := []float64{r, r, 0, 0, 1, 0, 0, 0, 1}
	for i, v := range b.Data {
		if math.Abs(float64(v)-want[i]) > 1e-7 {
			t.Fatalf("after update: %v, expected %v", b.Data, want)
		}
	}
	b.Momentum = 0.75
	if err := b.Update([]int{1}, []float32{0, 0, 1}); err != nil {
		t.Fatal(err)
	}
	n := math.Hypot(0.75, 0.25)
	if got := b.Row(1); math.Abs(float64(got[1])-0.75/n) > 1e-7 || math.Abs(float64(got[2])-0.25/n) > 1e-7 || got[0] != 0 {
		t.Fatalf("row 1 %v, expected [0 %v %v]", got, 0.75/n, 0.25/n)
	}
	if err := b.Update([]int{3}, []float32{0, 0, 1}); err == nil {
		t.Fatal("expected an error for an index outside the bank")
	}
	if err := b.Update([]int{0, 1}, []float32{0, 0, 1}); err == nil {
		t.Fatal("expected an error for too few values")
	}
}

// The first update of a row replaces the random initial vector by the
// normalised embedding; later ones average; the flags round-trip.
func TestMemoryBankFirstWrite(t *testing.T) {
	b, _ := NewMemoryBank(4, 2, 0.5, rand.New(rand.NewSource(2)))
	if err := b.Update([]int{2}, []float32{3, 4}); err != nil {
		t.Fatal(err)
	}
	if r := b.Row(2); math.Abs(float64(r[0])-0.6) > 1e-7 || math.Abs(float64(r[1])-0.8) > 1e-7 {
		t.Fatalf("first write gave %v, expected [0.6 0.8]", r)
	}
	if err := b.Update([]int{2}, []float32{1, 0}); err != nil {
		t.Fatal(err)
	}
	n := math.Hypot(0.8, 0.4)
	if r := b.Row(2); math.Abs(float64(r[0])-0.8/n) > 1e-7 || math.Abs(float64(r[1])-0.4/n) > 1e-7 {
		t.Fatalf("second write gave %v, expected [%v %v]", r, 0.8/n, 0.4/n)
	}
	c, _ := NewMemoryBank(4, 2, 0.5, rand.New(rand.NewSource(2)))
	if err := c.SetWrittenTensor(b.WrittenTensor()); err != nil {
		t.Fatal(err)
	}
	for i := range c.Written {
		if c.Written[i] != (i == 2) {
			t.Fatalf("written flags after the round trip: %v", c.Written)
		}
	}
	if err := c.SetWrittenTensor(models.Tensor{Shape: []int{4}, Data: []float32{0, 0.5, 0, 0}}); err == nil {
		t.Fatal("a flag of 0.5 was accepted")
	}
}

func TestMemoryBankTensorRoundTrip(t *testing.T) {
	a, _ := NewMemoryBank(7, 5, 0.5, rand.New(rand.NewSource(3)))
	saved := a.Tensor()
	b, _ := NewMemoryBank(7, 5, 0.5, rand.New(rand.NewSource(4)))
	backing := &b.Data[0]
	if err := b.SetTensor(saved); err != nil {
		t.Fatal(err)
	}
	if &b.Data[0] != backing {
		t.Fatal("SetTensor replaced the backing array (the loss op holds it)")
	}
	for i := range a.Data {
		if math.Float32bits(a.Data[i]) != math.Float32bits(b.Data[i]) {
			t.Fatalf("value %d: %v after the round trip, %v before", i, b.Data[i], a.Data[i])
		}
	}
	bad := saved
	bad.Shape = []int{5, 7}
	if err := b.SetTensor(bad); err == nil {
		t.Fatal("expected a shape error")
	}
	nan := models.Tensor{Shape: []int{7, 5}, Data: append([]float32(nil), saved.Data...)}
	nan.Data[3] = float32(math.NaN())
	if err := b.SetTensor(nan); err == nil {
		t.Fatal("expected an error for a NaN")
	}
}

// Negatives never hit the row's own image and cover the others uniformly.
func TestSampleNegatives(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	const n, k = 5, 20000
	pos := []int{2, 0, 4}
	dst := make([]int, len(pos)*k)
	if err := SampleNegatives(rng, n, pos, k, dst); err != nil {
		t.Fatal(err)
	}
	for i, p := range pos {
		var count [n]int
		for _, j := range dst[i*k : (i+1)*k] {
			count[j]++
		}
		if count[p] != 0 {
			t.Fatalf("row %d drew its own image %d times", i, count[p])
		}
		for j, c := range count {
			if j != p && math.Abs(float64(c)-k/4.0) > 0.05*k/4 {
				t.Fatalf("row %d drew %d %d times of %d, expected about %d", i, j, c, k, k/4)
			}
		}
	}
	if err := SampleNegatives(rng, 1, []int{0}, 3, make([]int, 3)); err == nil {
		t.Fatal("expected an error for a bank of one")
	}
}

// Shared negatives avoid every excluded index and cover the others
// uniformly.
func TestSampleSharedNegatives(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	const n, k = 7, 30000
	exclude := []int{5, 0, 5, 3, 9} // duplicates and out-of-range indices are harmless
	dst := make([]int, k)
	if err := SampleSharedNegatives(rng, n, exclude, dst); err != nil {
		t.Fatal(err)
	}
	var count [n]int
	for _, j := range dst {
		count[j]++
	}
	for j, c := range count {
		switch j {
		case 0, 3, 5:
			if c != 0 {
				t.Fatalf("excluded index %d drawn %d times", j, c)
			}
		default:
			if math.Abs(float64(c)-k/4.0) > 0.05*k/4 {
				t.Fatalf("index %d drawn %d times of %d, expected about %d", j, c, k, k/4)
			}
		}
	}
	if err := SampleSharedNegatives(rng, 2, []int{0, 1}, dst); err == nil {
		t.Fatal("expected an error when the batch covers the bank")
	}
}

func TestPIRLConfigResolve(t *testing.T) {
	cfg := DefaultConfig(3, 32)
	if _, err := resolvePIRL("npid", cfg); err == nil {
		t.Fatal("expected an error without a bank size")
	}
	cfg.TrainImages = 100
	r, err := resolvePIRL("npid", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Dim != 128 || r.Negatives != 99 || r.Temperature != 0.07 || r.Lambda != 0.5 || r.Momentum != 0.5 || r.Loss != "pirl" {
		t.Fatalf("defaults: %+v", r)
	}
	if r.Tiles.Crop != 36 || r.Tiles.Tile != 9 {
		t.Fatalf("CIFAR tiles: crop %d tile %d, expected 36 and 9", r.Tiles.Crop, r.Tiles.Tile)
	}
	if d := DefaultPIRLConfig(50000); d.Negatives != 4096 {
		t.Fatalf("default negatives %d for 50000 images, expected 4096", d.Negatives)
	}
	if t224 := PIRLTileConfig(224); t224.Crop != 255 || t224.Tile != 64 {
		t.Fatalf("224 px tiles: crop %d tile %d, expected VISSL's 255 and 64", t224.Crop, t224.Tile)
	}
	cfg.PIRL = &PIRLConfig{BankSize: 100, Negatives: 7}
	if r, err = resolvePIRL("npid", cfg); err != nil || r.Negatives != 7 {
		t.Fatalf("explicit config: %+v, %v", r, err)
	}
	cfg.TrainImages = 0
	for _, bad := range []PIRLConfig{{BankSize: 1}, {BankSize: 10, Loss: "x"}, {BankSize: 10, Lambda: 2}, {BankSize: 10, Momentum: 1}, {BankSize: 10, Temperature: -1}} {
		cfg.PIRL = &bad
		if _, err := resolvePIRL("npid", cfg); err == nil {
			t.Fatalf("expected an error for %+v", bad)
		}
	}
	cfg.TrainImages, cfg.PIRL = 50, &PIRLConfig{BankSize: 60}
	if _, err := resolvePIRL("npid", cfg); err == nil {
		t.Fatal("expected an error for a bank size that disagrees with TrainImages")
	}
}

// refNCE is the lecture's L_NCE(m_I, b) for one image: b and the bank rows
// are unit vectors, so s is their dot product.
func refNCE(b, pos []float32, negs [][]float32, tau float64) float64 {
	hp := math.Exp(dot32(b, pos) / tau)
	den := hp
	hs := make([]float64, len(negs))
	for k, n := range negs {
		hs[k] = math.Exp(dot32(b, n) / tau)
		den += hs[k]
	}
	l := -math.Log(hp / den)
	for _, h := range hs {
		l -= math.Log(1 - h/den)
	}
	return l
}

func randomImages(n, c, size int, rng *rand.Rand) []data.Image {
	imgs := make([]data.Image, n)
	for i := range imgs {
		imgs[i] = data.Image{C: c, H: size, W: size, Pix: make([]uint8, c*size*size)}
		for j := range imgs[i].Pix {
			imgs[i].Pix[j] = uint8(rng.Intn(256))
		}
	}
	return imgs
}

// buildBankModel builds task on a fresh resnet20c in training mode.
func buildBankModel(t *testing.T, task string, batch int, cfg Config) (*bankModel, *G.ExprGraph) {
	t.Helper()
	spec, err := models.New("resnet20c", cfg.Channels)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(9))
	g := G.NewGraph()
	bb, err := models.NewBackbone(g, spec, models.InitWeights(spec, rng), tensor.Float32, &ops.Mode{Training: true})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := New(task)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tk.Build(bb, batch, cfg, models.Weights{}, rng)
	if err != nil {
		t.Fatal(err)
	}
	return m.(*bankModel), g
}

// The built model's loss is the lecture's formula on its own embeddings:
// positives are the bank rows at Batch.Index, negatives the rows in
// Batch.Targets, lambda/(1-lambda) between g and f. After AfterStep the
// bank rows at Index are the moving average of f.
func TestPIRLRotationModelLossAndBankUpdate(t *testing.T) {
	for _, perImage := range []bool{false, true} {
		for _, fresh := range []bool{false, true} {
			testPIRLRotationModel(t, perImage, fresh)
		}
	}
}

// testPIRLRotationModel: with fresh, the bank has never been written, so
// each image's positive is its own f(v_I) and its first update replaces
// the entry; otherwise every entry counts as written.
func testPIRLRotationModel(t *testing.T, perImage, fresh bool) {
	const B, size = 3, 12
	cfg := DefaultConfig(3, size)
	cfg.PIRL = &PIRLConfig{BankSize: 10, Negatives: 6, Lambda: 0.3, PerImageNegatives: perImage}
	m, g := buildBankModel(t, "pirl-rotation", B, cfg)
	rng := rand.New(rand.NewSource(10))
	index := []int{7, 2, 5}
	b, err := m.MakeBatch(randomImages(B, 3, size, rng), make([]int, B), index, rng)
	if err != nil {
		t.Fatal(err)
	}
	negs := 6
	if perImage {
		negs = B * 6
	}
	if len(b.Inputs) != 2 || len(b.Inputs[1]) != B*3*size*size || len(b.Targets) != negs {
		t.Fatalf("batch: %d inputs, rotated %d values, %d negatives", len(b.Inputs), len(b.Inputs[1]), len(b.Targets))
	}
	if !fresh {
		for i := range m.bank.Written {
			m.bank.Written[i] = true
		}
	}
	before := append([]float32(nil), m.bank.Data...)
	if err := m.Load(b); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	got := float64(m.Loss().Value().Data().(float32))
	D := m.pc.Dim
	gEmb, fEmb := m.mem.Seen[0], m.mem.Seen[1]
	var want float64
	for i, idx := range index {
		var negs [][]float32
		row := b.Targets
		if perImage {
			row = b.Targets[i*6 : (i+1)*6]
		}
		for _, j := range row {
			if j == idx || (!perImage && (j == 7 || j == 2 || j == 5)) {
				t.Fatalf("image %d drew %d, an image of its batch, as a negative", idx, j)
			}
			negs = append(negs, m.bank.Row(j))
		}
		gi, fi := gEmb[i*D:(i+1)*D], fEmb[i*D:(i+1)*D]
		if math.Abs(norm32(gi)-1) > 1e-5 || math.Abs(norm32(fi)-1) > 1e-5 {
			t.Fatalf("embeddings of image %d are not unit: %v %v", i, norm32(gi), norm32(fi))
		}
		pos := m.bank.Row(idx)
		if fresh {
			pos = fi
		}
		want += 0.3*refNCE(gi, pos, negs, 0.07) + 0.7*refNCE(fi, pos, negs, 0.07)
	}
	want /= B
	if math.Abs(got-want) > 1e-5*math.Abs(want) {
		t.Fatalf("per-image negatives %v, fresh bank %v: model loss %v, reference %v", perImage, fresh, got, want)
	}
	if err := m.AfterStep(b); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < m.bank.N; i++ {
		row, old := m.bank.Row(i), before[i*D:(i+1)*D]
		k := -1
		for j, idx := range index {
			if idx == i {
				k = j
			}
		}
		if k < 0 {
			for d := range row {
				if row[d] != old[d] {
					t.Fatalf("row %d of the bank changed without being in the batch", i)
				}
			}
			continue
		}
		avg := make([]float64, D)
		mu := 0.5
		if fresh {
			mu = 0
		}
		for d := range avg {
			avg[d] = mu*float64(old[d]) + (1-mu)*float64(fEmb[k*D+d])
		}
		n := 0.0
		for _, v := range avg {
			n += v * v
		}
		for d := range row {
			if math.Abs(float64(row[d])-avg[d]/math.Sqrt(n)) > 1e-6 {
				t.Fatalf("bank row %d[%d] = %v, expected %v", i, d, row[d], avg[d]/math.Sqrt(n))
			}
		}
	}
	acc := m.Metrics()
	if a, ok := acc["pretext_acc"]; !ok || a < 0 || a > 1 {
		t.Fatalf("metrics %v", acc)
	}
}

// The jigsaw view: 9 tiles per image, image-major, in shuffled order; the
// g head reshapes [9B, D] to [B, 9D], so row b of the concatenation holds
// image b's tiles.
func TestPIRLJigsawBatchLayout(t *testing.T) {
	const B, size = 2, 16
	cfg := DefaultConfig(1, size)
	tiles := PIRLTileConfig(size)
	tiles.Jitter = false // so that a constant image gives constant tiles
	cfg.PIRL = &PIRLConfig{BankSize: 6, Negatives: 3, Tiles: &tiles}
	m, _ := buildBankModel(t, "pirl-jigsaw", B, cfg)
	T := m.pc.Tiles.Tile
	rng := rand.New(rand.NewSource(11))
	imgs := randomImages(B, 1, size, rng)
	// Image 1 is constant: its tiles normalise to one constant value.
	for j := range imgs[1].Pix {
		imgs[1].Pix[j] = 200
	}
	b, err := m.MakeBatch(imgs, make([]int, B), []int{0, 1}, rng)
	if err != nil {
		t.Fatal(err)
	}
	per := T * T
	if len(b.Inputs[1]) != 9*B*per {
		t.Fatalf("tiles input has %d values, expected %d", len(b.Inputs[1]), 9*B*per)
	}
	c := b.Inputs[1][9*per]
	for _, v := range b.Inputs[1][9*per:] {
		if math.Abs(float64(v-c)) > 1e-6 {
			t.Fatal("tiles of image 1 are not all in the second half of the tiles input")
		}
	}
	varies := false
	for _, v := range b.Inputs[1][:9*per] {
		if v != c {
			varies = true
		}
	}
	if !varies {
		t.Fatal("tiles of image 0 look like image 1's")
	}
	// A missing bank size is an error naming the fix.
	cfg.PIRL = nil
	spec, _ := models.New("resnet20c", 1)
	bb, _ := models.NewBackbone(G.NewGraph(), spec, models.InitWeights(spec, rng), tensor.Float32, &ops.Mode{Training: true})
	if _, err := (bankTask{name: "npid"}).Build(bb, B, cfg, models.Weights{}, rng); err == nil {
		t.Fatal("expected an error without PIRL.BankSize")
	}
}

// On held-out images PIRL scores g(v_It) against f(v_I) as the positive:
// row 0, g = f = (1, 0), beats negatives at 0.6 and 0; row 1, g = (0, 1),
// f = (1, 0), scores 0 against a negative at 0.8 and misses.
func TestHeldOutAccuracy(t *testing.T) {
	m := &bankModel{
		pc:   PIRLConfig{Dim: 2, Negatives: 2},
		bank: &MemoryBank{N: 3, Dim: 2, Data: []float32{0.6, 0.8, 0, -1, -1, 0}},
		mem:  &ops.NCEMemory{Neg: []int{0, 1}, SharedNeg: true},
	}
	g, f := []float32{1, 0, 0, 1}, []float32{1, 0, 1, 0}
	if acc := m.heldOutAccuracy(g, f); acc != 0.5 {
		t.Fatalf("accuracy %v, expected 0.5", acc)
	}
	m.pc.PerImageNegatives, m.mem.Neg = true, []int{0, 1, 1, 1} // row 1 now meets only (0, -1)
	if acc := m.heldOutAccuracy(g, f); acc != 1 {
		t.Fatalf("per-image negatives: accuracy %v, expected 1", acc)
	}
}

// InitState writes every entry as the normalised f-head embedding of the
// features it is handed (a plain loop reference), marks it written, and
// does nothing with ColdBank.
func TestBankWarmStart(t *testing.T) {
	cfg := DefaultConfig(3, 12)
	cfg.PIRL = &PIRLConfig{BankSize: 10, Negatives: 6}
	m, _ := buildBankModel(t, "npid", 2, cfg)
	F := 64 // resnet20c's features
	feat := func(index []int) ([]float32, error) {
		out := make([]float32, 0, len(index)*F)
		for _, i := range index {
			for j := 0; j < F; j++ {
				out = append(out, float32((i*7+j*3)%11)-5)
			}
		}
		return out, nil
	}
	if err := m.InitState(feat, 10); err != nil {
		t.Fatal(err)
	}
	var f *models.Linear
	for _, h := range m.heads {
		if h.Name == "head.f" {
			f = h
		}
	}
	w, b := models.NodeTensor(f.W), models.NodeTensor(f.B)
	D := m.pc.Dim
	for i := 0; i < 10; i++ {
		x, _ := feat([]int{i})
		ref := make([]float64, D)
		var nrm float64
		for d := 0; d < D; d++ {
			ref[d] = float64(b.Data[d])
			for j := 0; j < F; j++ {
				ref[d] += float64(w.Data[d*F+j]) * float64(x[j])
			}
			nrm += ref[d] * ref[d]
		}
		for d, v := range m.bank.Row(i) {
			if math.Abs(float64(v)-ref[d]/math.Sqrt(nrm)) > 1e-5 {
				t.Fatalf("row %d[%d] = %v, expected %v", i, d, v, ref[d]/math.Sqrt(nrm))
			}
		}
		if !m.bank.Written[i] {
			t.Fatalf("row %d not marked written", i)
		}
	}
	if err := m.InitState(feat, 9); err == nil {
		t.Fatal("9 images for a bank of 10 accepted")
	}
	cfg.PIRL = &PIRLConfig{BankSize: 10, Negatives: 6, ColdBank: true}
	cold, _ := buildBankModel(t, "npid", 2, cfg)
	before := append([]float32(nil), cold.bank.Data...)
	if err := cold.InitState(feat, 10); err != nil {
		t.Fatal(err)
	}
	for i, v := range cold.bank.Data {
		if v != before[i] || cold.bank.Written[i/cold.bank.Dim] {
			t.Fatal("a cold bank was warm-started")
		}
	}
}
