package pretext

import (
	"fmt"
	"math"
	"math/rand"

	G "gorgonia.org/gorgonia"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
)

// Semi-supervised training: a few labelled images and many unlabelled ones
// in every step, the objective a weighted sum of a supervised and a
// self-supervised term, as S4L ("S4L: Self-Supervised Semi-Supervised
// Learning", Zhai, Oliver, Kolesnikov & Beyer, ICCV 2019, Sec. 3) writes
// it:
//
//	L = L_l(D_l) + W * L_u(D_u)
//
// where L_l is the softmax cross-entropy of a linear classifier on the
// pooled backbone features of the labelled batch D_l and L_u is the
// self-supervised loss of the unlabelled batch D_u: RotNet's four-way
// rotation loss (semi-rotation, S4L-Rotation) or PIRL's jigsaw loss with
// its memory bank (semi-pirl). One backbone, one set of weights, serves
// both terms.
//
// Design. The task is composed of the existing models rather than
// rewritten: Build builds the self-supervised task's own model (Rotation
// or PIRL, with its input nodes, heads and state) and the supervised
// classifier (the classifier of the supervised task under the names
// "labelled" and "head.class") on the same *models.Backbone, and adds
// their losses. The trainer learns of the labelled half through one small
// optional interface, Mixer: every step it appends to the step's usual
// batch of unlabelled images (the epoch order over all training images)
// the labelled images LabelledIndices chooses (passes over the labelled
// subset, reshuffled each pass by SemiConfig.Seed), so MakeBatch sees both
// halves with their labels and indices, and nothing else in the trainer
// (checkpoints, resume, budgets, memory-bank hooks) changes. The labels of
// the unlabelled half are never read. The labelled subset itself (a
// class-balanced share fixed by the seed, or a file of image paths) is
// chosen outside, by the pipeline (data.LabelledSubset), and recorded in
// the config as indices.

// SemiConfig configures the semi-supervised tasks.
type SemiConfig struct {
	// Labelled are the indices, among the training images, of those whose
	// labels the task may use: sorted, distinct, in [0, TrainImages).
	Labelled []int `json:"labelled"`
	// UnsupWeight is W, the weight of the self-supervised term (>= 0; 0
	// leaves the supervised loss alone). S4L uses 1.
	UnsupWeight float64 `json:"unsup_weight"`
	// Seed orders the labelled images of successive steps.
	Seed int64 `json:"seed"`
}

// semiTask is a semi-supervised task: the supervised classifier beside the
// self-supervised task unsup.
type semiTask struct{ name, unsup string }

func init() {
	for _, t := range []semiTask{{"semi-rotation", "rotation"}, {"semi-pirl", "pirl-jigsaw"}} {
		Register(t.name, func() Task { return t })
	}
}

func (t semiTask) Name() string      { return t.name }
func (t semiTask) NeedsLabels() bool { return true }

// IsSemi reports whether task is semi-supervised: it needs Config.Semi,
// the labelled subset of its training images.
func IsSemi(task string) bool {
	t, err := New(task)
	if err != nil {
		return false
	}
	_, ok := t.(semiTask)
	return ok
}

// semiModel is a semiTask built on a backbone for batches of batch
// unlabelled and batch labelled images.
type semiModel struct {
	task     semiTask
	batch    int
	weight   float64
	seed     int64
	labelled []int
	lcfg     Config // the labelled views' augmentation: the supervised recipe's
	unsup    Model
	cls      *classifier
	loss     *G.Node
}

// semiBank is a semiModel on a memory-bank task: it passes the bank's
// state and hooks on.
type semiBank struct{ *semiModel }

func (t semiTask) Build(bb *models.Backbone, batch int, cfg Config, heads models.Weights, rng *rand.Rand) (Model, error) {
	fail := func(format string, args ...any) (Model, error) {
		return nil, fmt.Errorf("pretext: %s: "+format, append([]any{t.name}, args...)...)
	}
	sc := cfg.Semi
	switch {
	case sc == nil || len(sc.Labelled) == 0:
		return fail("no labelled images (Config.Semi.Labelled; selfsup pretrain --labels)")
	case !(sc.UnsupWeight >= 0) || math.IsInf(sc.UnsupWeight, 0):
		return fail("unsupervised weight %g, expected a finite value >= 0", sc.UnsupWeight)
	case cfg.NumClasses < 2:
		return fail("need at least 2 classes, got %d", cfg.NumClasses)
	}
	for i, j := range sc.Labelled {
		if j < 0 || (cfg.TrainImages > 0 && j >= cfg.TrainImages) || (i > 0 && j <= sc.Labelled[i-1]) {
			return fail("labelled index %d (entry %d): the indices must be sorted, distinct and in [0, %d)", j, i, cfg.TrainImages)
		}
	}
	inner, err := New(t.unsup)
	if err != nil {
		return nil, err
	}
	m := &semiModel{task: t, batch: batch, weight: sc.UnsupWeight, seed: sc.Seed, labelled: sc.Labelled, lcfg: cfg}
	m.lcfg.withRecipe(RecipeFor("supervised"))
	if m.unsup, err = inner.Build(bb, batch, cfg, heads, rng); err != nil {
		return fail("%w", err)
	}
	if m.cls, err = newClassifier(bb, "labelled", "head.class", batch, 1, cfg.NumClasses, m.lcfg, heads, rng); err != nil {
		return fail("%w", err)
	}
	w := G.NewConstant(float32(sc.UnsupWeight), G.WithName("unsup_weight"))
	u, err := G.Mul(w, m.unsup.Loss())
	if err == nil {
		m.loss, err = G.Add(m.cls.loss, u)
	}
	if err != nil {
		return fail("loss: %w", err)
	}
	if _, ok := m.unsup.(Stateful); ok {
		return semiBank{m}, nil
	}
	return m, nil
}

// Loss is CE(labelled) + W * unsup.
func (m *semiModel) Loss() *G.Node { return m.loss }

func (m *semiModel) Learnables() G.Nodes {
	return append(append(G.Nodes{}, m.unsup.Learnables()...), m.cls.Learnables()...)
}

func (m *semiModel) HeadWeights() models.Weights {
	w := m.unsup.HeadWeights()
	for k, v := range m.cls.HeadWeights() {
		w[k] = v
	}
	return w
}

// LabelledIndices returns the training-set indices of step's labelled
// half (Mixer): positions step*batch to (step+1)*batch-1 of an endless
// sequence of passes over the labelled subset, each pass in its own order
// drawn from the seed and the pass number.
func (m *semiModel) LabelledIndices(step int) ([]int, error) {
	if step < 0 {
		return nil, fmt.Errorf("pretext: %s: labelled images of step %d", m.task.name, step)
	}
	n := len(m.labelled)
	out := make([]int, m.batch)
	pass, perm := -1, []int(nil)
	for j := range out {
		p := step*m.batch + j
		if p/n != pass {
			pass = p / n
			perm = rand.New(rand.NewSource(m.seed*1_000_033 + int64(pass)*7_919 + 11)).Perm(n)
		}
		out[j] = m.labelled[perm[p%n]]
	}
	return out, nil
}

// MakeBatch takes the step's batch unlabelled images followed by batch
// labelled ones (Mixer). The unlabelled half becomes the self-supervised
// task's inputs and targets, first in the Batch, its labels unread; the
// labelled half is augmented as the supervised task's images are and
// becomes the last input, [batch, C, S, S], and the last batch targets
// (its labels).
func (m *semiModel) MakeBatch(imgs []data.Image, labels []int, index []int, rng *rand.Rand) (*Batch, error) {
	B := m.batch
	if len(imgs) != 2*B || len(labels) != 2*B || len(index) != 2*B {
		return nil, fmt.Errorf("pretext: %s: %d images, %d labels, %d indices; expected %d unlabelled and %d labelled", m.task.name, len(imgs), len(labels), len(index), B, B)
	}
	b, err := m.unsup.MakeBatch(imgs[:B], labels[:B], index[:B], rng)
	if err != nil {
		return nil, err
	}
	cfg := m.lcfg
	views := make([]float32, 0, B*cfg.Channels*cfg.InputSize*cfg.InputSize)
	for i, img := range imgs[B:] {
		l := labels[B+i]
		if l < 0 || l >= cfg.NumClasses {
			return nil, fmt.Errorf("pretext: %s: labelled image %d has label %d outside [0, %d)", m.task.name, index[B+i], l, cfg.NumClasses)
		}
		v, err := data.Normalize(augment(img, cfg, rng), cfg.Mean, cfg.Std)
		if err != nil {
			return nil, err
		}
		views = append(views, v.Data...)
	}
	b.Inputs = append(b.Inputs, views)
	b.Targets = append(b.Targets, labels[B:]...)
	b.Index = append(append([]int(nil), index[:B]...), index[B:]...)
	return b, nil
}

// split returns the self-supervised task's part of b and the classifier's.
func (m *semiModel) split(b *Batch) (*Batch, *Batch, error) {
	B := m.batch
	if len(b.Inputs) < 2 || len(b.Targets) < B || len(b.Index) != 2*B {
		return nil, nil, fmt.Errorf("pretext: %s: batch of %d inputs, %d targets, %d indices; expected the unlabelled inputs and one labelled, %d labels last, %d indices",
			m.task.name, len(b.Inputs), len(b.Targets), len(b.Index), B, 2*B)
	}
	k, t := len(b.Inputs)-1, len(b.Targets)-B
	return &Batch{Inputs: b.Inputs[:k], Targets: b.Targets[:t], Index: b.Index[:B]},
		&Batch{Inputs: b.Inputs[k:], Targets: b.Targets[t:], Index: b.Index[B:]}, nil
}

func (m *semiModel) Load(b *Batch) error {
	u, l, err := m.split(b)
	if err != nil {
		return err
	}
	if err := m.unsup.Load(u); err != nil {
		return err
	}
	return m.cls.Load(l)
}

// Metrics reports the self-supervised task's metrics ("pretext_acc" and
// the rest), "label_acc", the classifier's accuracy on the labelled half,
// and the two terms of the loss, "sup_loss" and "unsup_loss".
func (m *semiModel) Metrics() map[string]float64 {
	out := m.unsup.Metrics()
	out["label_acc"] = predAccuracy(m.cls.labels)
	out["sup_loss"], out["unsup_loss"] = scalarValue(m.cls.loss), scalarValue(m.unsup.Loss())
	return out
}

// Ranks are the classifier's (Ranker): on held-out images, where the batch
// is both halves, the class ranks of its images.
func (m *semiModel) Ranks() []int { return m.cls.Ranks() }

func scalarValue(n *G.Node) float64 {
	if n.Value() == nil {
		return math.NaN()
	}
	switch v := n.Value().Data().(type) {
	case float32:
		return float64(v)
	case float64:
		return v
	}
	return math.NaN()
}

func (m semiBank) State() models.Weights { return m.unsup.(Stateful).State() }

func (m semiBank) SetState(w models.Weights) error { return m.unsup.(Stateful).SetState(w) }

// AfterStep passes the unlabelled half on: the memory bank moves the
// entries of the unlabelled images only.
func (m semiBank) AfterStep(b *Batch) error {
	h, ok := m.unsup.(StepHook)
	if !ok {
		return nil
	}
	u, _, err := m.split(b)
	if err != nil {
		return err
	}
	return h.AfterStep(u)
}

func (m semiBank) InitState(features func(index []int) ([]float32, error), n int) error {
	if in, ok := m.unsup.(Initializer); ok {
		return in.InitState(features, n)
	}
	return nil
}
