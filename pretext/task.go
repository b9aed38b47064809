// Package pretext holds the self-supervised pretext tasks (and the
// supervised baseline) that selfsup trains backbones with. Each task lives
// in its own file behind the Task interface: it turns source images into
// network inputs and targets, owns its heads and its loss. Adding a task
// touches no other task's file.
package pretext

import (
	"fmt"
	"math/rand"
	"sort"
	"sync"

	G "gorgonia.org/gorgonia"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// Config is what every task needs to know about its inputs.
type Config struct {
	// Channels of the source images and the backbone input (1 or 3).
	Channels int `json:"channels"`
	// InputSize is the side, in pixels, of the square backbone input.
	InputSize int `json:"input_size"`
	// Mean and Std normalise each channel after augmentation.
	Mean []float32 `json:"mean"`
	Std  []float32 `json:"std"`
	// NumClasses is the number of labelled classes (supervised task only).
	NumClasses int `json:"num_classes,omitempty"`
	// CropScale is the area range of the random resized crop (default
	// [0.35, 1]); Flip enables random horizontal flips.
	CropScaleMin float64 `json:"crop_scale_min"`
	Flip         bool    `json:"flip"`
	// PadCrop, when > 0, replaces the random resized crop by a resize to
	// InputSize, PadCrop zero pixels of padding on every side and a random
	// InputSize crop (data.PadCrop; the CIFAR recipe of RotNet and of
	// supervised ResNets: 4 px at 32 px).
	PadCrop int `json:"pad_crop,omitempty"`
	// ColorJitter, when > 0, jitters brightness, contrast and saturation
	// by this strength and hue by a quarter of it, with probability 0.8,
	// after the crop and flip; GrayProb then turns a 3-channel view grey
	// (NPID and VISSL's PIRL: 0.4 and 0.2).
	ColorJitter float32 `json:"color_jitter,omitempty"`
	GrayProb    float64 `json:"gray_prob,omitempty"`
	// NoAugment replaces the random crop and flip by a plain resize to
	// InputSize: for evaluating a trained classifier on test images.
	NoAugment bool `json:"no_augment,omitempty"`
	// TrainImages is the number of training images; the trainer sets it
	// before Build (tasks with per-image state, such as a memory bank,
	// size it from this).
	TrainImages int `json:"train_images,omitempty"`
	// Jigsaw configures the jigsaw task (nil: DefaultJigsawConfig(InputSize)).
	Jigsaw *JigsawConfig `json:"jigsaw,omitempty"`
	// PIRL configures the memory-bank tasks pirl-*, npid (nil: DefaultPIRLConfig(TrainImages)).
	PIRL *PIRLConfig `json:"pirl,omitempty"`
	// DeepCluster configures the deepcluster task (nil: DefaultDeepClusterConfig()).
	DeepCluster *DeepClusterConfig `json:"deepcluster,omitempty"`
	// RelPos configures the relpos task (nil: DefaultRelPosConfig(InputSize)).
	RelPos *RelPosConfig `json:"relpos,omitempty"`
	// Inpaint configures the inpainting tasks (nil: DefaultInpaintConfig();
	// the mask kind always comes from the task's name).
	Inpaint *InpaintConfig `json:"inpaint,omitempty"`
	// Input is what the backbone sees of the images: "" their Channels
	// channels, data.SpaceLabL their CIE lightness (one channel, L*/100,
	// from 3-channel images; Mean and Std then hold its statistics) or
	// data.SpaceLab their L*, a*, b* over 100 (three channels). Set by the
	// colorization and splitbrain tasks (Preparer).
	Input string `json:"input,omitempty"`
	// Colorization configures the colorization task (nil:
	// DefaultColorizationConfig(); its ab prior comes from Prepare).
	Colorization *ColorizationConfig `json:"colorization,omitempty"`
	// SplitBrain configures the splitbrain task (nil:
	// DefaultSplitBrainConfig(); its ab prior comes from Prepare).
	SplitBrain *SplitBrainConfig `json:"splitbrain,omitempty"`
	// Semi configures the semi-supervised tasks semi-* (their labelled
	// subset; required there, see SemiConfig).
	Semi *SemiConfig `json:"semi,omitempty"`
	// Synthetic configures the synthetic task (nil:
	// DefaultSyntheticConfig(); Prepare writes the resolved one).
	Synthetic *SyntheticConfig `json:"synthetic,omitempty"`
}

// InputChannels is the number of channels the backbone sees: 1 in
// data.SpaceLabL, 3 in data.SpaceLab, else Channels.
func (c Config) InputChannels() int {
	if in, _, err := data.SpaceChannels(c.Input, c.Channels); err == nil {
		return in
	}
	return c.Channels
}

// Preparer is implemented by tasks whose config depends on the training
// images themselves (colorization: the lightness statistics and the
// empirical ab prior). The pretraining pipeline calls Prepare once the
// data-dependent defaults (channels, size, mean, std) are set, before the
// trainer starts; it must be deterministic, so a resumed run prepares the
// same config.
type Preparer interface {
	Prepare(cfg *Config, ds data.Dataset) error
}

// ArchAdapter is implemented by tasks that train a form of the requested
// architecture (splitbrain: its split form, models.Split). The trainer
// asks before a fresh run starts and records the answer as the run's
// architecture, so that exports and evaluations rebuild the same network.
type ArchAdapter interface {
	Arch(arch string) (string, error)
}

// DefaultConfig returns defaults for images with the given channels and size.
func DefaultConfig(channels, size int) Config {
	mean, std := make([]float32, channels), make([]float32, channels)
	for i := range mean {
		mean[i], std[i] = 0.5, 0.25
	}
	return Config{Channels: channels, InputSize: size, Mean: mean, Std: std, CropScaleMin: 0.35, Flip: true}
}

// Batch is one step's worth of prepared inputs: one flat float32 slice per
// input node of the task's graph, integer targets, and the dataset indices
// of the source images.
type Batch struct {
	Inputs  [][]float32
	Targets []int
	Index   []int
}

// Model is a task instantiated on a backbone for a fixed batch size.
type Model interface {
	// Loss is the scalar the trainer minimises.
	Loss() *G.Node
	// Learnables are the head parameters (the backbone's are separate).
	Learnables() G.Nodes
	// HeadWeights snapshots the head parameters for checkpoints.
	HeadWeights() models.Weights
	// MakeBatch turns source images into a Batch. It runs on worker
	// goroutines and must not touch graph state; all randomness comes
	// from rng.
	MakeBatch(imgs []data.Image, labels []int, index []int, rng *rand.Rand) (*Batch, error)
	// Load copies a batch into the graph's input nodes.
	Load(b *Batch) error
	// Metrics reads per-step metrics after the graph has run (for
	// example "pretext_acc").
	Metrics() map[string]float64
}

// Ranker is implemented by classification models: after a run, Ranks
// gives for every row of the batch how many classes scored above the
// target (0: top-1 correct, < 5: top-5 correct).
type Ranker interface {
	Ranks() []int
}

// Stateful is implemented by models that keep state besides their weights
// (PIRL's memory bank). The trainer saves State in every checkpoint (as
// "state.<name>" tensors) and hands it back through SetState on resume.
type Stateful interface {
	State() models.Weights
	SetState(models.Weights) error
}

// StateSharer is implemented by Stateful models whose copies can share
// one state (train's Config.Streams: copies of the graph on batch shares):
// ShareState makes the receiver read and update from's state, which the
// trainer then fills, saves and restores through the first copy.
type StateSharer interface {
	ShareState(from Model) error
}

// StepHook is implemented by models that update state after each training
// step, once the graph has run and the optimiser has stepped, with the
// batch that was loaded (for example the memory-bank update at b.Index).
// It is not called while evaluating held-out images.
type StepHook interface {
	AfterStep(b *Batch) error
}

// Reassigner is implemented by models whose targets are recomputed from
// the backbone itself at fixed points of training, and which then choose
// the training images of every step (DeepCluster's re-clustering and
// cluster-balanced sampling). Before every step s with s %
// ReassignEvery() == 0 (step 0 included, and again when a run resumes at
// such a step) the trainer lets the batches prepared so far run out, calls
// Reassign, and drops the optimiser's momentum for the model's Learnables
// (a re-initialised head starts afresh). BatchIndices then gives the
// dataset indices of steps s to s+ReassignEvery()-1; it is called from
// the batch workers, concurrently, and must only read. What Reassign
// changes belongs in the model's State (Stateful), so that a resumed run
// continues bit-identically.
type Reassigner interface {
	// ReassignEvery is the number of steps between reassignments (>= 1).
	ReassignEvery() int
	// Reassign recomputes the targets. features runs the current backbone
	// in inference mode, without augmentation, over the training images at
	// index and returns their pooled features [len(index), FeatureDim];
	// all randomness comes from rng. It returns figures for the progress
	// log.
	Reassign(features func(index []int) ([]float32, error), rng *rand.Rand) (map[string]float64, error)
	// BatchIndices returns the dataset indices of step's source images
	// (batch of them).
	BatchIndices(step int) ([]int, error)
}

// BatchStatsEvaluator is implemented by models whose backbone sees several
// kinds of input while training (PIRL: whole images and their transforms
// in separate passes), so that its running batch-norm statistics, an
// average over all of them, fit none: their held-out pretext accuracy is
// measured with each pass's own batch statistics (ops.Mode.BatchStats)
// when EvalBatchStats is true. Exports recalibrate the statistics on
// whole images instead (train.RecalibrateBN).
type BatchStatsEvaluator interface {
	EvalBatchStats() bool
}

// Mixer is implemented by models that learn from two kinds of images in
// every step (the semi-supervised tasks, semi.go): the step's Batch source
// images, drawn from all training images as for any task, followed by as
// many from a fixed labelled subset. MakeBatch then receives the 2*Batch
// images, the labelled ones last, each with its label and dataset index.
// LabelledIndices gives the dataset indices of step's labelled half; it is
// called from the batch workers, concurrently, and must only read. On
// held-out images (the trainer's evaluation) the batch is both halves.
type Mixer interface {
	LabelledIndices(step int) ([]int, error)
}

// Initializer is implemented by models whose state is filled from the
// backbone before the first step of a fresh run (PIRL's and NPID's memory
// bank: every entry the embedding of its image). features is as
// Reassigner's: the backbone in inference mode (batch-norm statistics
// re-estimated on the training images first), no augmentation, pooled
// features [len(index), FeatureDim] of the training images at index; n is
// the number of training images. A resumed run restores the state from its
// checkpoint instead.
type Initializer interface {
	InitState(features func(index []int) ([]float32, error), n int) error
}

// Task builds Models.
type Task interface {
	Name() string
	// Build adds the task's inputs, heads and loss on top of bb for batches
	// of batch source images. heads holds head weights to restore (from a
	// checkpoint) or is empty for fresh ones drawn from rng.
	Build(bb *models.Backbone, batch int, cfg Config, heads models.Weights, rng *rand.Rand) (Model, error)
	// NeedsLabels reports whether the task trains on class labels.
	NeedsLabels() bool
}

var (
	regMu sync.Mutex
	tasks = map[string]func() Task{}
)

// Register adds a task constructor under name; it panics on duplicates.
func Register(name string, f func() Task) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := tasks[name]; dup {
		panic("pretext: duplicate task " + name)
	}
	tasks[name] = f
}

// New returns the task registered under name.
func New(name string) (Task, error) {
	regMu.Lock()
	f, ok := tasks[name]
	regMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("pretext: unknown task %q (known: %v)", name, Names())
	}
	return f(), nil
}

// Names lists the registered tasks, sorted.
func Names() []string {
	regMu.Lock()
	defer regMu.Unlock()
	out := make([]string, 0, len(tasks))
	for k := range tasks {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fcHead builds the late-fusion classifier of jigsaw and relpos on x
// [B, in]: fc7 (hidden units and a ReLU; left out when hidden <= 0), fc8
// (classes) and softmax cross-entropy against labels. Layers are named
// head.fc7 and head.fc8, with weights from heads when it holds them.
func fcHead(g *G.ExprGraph, x *G.Node, in, hidden, classes int, labels *ops.Labels, heads models.Weights, rng *rand.Rand) (fc7, fc8 *models.Linear, logits, loss *G.Node, err error) {
	if hidden > 0 {
		if fc7, err = models.NewLinear(g, "head.fc7", in, hidden, heads, rng); err != nil {
			return
		}
		if x, err = fc7.Apply(x); err != nil {
			return
		}
		if x, err = ops.ReLU(x); err != nil {
			return
		}
		in = hidden
	}
	if fc8, err = models.NewLinear(g, "head.fc8", in, classes, heads, rng); err != nil {
		return
	}
	if logits, err = fc8.Apply(x); err != nil {
		return
	}
	loss, err = ops.SoftmaxCrossEntropy(logits, labels)
	return
}

// linearParams lists the weight and bias nodes of linear head layers, in
// order: a Model's Learnables.
func linearParams(ls []*models.Linear) G.Nodes {
	var out G.Nodes
	for _, l := range ls {
		out = append(out, l.W, l.B)
	}
	return out
}

// linearWeights snapshots linear head layers: a Model's HeadWeights.
func linearWeights(ls []*models.Linear) models.Weights {
	w := models.Weights{}
	for _, l := range ls {
		for k, v := range l.Weights() {
			w[k] = v
		}
	}
	return w
}

// predAccuracy is the fraction of rows whose prediction (written by the
// cross-entropy op's forward pass) equals the target.
func predAccuracy(l *ops.Labels) float64 {
	if len(l.Y) == 0 || len(l.Pred) != len(l.Y) {
		return 0
	}
	correct := 0
	for i, y := range l.Y {
		if l.Pred[i] == y {
			correct++
		}
	}
	return float64(correct) / float64(len(l.Y))
}

// orDefault sets *v to d when *v is zero: what a config's Resolve does
// field by field.
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}
