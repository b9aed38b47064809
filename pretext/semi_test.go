package pretext

import (
	"math"
	"math/rand"
	"reflect"
	"sort"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// semiCase is a tiny semi-supervised setting: resnet20c on 12 px images,
// 3 classes, batches of 2 unlabelled + 2 labelled images.
type semiCase struct {
	spec    *models.Spec
	weights models.Weights
	cfg     Config
	imgs    []data.Image
	labels  []int
	index   []int
}

func newSemiCase(t *testing.T, weight float64) *semiCase {
	t.Helper()
	spec, err := models.New("resnet20c", 3)
	if err != nil {
		t.Fatal(err)
	}
	c := &semiCase{spec: spec, weights: models.InitWeights(spec, rand.New(rand.NewSource(1)))}
	c.cfg = DefaultConfig(3, 12)
	c.cfg.NumClasses, c.cfg.TrainImages = 3, 8
	c.cfg.Semi = &SemiConfig{Labelled: []int{1, 4, 6}, UnsupWeight: weight, Seed: 2}
	rng := rand.New(rand.NewSource(5))
	for i := 0; i < 4; i++ {
		img := data.Image{C: 3, H: 12, W: 12, Pix: make([]uint8, 3*12*12)}
		for j := range img.Pix {
			img.Pix[j] = uint8(rng.Intn(256))
		}
		c.imgs = append(c.imgs, img)
	}
	// The unlabelled half's labels are garbage: they must not be read.
	c.labels, c.index = []int{-7, 99, 2, 0}, []int{3, 5, 4, 1}
	return c
}

// build builds task on a fresh backbone holding the case's weights.
func (c *semiCase) build(t *testing.T, task string, heads models.Weights) (Model, *models.Backbone) {
	t.Helper()
	bb, err := models.NewBackbone(G.NewGraph(), c.spec, c.weights, tensor.Float32, &ops.Mode{Training: true})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := New(task)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tk.Build(bb, 2, c.cfg, heads, rand.New(rand.NewSource(3)))
	if err != nil {
		t.Fatal(err)
	}
	return m, bb
}

// runGrads loads b, runs the graph once and returns the loss and the
// gradient of every backbone and head parameter, by name.
func runGrads(t *testing.T, m Model, bb *models.Backbone, b *Batch) (float32, map[string][]float32) {
	t.Helper()
	params := append(bb.Learnables(), m.Learnables()...)
	grads, err := G.Grad(m.Loss(), params...)
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
	out := map[string][]float32{}
	for i, p := range params {
		out[p.Name()] = append([]float32(nil), grads[i].Value().Data().([]float32)...)
	}
	return m.Loss().Value().Data().(float32), out
}

// renamed returns the head weights under prefix from as prefix to.
func renamed(w models.Weights, from, to string) models.Weights {
	out := models.Weights{}
	for k, v := range w {
		if strings.HasPrefix(k, from+".") {
			out[to+strings.TrimPrefix(k, from)] = v
		}
	}
	return out
}

// The semi-rotation loss is exactly CE + W * rotation, each term computed
// alone by the supervised and the rotation task on the same weights and
// inputs; its gradients are the same weighted sum; with W = 0 it is the
// supervised loss and the rotation head gets no gradient.
func TestSemiLossIsWeightedSum(t *testing.T) {
	for _, w := range []float64{0.7, 0} {
		c := newSemiCase(t, w)
		semi, bb := c.build(t, "semi-rotation", nil)
		heads := semi.HeadWeights()
		b, err := semi.MakeBatch(c.imgs, c.labels, c.index, rand.New(rand.NewSource(9)))
		if err != nil {
			t.Fatal(err)
		}
		loss, grads := runGrads(t, semi, bb, b)

		rot, rbb := c.build(t, "rotation", renamed(heads, "head.fc", "head.fc"))
		u, ugrads := runGrads(t, rot, rbb, &Batch{Inputs: b.Inputs[:1], Targets: b.Targets[:8], Index: b.Index[:2]})
		sup, sbb := c.build(t, "supervised", renamed(heads, "head.class", "head.fc"))
		ce, cgrads := runGrads(t, sup, sbb, &Batch{Inputs: b.Inputs[1:], Targets: b.Targets[8:], Index: b.Index[2:]})

		if want := ce + float32(float32(w)*u); loss != want {
			t.Fatalf("W=%g: semi loss %v, CE %v + W * rotation %v = %v", w, loss, ce, u, want)
		}
		if w == 0 && loss != ce {
			t.Fatalf("W=0: semi loss %v, supervised %v", loss, ce)
		}
		if m := semi.Metrics(); m["sup_loss"] != float64(ce) || m["unsup_loss"] != float64(u) {
			t.Fatalf("metrics %v, terms %v %v", m, ce, u)
		}
		for name, g := range grads {
			var want []float32
			switch {
			case strings.HasPrefix(name, "head.class."):
				want = cgrads["head.fc."+strings.TrimPrefix(name, "head.class.")]
			case strings.HasPrefix(name, "head.fc."):
				want = make([]float32, len(g))
				for i, v := range ugrads[name] {
					want[i] = float32(w) * v
				}
			default:
				want = make([]float32, len(g))
				for i := range want {
					want[i] = cgrads[name][i] + float32(w)*ugrads[name][i]
				}
			}
			var diff, norm float64
			for i := range g {
				diff = math.Max(diff, math.Abs(float64(g[i]-want[i])))
				norm = math.Max(norm, math.Abs(float64(want[i])))
			}
			if len(want) != len(g) || diff > 1e-4*norm+1e-7 {
				t.Fatalf("W=%g: gradient of %s differs from CE's + W * rotation's by %g (largest %g)", w, name, diff, norm)
			}
		}
	}
}

// MakeBatch gives the unlabelled half to the self-supervised task and the
// labelled half, with its labels, to the classifier; the labels of the
// unlabelled half are not read; bad input is one clear error.
func TestSemiBatch(t *testing.T) {
	c := newSemiCase(t, 1)
	c.cfg.NoAugment = true
	m, _ := c.build(t, "semi-rotation", nil)
	b, err := m.MakeBatch(c.imgs, c.labels, c.index, rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Inputs) != 2 || len(b.Inputs[0]) != 8*3*144 || len(b.Inputs[1]) != 2*3*144 {
		t.Fatalf("inputs %d", len(b.Inputs))
	}
	if !reflect.DeepEqual(b.Targets, []int{0, 1, 2, 3, 0, 1, 2, 3, 2, 0}) || !reflect.DeepEqual(b.Index, c.index) {
		t.Fatalf("targets %v, index %v", b.Targets, b.Index)
	}
	for i, img := range c.imgs[2:] {
		v, _ := data.Normalize(data.ToTensor(img), c.cfg.Mean, c.cfg.Std)
		if !reflect.DeepEqual(b.Inputs[1][i*3*144:(i+1)*3*144], v.Data) {
			t.Fatalf("labelled view %d is not its image", i)
		}
	}
	if _, err := m.MakeBatch(c.imgs[:3], c.labels[:3], c.index[:3], rand.New(rand.NewSource(1))); err == nil || !strings.Contains(err.Error(), "expected 2 unlabelled and 2 labelled") {
		t.Fatalf("3 images: %v", err)
	}
	bad := append([]int(nil), c.labels...)
	bad[3] = 3
	if _, err := m.MakeBatch(c.imgs, bad, c.index, rand.New(rand.NewSource(1))); err == nil || !strings.Contains(err.Error(), "labelled image 1 has label 3 outside [0, 3)") {
		t.Fatalf("label 3 of 3 classes: %v", err)
	}
	if err := m.Load(&Batch{Inputs: b.Inputs, Targets: b.Targets[:1], Index: b.Index}); err == nil {
		t.Fatal("short batch loaded")
	}
	for _, sc := range []*SemiConfig{nil, {Labelled: []int{4, 1}, UnsupWeight: 1}, {Labelled: []int{8}, UnsupWeight: 1}, {Labelled: []int{1}, UnsupWeight: -1}} {
		c.cfg.Semi = sc
		bb, _ := models.NewBackbone(G.NewGraph(), c.spec, c.weights, tensor.Float32, &ops.Mode{})
		if _, err := (semiTask{"semi-rotation", "rotation"}).Build(bb, 2, c.cfg, nil, rand.New(rand.NewSource(1))); err == nil || !strings.Contains(err.Error(), "semi-rotation") {
			t.Errorf("semi config %+v: %v", sc, err)
		}
	}
}

// The labelled halves are passes over the labelled subset, each image once
// a pass, in an order fixed by the seed.
func TestSemiLabelledIndices(t *testing.T) {
	c := newSemiCase(t, 1)
	c.cfg.Semi.Labelled = []int{0, 2, 3, 5, 7}
	c.cfg.Semi.Seed = 4
	order := func(seed int64) []int {
		c.cfg.Semi.Seed = seed
		m, _ := c.build(t, "semi-rotation", nil)
		var all []int
		for step := 0; step < 10; step++ { // 20 images: 4 passes of 5
			idx, err := m.(Mixer).LabelledIndices(step)
			if err != nil || len(idx) != 2 {
				t.Fatalf("step %d: %v %v", step, idx, err)
			}
			all = append(all, idx...)
		}
		return all
	}
	all := order(4)
	for p := 0; p < 4; p++ {
		pass := append([]int(nil), all[5*p:5*p+5]...)
		sort.Ints(pass)
		if !reflect.DeepEqual(pass, c.cfg.Semi.Labelled) {
			t.Fatalf("pass %d: %v, expected each labelled image once", p, all[5*p:5*p+5])
		}
	}
	if !reflect.DeepEqual(all, order(4)) || reflect.DeepEqual(all, order(5)) {
		t.Fatal("the labelled order is not a function of the seed")
	}
	if reflect.DeepEqual(all[:5], all[5:10]) && reflect.DeepEqual(all[5:10], all[10:15]) {
		t.Fatal("every pass in the same order")
	}
}
