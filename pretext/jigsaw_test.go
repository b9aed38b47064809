package pretext

import (
	"fmt"
	"hash"
	"math"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// weightedSum is a test-only op: sum(x .* r) for a fixed random r, so the
// gradient reaching the op under test is r (as in ops/grad_test.go).
type weightedSum struct{ r []float64 }

func (op *weightedSum) Arity() int { return 1 }
func (op *weightedSum) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 2, Of: a}, a)
}
func (op *weightedSum) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}
func (op *weightedSum) Do(vs ...G.Value) (G.Value, error) {
	var s float64
	for i, v := range vs[0].(*tensor.Dense).Float64s() {
		s += v * op.r[i]
	}
	return G.NewF64(s), nil
}
func (op *weightedSum) ReturnsPtr() bool      { return false }
func (op *weightedSum) CallsExtern() bool     { return false }
func (op *weightedSum) OverwritesInput() int  { return -1 }
func (op *weightedSum) WriteHash(h hash.Hash) { fmt.Fprintf(h, "ws%p", op) }
func (op *weightedSum) Hashcode() uint32      { return 1 }
func (op *weightedSum) String() string        { return "ws" }
func (op *weightedSum) DiffWRT(int) []bool    { return []bool{true} }
func (op *weightedSum) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	n, err := G.ApplyOp(&weightedSumGrad{fwd: op, shape: in[0].Shape().Clone()}, grad)
	return G.Nodes{n}, err
}

type weightedSumGrad struct {
	fwd   *weightedSum
	shape tensor.Shape
}

func (op *weightedSumGrad) Arity() int { return 1 }
func (op *weightedSumGrad) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, G.TensorType{Dims: 2, Of: a})
}
func (op *weightedSumGrad) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.shape.Clone(), nil
}
func (op *weightedSumGrad) Do(vs ...G.Value) (G.Value, error) {
	var seed float64
	switch v := vs[0].Data().(type) {
	case float64:
		seed = v
	case []float64:
		seed = v[0]
	}
	d := tensor.New(tensor.WithShape(op.shape...), tensor.Of(tensor.Float64))
	for i, r := range op.fwd.r {
		d.Float64s()[i] = r * seed
	}
	return d, nil
}
func (op *weightedSumGrad) ReturnsPtr() bool      { return false }
func (op *weightedSumGrad) CallsExtern() bool     { return false }
func (op *weightedSumGrad) OverwritesInput() int  { return -1 }
func (op *weightedSumGrad) WriteHash(h hash.Hash) { fmt.Fprintf(h, "wsg%p", op) }
func (op *weightedSumGrad) Hashcode() uint32      { return 2 }
func (op *weightedSumGrad) String() string        { return "wsGrad" }

// TestGatherRowsGradient compares the gradient of sum(r .* gather(x))
// with central finite differences, with indices that read some rows twice
// and some never (so accumulation and zero rows are covered).
func TestGatherRowsGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	const R, D, M, K = 7, 3, 2, 4
	idx := &rowIndex{Rows: []int{3, 0, 6, 3, 1, 5, 0, 2}}
	xv := tensor.New(tensor.WithShape(R, D), tensor.Of(tensor.Float64))
	for i := range xv.Float64s() {
		xv.Float64s()[i] = rng.NormFloat64()
	}
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 2, G.WithShape(R, D), G.WithValue(xv), G.WithName("x"))
	y, err := gatherRows(x, idx, M, K)
	if err != nil {
		t.Fatal(err)
	}
	if !y.Shape().Eq(tensor.Shape{M, K * D}) {
		t.Fatalf("output shape %v, expected [%d %d]", y.Shape(), M, K*D)
	}
	r := make([]float64, M*K*D)
	for i := range r {
		r[i] = rng.NormFloat64()
	}
	loss, err := G.ApplyOp(&weightedSum{r: r}, y)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(loss, x)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	run := func() float64 {
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		return loss.Value().Data().(float64)
	}
	run()
	// Forward against a plain reference.
	got := y.Value().Data().([]float64)
	for mi := 0; mi < M; mi++ {
		for k := 0; k < K; k++ {
			for d := 0; d < D; d++ {
				if want := xv.Float64s()[idx.Rows[mi*K+k]*D+d]; got[mi*K*D+k*D+d] != want {
					t.Fatalf("y[%d, %d] = %v, expected x[%d, %d] = %v", mi, k*D+d, got[mi*K*D+k*D+d], idx.Rows[mi*K+k], d, want)
				}
			}
		}
	}
	analytic := append([]float64(nil), grads[0].Value().Data().([]float64)...)
	const h = 1e-5
	data := xv.Float64s()
	for j := range data {
		orig := data[j]
		data[j] = orig + h
		fp := run()
		data[j] = orig - h
		fm := run()
		data[j] = orig
		num := (fp - fm) / (2 * h)
		if math.Abs(num-analytic[j]) > 1e-6+1e-5*math.Abs(num) {
			t.Fatalf("d/dx[%d]: analytic %.8g, finite difference %.8g", j, analytic[j], num)
		}
	}
	// Row 4 is never read: its gradient is exactly zero.
	for d := 0; d < D; d++ {
		if analytic[4*D+d] != 0 {
			t.Fatalf("unread row 4 has gradient %v", analytic[4*D+d])
		}
	}
	// A changed index takes effect on the next run.
	idx.Rows[0] = 4
	run()
	if y.Value().Data().([]float64)[0] != data[4*D] {
		t.Fatal("changing the index did not change the next run's output")
	}
	idx.Rows[0] = R
	m.Reset()
	if err := m.RunAll(); err == nil {
		t.Fatal("an index outside the input rows ran without error")
	}
}

// TestFlattenRowsGradient checks the rank-4 path (flatten, then gather)
// against finite differences and a plain reference.
func TestFlattenRowsGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	xv := tensor.New(tensor.WithShape(4, 2, 2, 3), tensor.Of(tensor.Float64))
	for i := range xv.Float64s() {
		xv.Float64s()[i] = rng.NormFloat64()
	}
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(4, 2, 2, 3), G.WithValue(xv), G.WithName("x"))
	f, err := flattenRows(x)
	if err != nil {
		t.Fatal(err)
	}
	y, err := gatherRows(f, &rowIndex{Rows: []int{2, 0, 3, 1}}, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Shape().Eq(tensor.Shape{4, 12}) || !y.Shape().Eq(tensor.Shape{2, 24}) {
		t.Fatalf("shapes %v %v", f.Shape(), y.Shape())
	}
	r := make([]float64, 48)
	for i := range r {
		r[i] = rng.NormFloat64()
	}
	loss, err := G.ApplyOp(&weightedSum{r: r}, y)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(loss, x)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	// y row 0 = x[2], x[0]; row 1 = x[3], x[1], each flattened; so
	// dL/dx[j] = r at the place x[j] was copied to.
	where := map[int]int{2: 0, 0: 12, 3: 24, 1: 36}
	got := y.Value().Data().([]float64)
	dx := grads[0].Value().Data().([]float64)
	if !grads[0].Shape().Eq(tensor.Shape{4, 2, 2, 3}) {
		t.Fatalf("gradient shape %v", grads[0].Shape())
	}
	for j, off := range where {
		for e := 0; e < 12; e++ {
			if got[off+e] != xv.Float64s()[j*12+e] {
				t.Fatalf("y[%d] = %v, expected x row %d value %d = %v", off+e, got[off+e], j, e, xv.Float64s()[j*12+e])
			}
			if math.Abs(dx[j*12+e]-r[off+e]) > 1e-12 {
				t.Fatalf("dx row %d value %d = %v, expected %v", j, e, dx[j*12+e], r[off+e])
			}
		}
	}
}

// cellImage is an S x S image whose 3x3 cells are constant: cell i of
// channel c holds 20*(i+1) + 5*c.
func cellImage(s int) data.Image {
	img := data.Image{C: 3, H: s, W: s, Pix: make([]uint8, 3*s*s)}
	for c := 0; c < 3; c++ {
		for y := 0; y < s; y++ {
			for x := 0; x < s; x++ {
				i := (y*3/s)*3 + x*3/s
				img.Pix[(c*s+y)*s+x] = uint8(20*(i+1) + 5*c)
			}
		}
	}
	return img
}

// tinyJigsawConfig is a pretext config for 36 px images cut without
// resizing (the window is the whole image) into 12 px cells and 10 px
// tiles, with the pixel-value changes off.
func tinyJigsawConfig(n int) Config {
	cfg := DefaultConfig(3, 36)
	j := DefaultJigsawConfig(36)
	j.N, j.TileDim, j.Hidden = n, 8, 16
	j.Tiles = TileConfig{Grid: 3, Crop: 36, CropFrac: 1, Tile: 10, Gap: true}
	cfg.Jigsaw = &j
	return cfg
}

// buildJigsaw builds the jigsaw model on a resnet20c of seed 2 in inference
// mode.
func buildJigsaw(t *testing.T, cfg Config, batch int, heads models.Weights) (*jigsawModel, *models.Backbone) {
	t.Helper()
	task, err := New("jigsaw")
	if err != nil {
		t.Fatal(err)
	}
	return buildTask[*jigsawModel](t, task, "resnet20c", 3, cfg, batch, heads, &ops.Mode{Training: false}, rand.New(rand.NewSource(2)))
}

// TestJigsawBatchAndPermutation checks, for both heads, that MakeBatch lays
// the tiles out in raster order (identified by their constant values) and
// that the network reads the per-tile row of image b at shuffled position p
// from tile Perms[target][p], the convention of PermSet.
func TestJigsawBatchAndPermutation(t *testing.T) {
	for _, head := range []string{JigsawHeadSpatial, JigsawHeadPooled} {
		t.Run(head, func(t *testing.T) { testJigsawBatch(t, head) })
	}
}

func testJigsawBatch(t *testing.T, head string) {
	const B = 3
	cfg := tinyJigsawConfig(10)
	cfg.Jigsaw.Head = head
	m, bb := buildJigsaw(t, cfg, B, nil)
	set, err := cfg.Jigsaw.PermSet()
	if err != nil {
		t.Fatal(err)
	}
	imgs := []data.Image{cellImage(36), cellImage(36), cellImage(36)}
	b, err := m.MakeBatch(imgs, []int{-1, -1, -1}, []int{0, 1, 2}, rand.New(rand.NewSource(4)))
	if err != nil {
		t.Fatal(err)
	}
	const per = 3 * 10 * 10
	masks := map[string][]int{JigsawHeadSpatial: {9 * B * 8, B * 16}, JigsawHeadPooled: {B * 16}}[head]
	if len(b.Inputs) != 1+len(masks) || len(b.Inputs[0]) != 9*B*per || len(b.Targets) != B {
		t.Fatalf("batch: %d inputs, %d values, %d targets", len(b.Inputs), len(b.Inputs[0]), len(b.Targets))
	}
	// Dropout masks (rate 0.5): zeros and 2s, about half each.
	for i, n := range masks {
		if len(b.Inputs[1+i]) != n {
			t.Fatalf("dropout mask %d has %d values, expected %d", i, len(b.Inputs[1+i]), n)
		}
		zeros := 0
		for _, v := range b.Inputs[1+i] {
			if v != 0 && v != 2 {
				t.Fatalf("dropout mask %d holds %v, expected 0 or 2", i, v)
			}
			if v == 0 {
				zeros++
			}
		}
		if f := float64(zeros) / float64(n); f < 0.3 || f > 0.7 {
			t.Fatalf("dropout mask %d drops %.2f of its units, expected about 0.5", i, f)
		}
	}
	for r := 0; r < 9*B; r++ {
		for c := 0; c < 3; c++ {
			want := (float32(20*(r%9+1)+5*c)/255 - cfg.Mean[c]) / cfg.Std[c]
			for _, v := range b.Inputs[0][r*per+c*100 : r*per+(c+1)*100] {
				if math.Abs(float64(v-want)) > 1e-5 {
					t.Fatalf("input row %d channel %d holds %v, expected tile %d's value %v", r, c, v, r%9, want)
				}
			}
		}
	}
	b.Targets = []int{0, 7, 3} // pin the permutations so all differ
	if err := m.Load(b); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(bb.Graph)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	feats := m.feats.Value().Data().([]float32)
	cat := m.concat.Value().Data().([]float32)
	D := m.feats.Shape()[1]
	if want := map[string]int{JigsawHeadSpatial: 8, JigsawHeadPooled: bb.Spec.FeatureDim}[head]; D != want {
		t.Fatalf("per-tile rows of %d values, expected %d", D, want)
	}
	if !m.concat.Shape().Eq(tensor.Shape{B, 9 * D}) {
		t.Fatalf("concatenated features %v, expected [%d %d]", m.concat.Shape(), B, 9*D)
	}
	distinct := false
	for d := 0; d < D; d++ {
		distinct = distinct || feats[d] != feats[D+d]
	}
	if !distinct {
		t.Fatal("tiles 0 and 1 have identical features: the order check would be vacuous")
	}
	for i, k := range b.Targets {
		for p, src := range set.Perms[k] {
			got := cat[i*9*D+p*D : i*9*D+(p+1)*D]
			want := feats[(i*9+src)*D : (i*9+src+1)*D]
			for d := range got {
				if got[d] != want[d] {
					t.Fatalf("image %d (perm %d %v): position %d holds %v, expected tile %d's features %v", i, k, set.Perms[k], p, got[d], src, want[d])
				}
			}
		}
	}
	if b.Targets[2] = 10; m.Load(b) == nil {
		t.Fatal("Load accepted target 10 of a 10-permutation set")
	}
}

// TestJigsawTargetsUniform checks that MakeBatch draws every permutation.
func TestJigsawTargetsUniform(t *testing.T) {
	cfg := tinyJigsawConfig(4)
	m, _ := buildJigsaw(t, cfg, 1, nil)
	counts := make([]int, 4)
	rng := rand.New(rand.NewSource(5))
	img := []data.Image{cellImage(36)}
	for i := 0; i < 400; i++ {
		b, err := m.MakeBatch(img, []int{-1}, []int{0}, rng)
		if err != nil {
			t.Fatal(err)
		}
		counts[b.Targets[0]]++
	}
	for k, c := range counts {
		if c < 70 || c > 130 {
			t.Fatalf("permutation %d drawn %d times in 400, expected about 100 (counts %v)", k, c, counts)
		}
	}
}

func TestJigsawHeadsAndPermFile(t *testing.T) {
	cfg := tinyJigsawConfig(6)
	m, _ := buildJigsaw(t, cfg, 2, nil)
	heads := m.HeadWeights()
	// Spatial head: fc6 on the flattened last map (64 channels, 3x3 for
	// 10 px tiles), fc7 on nine fc6 outputs, fc8 to the 6 classes; batch
	// norms after fc6 and fc7 (weight, bias and running statistics).
	if len(heads) != 14 || fmt.Sprint(heads["head.fc6.weight"].Shape) != "[8 576]" ||
		fmt.Sprint(heads["head.fc7.weight"].Shape) != "[16 72]" || fmt.Sprint(heads["head.fc8.weight"].Shape) != "[6 16]" ||
		fmt.Sprint(heads["head.bn6.running_var"].Shape) != "[8]" || fmt.Sprint(heads["head.bn7.weight"].Shape) != "[16]" {
		t.Fatalf("head weights %v", heads.Names())
	}
	if len(m.Learnables()) != 10 {
		t.Fatalf("%d learnable head nodes, expected 10", len(m.Learnables()))
	}
	// Restored heads are used as given.
	m2, _ := buildJigsaw(t, cfg, 2, heads)
	for k, v := range m2.HeadWeights() {
		for i := range v.Data {
			if v.Data[i] != heads[k].Data[i] {
				t.Fatalf("restored %s differs at %d", k, i)
			}
		}
	}
	// Without fc7 (Hidden < 0) fc8 maps the nine fc6 outputs to N.
	cfg.Jigsaw.Hidden = -1
	m3, _ := buildJigsaw(t, cfg, 2, nil)
	if h := m3.HeadWeights(); len(h) != 8 || fmt.Sprint(h["head.fc8.weight"].Shape) != "[6 72]" {
		t.Fatalf("no fc7: head weights %v", h.Names())
	}
	// The pooled head has no fc6: fc7 sees nine pooled 64-d features.
	cfg.Jigsaw.Hidden, cfg.Jigsaw.Head = 16, JigsawHeadPooled
	m5, _ := buildJigsaw(t, cfg, 2, nil)
	if h := m5.HeadWeights(); len(h) != 8 || fmt.Sprint(h["head.fc7.weight"].Shape) != "[16 576]" {
		t.Fatalf("pooled head: head weights %v", h.Names())
	}
	// Without batch norm and dropout: linear layers only, no masks.
	cfg.Jigsaw.Head, cfg.Jigsaw.HeadNorm, cfg.Jigsaw.Dropout = JigsawHeadSpatial, JigsawNormNone, -1
	m6, _ := buildJigsaw(t, cfg, 2, nil)
	if h := m6.HeadWeights(); len(h) != 6 || len(m6.dropouts()) != 0 {
		t.Fatalf("plain head: head weights %v, %d dropout masks", h.Names(), len(m6.dropouts()))
	}
	// A checkpoint written before the head had batch norm builds that head
	// (no batch norm, no dropout) whatever the config says.
	cfg.Jigsaw.HeadNorm, cfg.Jigsaw.Dropout = JigsawNormBN, 0.5
	m7, _ := buildJigsaw(t, cfg, 2, m6.HeadWeights())
	if h := m7.HeadWeights(); len(h) != 6 || len(m7.dropouts()) != 0 {
		t.Fatalf("old checkpoint: head weights %v, %d dropout masks", h.Names(), len(m7.dropouts()))
	}
	cfg.Jigsaw.HeadNorm = "layer"
	if err := cfg.Jigsaw.Validate(); err == nil || !strings.Contains(err.Error(), `"layer"`) {
		t.Fatalf("head norm \"layer\": %v", err)
	}
	cfg.Jigsaw.HeadNorm, cfg.Jigsaw.Dropout = JigsawNormBN, 1
	if cfg.Jigsaw.Validate() == nil {
		t.Fatal("dropout 1 passed validation")
	}
	cfg.Jigsaw.Dropout = 0.5
	cfg.Jigsaw.Head = "conv"
	if cfg.Jigsaw.Validate() == nil {
		t.Fatal("head \"conv\" passed validation")
	}
	// A set read from a file replaces the generated one.
	set, err := GeneratePermSet(5, PermMethodMaxMin, 9)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "perms.txt")
	if err := set.WritePermSet(path); err != nil {
		t.Fatal(err)
	}
	cfg = tinyJigsawConfig(0)
	cfg.Jigsaw.PermFile = path
	m4, _ := buildJigsaw(t, cfg, 1, nil)
	if len(m4.perms) != 5 || fmt.Sprint(m4.perms) != fmt.Sprint(set.Perms) {
		t.Fatalf("perms from file %v, expected %v", m4.perms, set.Perms)
	}
	cfg.Jigsaw.N = 7
	if _, err := cfg.Jigsaw.PermSet(); err == nil {
		t.Fatal("n=7 with a 5-permutation file accepted")
	}
}

func TestResolveJigsaw(t *testing.T) {
	cfg := DefaultConfig(3, 32)
	j := ResolveJigsaw(cfg)
	if j.N != 100 || j.Method != PermMethodMaxAvg || j.Tiles.Crop != 30 || j.Tiles.Tile != 8 || j.Hidden != 512 {
		t.Fatalf("defaults for 32 px: %+v", j)
	}
	cfg.Jigsaw = &JigsawConfig{N: 10, Method: PermMethodRandom}
	j = ResolveJigsaw(cfg)
	if j.N != 10 || j.Method != PermMethodRandom || j.Tiles.Tile != 8 || !j.Tiles.Gap || j.Hidden != 512 {
		t.Fatalf("partial config resolved to %+v", j)
	}
	cfg.Jigsaw = &JigsawConfig{}
	if j = ResolveJigsaw(cfg); j.N != 100 || j.Method != PermMethodMaxAvg {
		t.Fatalf("empty config resolved to %+v", j)
	}
	cfg.Jigsaw = &JigsawConfig{PermFile: "perms.txt"}
	if j = ResolveJigsaw(cfg); j.N != 0 {
		t.Fatalf("with a file, n resolved to %d, expected 0 (the file's size)", j.N)
	}
	j.Tiles.Grid = 2
	if j.Validate() == nil {
		t.Fatal("a 2x2 grid passed validation")
	}
}
