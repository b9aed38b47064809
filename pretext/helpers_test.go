package pretext

import (
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// Fixtures shared by the tests of the dense-prediction tasks
// (colorization, split-brain, inpainting, synthetic scenes).

// buildTask builds task on a fresh arch backbone with the given input
// channels (initialised from rng, which then goes to Build) and returns
// the model as M.
func buildTask[M Model](t *testing.T, task Task, arch string, channels int, cfg Config, batch int, heads models.Weights, mode *ops.Mode, rng *rand.Rand) (M, *models.Backbone) {
	t.Helper()
	spec, err := models.New(arch, channels)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := models.NewBackbone(G.NewGraph(), spec, models.InitWeights(spec, rng), tensor.Float32, mode)
	if err != nil {
		t.Fatal(err)
	}
	m, err := task.Build(bb, batch, cfg, heads, rng)
	if err != nil {
		t.Fatal(err)
	}
	return m.(M), bb
}

// lossGraph builds, on a new graph, the node x (named name, holding xv),
// scale * lossOf(x) and its gradient in x, and a tape machine for them
// (the caller closes it).
func lossGraph(t *testing.T, xv *tensor.Dense, name string, scale float64, lossOf func(*G.Node) (*G.Node, error)) (x, loss, dx *G.Node, vm G.VM) {
	t.Helper()
	g := G.NewGraph()
	x = G.NewTensor(g, xv.Dtype(), xv.Dims(), G.WithShape(xv.Shape()...), G.WithValue(xv), G.WithName(name))
	loss, err := lossOf(x)
	if err != nil {
		t.Fatal(err)
	}
	total, err := G.Mul(loss, G.NewConstant(scale))
	if err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(total, x)
	if err != nil {
		t.Fatal(err)
	}
	return x, loss, grads[0], G.NewTapeMachine(g)
}

// supervisedOn prepares a config for task (which must be a Preparer) on 8
// colour images of side s and builds the supervised task (2 classes, no
// augmentation) on a fresh arch backbone with the given input channels;
// it returns the config, the images, the model and a batch of the first
// two (the generator seeded with 1 initialises, builds and batches).
func supervisedOn(t *testing.T, task Task, arch string, channels, s int) (Config, *gradientSet, Model, *Batch) {
	t.Helper()
	ds := colorImages(8, s, 3)
	cfg := DefaultConfig(3, s)
	if err := task.(Preparer).Prepare(&cfg, ds); err != nil {
		t.Fatal(err)
	}
	cfg.NumClasses, cfg.NoAugment = 2, true
	rng := rand.New(rand.NewSource(1))
	m, _ := buildTask[Model](t, Supervised{}, arch, channels, cfg, 2, nil, &ops.Mode{}, rng)
	b, err := m.MakeBatch(ds.imgs[:2], []int{0, 1}, []int{0, 1}, rng)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, ds, m, b
}

// trainGraph returns the parameters of bb and m, the gradients of m's
// loss in them and a tape machine for bb's graph, closed when the test
// ends.
func trainGraph(t *testing.T, m Model, bb *models.Backbone) (params, grads G.Nodes, vm G.VM) {
	t.Helper()
	params = append(bb.Learnables(), m.Learnables()...)
	grads, err := G.Grad(m.Loss(), params...)
	if err != nil {
		t.Fatal(err)
	}
	vm = G.NewTapeMachine(bb.Graph)
	t.Cleanup(func() { vm.Close() })
	return params, grads, vm
}

// runFails runs vm from the start and fails the test if the run succeeds:
// what names the bad input it must refuse.
func runFails(t *testing.T, vm G.VM, what string) {
	t.Helper()
	vm.Reset()
	if err := vm.RunAll(); err == nil {
		t.Fatal(what + " accepted")
	}
}
