package pretext

import (
	"fmt"
	"math"
	"math/rand"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// PIRL, Pretext-Invariant Representation Learning (Misra & van der Maaten,
// "Self-Supervised Learning of Pretext-Invariant Representations", CVPR
// 2020), and its NPID baseline (Wu et al., CVPR 2018), on one memory bank.
//
// Every source image I gives a view v_I (the shared augmentation: random
// resized crop and flip) and, for PIRL, transformed views v_It. Heads on
// the pooled backbone features embed them in 128 dimensions, L2-normalised:
//
//   - f(v_I): features -> linear -> 128;
//   - g for jigsaw: each of the 9 tiles through the same backbone -> linear
//     -> 128, the nine concatenated in the (shuffled) order shown (9 x 128
//     = 1152) -> linear -> 128;
//   - g for rotation: the rotated view through the backbone -> linear ->
//     128.
//
// The memory bank (MemoryBank) holds m_I, an exponential moving average of
// f(v_I), updated after every step. The loss, as the source lecture writes
// it (the paper's Sec. 3.1-3.2), with s the cosine similarity and tau = 0.07:
//
//	h(a, b) = exp(s(a,b)/tau) / (exp(s(a,b)/tau) + sum_{I' in D_N} exp(s(b, m_I')/tau))
//	L_NCE(a, b) = -log h(a, b) - sum_{I' in D_N} log(1 - h(b, m_I'))
//	L = lambda L_NCE(m_I, g(v_It)) + (1 - lambda) L_NCE(m_I, f(v_I))
//
// where h(b, m_I') has the same denominator as h(a, b) (the candidates
// compared with b are the positive and the drawn negatives), D_N are K
// negatives drawn uniformly, with replacement, from the bank without the
// image's own entry (by default one draw shared by the batch, without any
// of its images; see PIRLConfig.PerImageNegatives), and lambda = 0.5.
// Gradients flow into f and g only; the bank entries are constants. With both transforms
// (pirl-jigsaw-rotation) the transform term is split evenly:
// L = lambda/2 (L_NCE(m_I, g_jig) + L_NCE(m_I, g_rot)) + (1 - lambda)
// L_NCE(m_I, f), the loss weights VISSL would take as [0.25, 0.25, 0.5].
// NPID is the loss on f alone: L = L_NCE(m_I, f(v_I)).
//
// PIRLConfig.Loss "nce" swaps L_NCE for VISSL's nce_loss_with_memory: NCE
// against uniform noise over the bank with the normalising constant Z
// estimated once from the first batch (NPID's eqs. 5-6; see ops.NCEUniform).

// Loss variants of PIRLConfig.Loss.
const (
	PIRLLossSoftmax = "pirl" // the lecture's L_NCE (ops.NCESoftmax)
	PIRLLossNCE     = "nce"  // VISSL's nce_loss_with_memory (ops.NCEUniform)
)

// PIRLConfig configures the memory-bank tasks. Zero fields take the
// defaults given.
type PIRLConfig struct {
	// BankSize is the number of training images: one bank entry each,
	// indexed by Batch.Index (default Config.TrainImages, which the
	// trainer sets).
	BankSize int `json:"bank_size"`
	// Dim of the embeddings and bank entries (default 128).
	Dim int `json:"dim,omitempty"`
	// Negatives drawn per image (default min(4096, BankSize-1)).
	Negatives int `json:"negatives,omitempty"`
	// PerImageNegatives draws each image's negatives on its own (as NPID
	// and VISSL do), excluding only that image. By default one draw per
	// step is shared by the batch and excludes all of its images: each
	// image's negatives are still uniform over the rest of the bank, and
	// the loss runs as two matrix products (at batch 64, 4096 negatives,
	// 50,000 images: 14 ms against 380 ms a step for two embeddings).
	PerImageNegatives bool `json:"per_image_negatives,omitempty"`
	// Temperature tau (default 0.07).
	Temperature float64 `json:"temperature,omitempty"`
	// Lambda weighs the transform term against the f term (default 0.5;
	// a negative value means 0).
	Lambda float64 `json:"lambda,omitempty"`
	// Momentum of the bank's moving average (default 0.5).
	Momentum float64 `json:"momentum,omitempty"`
	// Loss is "pirl" (default) or "nce" (see PIRLLossSoftmax, PIRLLossNCE).
	Loss string `json:"loss,omitempty"`
	// JigsawScaleMin is the smallest area fraction of the random resized
	// crop the jigsaw tiles are cut from (default 0.6, VISSL's
	// crop_scale_patches).
	JigsawScaleMin float64 `json:"jigsaw_scale_min,omitempty"`
	// Tiles cuts the jigsaw view (nil: PIRLTileConfig(InputSize)).
	Tiles *TileConfig `json:"tiles,omitempty"`
	// ColdBank keeps the random initial bank entries (no warm start) and
	// uses them as the positives of images whose entry has never been
	// written (the behaviour before, for comparisons). Otherwise an entry
	// never written (only possible with NoWarmStart) gives its image its
	// own current f(v_I), detached, as the positive
	// (ops.NCEMemory.FreshPos), and its first update replaces the random
	// vector.
	ColdBank bool `json:"cold_bank,omitempty"`
	// NoWarmStart skips filling the bank, before the first step, with
	// every image's embedding f by the initial network (one pass without
	// gradients, InitState). Without the warm start the first epoch has
	// no positives to pull toward (each image's fresh positive is its own
	// f), only negatives to push from: the embedding drifts away from every
	// entry it writes, and from the second epoch the stored positives
	// score below random negatives (measured: NPID's loss 1.7 in epoch 1,
	// 14 from epoch 2 on, chance about 9.3, pretext accuracy 0).
	NoWarmStart bool `json:"no_warm_start,omitempty"`
}

// DefaultPIRLConfig returns the defaults for a training set of bankSize
// images.
func DefaultPIRLConfig(bankSize int) *PIRLConfig {
	return &PIRLConfig{BankSize: bankSize, Dim: 128, Temperature: 0.07, Lambda: 0.5, Momentum: 0.5,
		Loss: PIRLLossSoftmax, JigsawScaleMin: 0.6, Negatives: min(4096, max(bankSize-1, 1))}
}

// PIRLTileConfig is the jigsaw geometry of VISSL's PIRL recipe scaled to
// imageSize: there a 255 px crop (RandomResizedCrop, area 0.6-1) is cut
// into 3x3 cells of 85 px with a 64 px tile at a random place in each,
// beside a 224 px image view. Here the crop is 3*round(imageSize*255/224/3)
// (36 px for 32 px CIFAR images: cells of 12, tiles of 9). Tiles are not
// normalised one by one (VISSL normalises them with the dataset statistics,
// as the image) and get colour jitter 0.4/0.4/0.4/0.1 and, with
// probability 0.2, grey; no chromatic-aberration shift.
func PIRLTileConfig(imageSize int) TileConfig {
	cell := max(1, int(math.Round(float64(imageSize)*255/224/3)))
	return TileConfig{
		Grid: 3, Crop: 3 * cell, CropFrac: 1, Tile: max(1, int(math.Round(float64(cell)*64/85))),
		Gap: true, PerTileNorm: false, Jitter: true, ChannelShift: 0,
		Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Hue: 0.1, GrayProb: 0.2,
	}
}

// resolvePIRL returns cfg.PIRL (nil: all defaults) with defaults filled in
// and ranges checked. The bank size comes from PIRL.BankSize or, when that
// is zero, from cfg.TrainImages (which the trainer sets); given both, they
// must agree.
func resolvePIRL(task string, cfg Config) (PIRLConfig, error) {
	var r PIRLConfig
	if cfg.PIRL != nil {
		r = *cfg.PIRL
	}
	switch {
	case r.BankSize == 0:
		r.BankSize = cfg.TrainImages
	case cfg.TrainImages != 0 && cfg.TrainImages != r.BankSize:
		return r, fmt.Errorf("pretext: %s: memory bank of %d entries (PIRL.BankSize) for %d training images (TrainImages)", task, r.BankSize, cfg.TrainImages)
	}
	if r.BankSize <= 0 {
		return r, fmt.Errorf("pretext: %s: the memory bank needs the number of training images: set Config.TrainImages or Config.PIRL.BankSize "+
			"(cfg.Pretext.PIRL = pretext.DefaultPIRLConfig(trainSet.Len()))", task)
	}
	inputSize := cfg.InputSize
	if r.BankSize < 2 {
		return r, fmt.Errorf("pretext: %s: memory bank of %d images: need at least 2 (one positive, one negative)", task, r.BankSize)
	}
	if r.Dim == 0 {
		r.Dim = 128
	}
	if r.Negatives == 0 {
		r.Negatives = min(4096, r.BankSize-1)
	}
	if r.Temperature == 0 {
		r.Temperature = 0.07
	}
	if r.Lambda == 0 {
		r.Lambda = 0.5
	} else if r.Lambda < 0 {
		r.Lambda = 0
	}
	if r.Momentum == 0 {
		r.Momentum = 0.5
	}
	if r.Loss == "" {
		r.Loss = PIRLLossSoftmax
	}
	if r.JigsawScaleMin == 0 {
		r.JigsawScaleMin = 0.6
	}
	if r.Tiles == nil {
		t := PIRLTileConfig(inputSize)
		r.Tiles = &t
	}
	switch {
	case r.Dim < 1:
		return r, fmt.Errorf("pretext: %s: embedding dim must be >= 1, got %d", task, r.Dim)
	case r.Negatives < 1:
		return r, fmt.Errorf("pretext: %s: negatives must be >= 1, got %d", task, r.Negatives)
	case !(r.Temperature > 0):
		return r, fmt.Errorf("pretext: %s: temperature must be > 0, got %g", task, r.Temperature)
	case r.Lambda > 1:
		return r, fmt.Errorf("pretext: %s: lambda must be in [0, 1], got %g", task, r.Lambda)
	case r.Momentum < 0 || r.Momentum >= 1:
		return r, fmt.Errorf("pretext: %s: bank momentum must be in [0, 1), got %g", task, r.Momentum)
	case r.Loss != PIRLLossSoftmax && r.Loss != PIRLLossNCE:
		return r, fmt.Errorf("pretext: %s: loss %q, expected %q or %q", task, r.Loss, PIRLLossSoftmax, PIRLLossNCE)
	case r.JigsawScaleMin <= 0 || r.JigsawScaleMin > 1:
		return r, fmt.Errorf("pretext: %s: jigsaw crop scale must be in (0, 1], got %g", task, r.JigsawScaleMin)
	case r.Tiles.Grid != 3:
		return r, fmt.Errorf("pretext: %s: jigsaw grid %d, the g head concatenates 3x3 tiles", task, r.Tiles.Grid)
	}
	if err := r.Tiles.Validate(); err != nil {
		return r, fmt.Errorf("pretext: %s: %w", task, err)
	}
	return r, nil
}

// bankTask is one of the memory-bank tasks: which transformed views it
// adds to the untransformed one.
type bankTask struct {
	name             string
	jigsaw, rotation bool
}

func init() {
	for _, t := range []bankTask{
		{name: "pirl-jigsaw", jigsaw: true},
		{name: "pirl-rotation", rotation: true},
		{name: "pirl-jigsaw-rotation", jigsaw: true, rotation: true},
		{name: "npid"},
	} {
		Register(t.name, func() Task { return t })
	}
}

func (t bankTask) Name() string      { return t.name }
func (t bankTask) NeedsLabels() bool { return false }

// jigsawTiles is the number of tiles of the jigsaw view.
const jigsawTiles = 9

// bankModel is a bankTask built on a backbone.
type bankModel struct {
	task  bankTask
	cfg   Config
	pc    PIRLConfig
	batch int
	mode  *ops.Mode
	// inputs: the view, then the jigsaw tiles and the rotated view when
	// the task has them (the order of Batch.Inputs).
	inputs []*G.Node
	heads  []*models.Linear
	loss   *G.Node
	// terms counts the transform terms; the loss input after them is f.
	terms int
	mem   *ops.NCEMemory
	bank  *MemoryBank
	// training is the mode of the last Load.
	training bool
}

func (t bankTask) Build(bb *models.Backbone, batch int, cfg Config, heads models.Weights, rng *rand.Rand) (Model, error) {
	pc, err := resolvePIRL(t.name, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Channels != bb.Spec.InC {
		return nil, fmt.Errorf("pretext: %s: images have %d channels, backbone %s expects %d", t.name, cfg.Channels, bb.Spec.Arch, bb.Spec.InC)
	}
	m := &bankModel{task: t, cfg: cfg, pc: pc, batch: batch, mode: bb.Mode}
	g, F, C, S, D := bb.Graph, bb.Spec.FeatureDim, cfg.Channels, cfg.InputSize, pc.Dim
	input := func(name string, shape ...int) *G.Node {
		n := G.NewTensor(g, tensor.Float32, 4, G.WithShape(shape...), G.WithName(name),
			G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))))
		m.inputs = append(m.inputs, n)
		return n
	}
	// embed runs x through the backbone and a linear head of width out.
	embed := func(x *G.Node, name string, out int) (*G.Node, error) {
		fs, err := bb.Forward(x, "features")
		if err != nil {
			return nil, err
		}
		l, err := models.NewLinear(g, name, F, out, heads, rng)
		if err != nil {
			return nil, err
		}
		m.heads = append(m.heads, l)
		return l.Apply(fs["features"])
	}
	fail := func(err error) (Model, error) { return nil, fmt.Errorf("pretext: %s: %w", t.name, err) }

	view := input("views", batch, C, S, S)
	var embs []*G.Node
	if t.jigsaw {
		T := pc.Tiles.Tile
		tiles := input("tiles", jigsawTiles*batch, C, T, T)
		e, err := embed(tiles, "head.g_jigsaw.tile", D) // [9B, D]
		if err != nil {
			return fail(err)
		}
		if e, err = G.Reshape(e, tensor.Shape{batch, jigsawTiles * D}); err != nil { // [B, 9D]
			return fail(err)
		}
		fc, err := models.NewLinear(g, "head.g_jigsaw.fc", jigsawTiles*D, D, heads, rng)
		if err != nil {
			return fail(err)
		}
		m.heads = append(m.heads, fc)
		if e, err = fc.Apply(e); err != nil {
			return fail(err)
		}
		embs = append(embs, e)
	}
	if t.rotation {
		e, err := embed(input("rotated", batch, C, S, S), "head.g_rotation", D)
		if err != nil {
			return fail(err)
		}
		embs = append(embs, e)
	}
	m.terms = len(embs)
	f, err := embed(view, "head.f", D)
	if err != nil {
		return fail(err)
	}
	embs = append(embs, f)
	weights := make([]float64, len(embs))
	for i := 0; i < m.terms; i++ {
		weights[i] = pc.Lambda / float64(m.terms)
	}
	weights[m.terms] = 1 - pc.Lambda
	if m.terms == 0 { // NPID
		weights[0] = 1
	}
	for i, e := range embs {
		if embs[i], err = ops.L2Normalize(e); err != nil {
			return fail(err)
		}
	}
	if m.bank, err = NewMemoryBank(pc.BankSize, D, pc.Momentum, rng); err != nil {
		return fail(err)
	}
	m.mem = &ops.NCEMemory{
		Bank: m.bank.Data, Rows: pc.BankSize, Dim: D,
		Pos: make([]float32, batch*D), Neg: make([]int, m.negatives()), K: pc.Negatives,
		SharedNeg: !pc.PerImageNegatives, Tau: pc.Temperature, Variant: ops.NCESoftmax,
	}
	if pc.Loss == PIRLLossNCE {
		m.mem.Variant = ops.NCEUniform
	}
	if m.loss, err = ops.MemoryNCE(embs, weights, m.mem); err != nil {
		return fail(err)
	}
	return m, nil
}

// negatives is the number of negative indices a batch carries.
func (m *bankModel) negatives() int {
	if m.pc.PerImageNegatives {
		return m.batch * m.pc.Negatives
	}
	return m.pc.Negatives
}

// rowNegatives returns image i's negatives among the loaded ones.
func (m *bankModel) rowNegatives(i int) []int {
	if m.pc.PerImageNegatives {
		return m.mem.Neg[i*m.pc.Negatives : (i+1)*m.pc.Negatives]
	}
	return m.mem.Neg
}

func (m *bankModel) Loss() *G.Node { return m.loss }

func (m *bankModel) Learnables() G.Nodes { return linearParams(m.heads) }

func (m *bankModel) HeadWeights() models.Weights { return linearWeights(m.heads) }

// MakeBatch prepares, per source image: the view (Inputs[0], [B, C, S,
// S]); for jigsaw, 9 tiles cut (PIRLConfig.Tiles) from a random resized
// crop of area JigsawScaleMin-1, shuffled by a random permutation
// (Inputs[1], [9B, C, T, T], image-major); for rotation, an independently
// augmented view turned by k quarter turns, k uniform in {0, 1, 2, 3}
// (last input, [B, C, S, S]). Targets holds the negative bank indices: K
// shared by the batch (SampleSharedNegatives) or, with PerImageNegatives,
// K for each image ([B, K], SampleNegatives).
func (m *bankModel) MakeBatch(imgs []data.Image, labels []int, index []int, rng *rand.Rand) (*Batch, error) {
	cfg, pc := m.cfg, m.pc
	if len(index) != len(imgs) {
		return nil, fmt.Errorf("pretext: %s: %d images with %d indices", m.task.name, len(imgs), len(index))
	}
	b := &Batch{Inputs: make([][]float32, len(m.inputs)), Index: append([]int(nil), index...)}
	norm := func(t data.Tensor) ([]float32, error) {
		v, err := data.Normalize(t, cfg.Mean, cfg.Std)
		return v.Data, err
	}
	for _, img := range imgs {
		if img.C != cfg.Channels {
			return nil, fmt.Errorf("pretext: %s: image has %d channels, expected %d", m.task.name, img.C, cfg.Channels)
		}
		v, err := norm(augment(img, cfg, rng))
		if err != nil {
			return nil, err
		}
		b.Inputs[0] = append(b.Inputs[0], v...)
		next := 1
		if m.task.jigsaw {
			crop := data.RandomResizedCrop(data.ToTensor(img), rng, pc.Tiles.Crop, pc.JigsawScaleMin, 1, 3.0/4, 4.0/3)
			tiles, err := MakeTiles(crop, *pc.Tiles, rng)
			if err != nil {
				return nil, fmt.Errorf("pretext: %s: %w", m.task.name, err)
			}
			for _, p := range rng.Perm(len(tiles)) {
				v := tiles[p].Data
				if !pc.Tiles.PerTileNorm {
					if v, err = norm(tiles[p]); err != nil {
						return nil, err
					}
				}
				b.Inputs[next] = append(b.Inputs[next], v...)
			}
			next++
		}
		if m.task.rotation {
			v, err := norm(data.Rotate90(augment(img, cfg, rng), rng.Intn(4)))
			if err != nil {
				return nil, err
			}
			b.Inputs[next] = append(b.Inputs[next], v...)
		}
	}
	var err error
	if pc.PerImageNegatives {
		b.Targets = make([]int, len(index)*pc.Negatives)
		err = SampleNegatives(rng, pc.BankSize, index, pc.Negatives, b.Targets)
	} else {
		b.Targets = make([]int, pc.Negatives)
		err = SampleSharedNegatives(rng, pc.BankSize, index, b.Targets)
	}
	if err != nil {
		return nil, fmt.Errorf("pretext: %s: %w", m.task.name, err)
	}
	return b, nil
}

// Load copies the batch into the graph. While training, each image's
// positive is its bank entry m_I at Batch.Index; in inference mode (held-
// out images, which have no bank entry) the positive is zero and the loss
// is not meaningful (Metrics then scores g against f instead).
func (m *bankModel) Load(b *Batch) error {
	if len(b.Inputs) != len(m.inputs) {
		return fmt.Errorf("pretext: %s: batch has %d inputs, expected %d", m.task.name, len(b.Inputs), len(m.inputs))
	}
	for i, n := range m.inputs {
		dst := n.Value().Data().([]float32)
		if len(b.Inputs[i]) != len(dst) {
			return fmt.Errorf("pretext: %s: batch input %d has %d values, graph expects %d (shape %v)", m.task.name, i, len(b.Inputs[i]), len(dst), n.Shape())
		}
		copy(dst, b.Inputs[i])
	}
	if len(b.Targets) != len(m.mem.Neg) {
		return fmt.Errorf("pretext: %s: batch has %d negative indices, expected %d", m.task.name, len(b.Targets), len(m.mem.Neg))
	}
	copy(m.mem.Neg, b.Targets)
	m.training = m.mode == nil || m.mode.Training
	m.mem.EstimateZ = m.training
	m.mem.FreshPos = m.mem.FreshPos[:0]
	if !m.training {
		clear(m.mem.Pos)
		return nil
	}
	if len(b.Index) != m.batch {
		return fmt.Errorf("pretext: %s: batch has %d indices, expected %d", m.task.name, len(b.Index), m.batch)
	}
	if err := m.bank.Gather(b.Index, m.mem.Pos); err != nil {
		return err
	}
	if !m.pc.ColdBank {
		for _, i := range b.Index {
			m.mem.FreshPos = append(m.mem.FreshPos, !m.bank.Written[i])
		}
	}
	return nil
}

// AfterStep moves the bank entries of the batch's images towards f(v_I)
// as the forward pass computed it (before this step's update; PIRL and
// VISSL do the same).
func (m *bankModel) AfterStep(b *Batch) error {
	f := m.terms
	if f >= len(m.mem.Seen) || len(m.mem.Seen[f]) != len(b.Index)*m.pc.Dim {
		return fmt.Errorf("pretext: %s: no embeddings of %d images from the forward pass to update the memory bank with", m.task.name, len(b.Index))
	}
	return m.bank.Update(b.Index, m.mem.Seen[f])
}

// ShareState makes m use from's memory bank (from: a model of the same
// task and bank). The NCE variant with a fixed Z is refused: each copy
// would estimate its own Z.
func (m *bankModel) ShareState(from Model) error {
	f, ok := from.(*bankModel)
	switch {
	case !ok || f.task.name != m.task.name:
		return fmt.Errorf("pretext: %s: cannot share the memory bank of %T", m.task.name, from)
	case f.bank.N != m.bank.N || f.bank.Dim != m.bank.Dim:
		return fmt.Errorf("pretext: %s: memory banks of [%d %d] and [%d %d] cannot be shared", m.task.name, m.bank.N, m.bank.Dim, f.bank.N, f.bank.Dim)
	case m.mem.Variant == ops.NCEUniform:
		return fmt.Errorf("pretext: %s: the NCE loss with a fixed Z (--pirl-loss nce) estimates Z per graph, so its copies cannot share one bank; use the default loss", m.task.name)
	}
	m.bank, m.mem.Bank = f.bank, f.bank.Data
	return nil
}

// EvalBatchStats is true for PIRL (whose backbone sees whole images and
// transformed ones), false for NPID (whole images only).
func (m *bankModel) EvalBatchStats() bool { return m.terms > 0 }

// Metrics reports, after a training step, "pretext_acc": the fraction of
// images whose positive m_I scores above all of its K sampled negatives,
// for g(v_It) (averaged over the transforms; for NPID, for f(v_I)), and
// for PIRL "pretext_acc_f", the same for f(v_I); with the "nce" loss,
// "nce_z" is the normalising constant. In inference mode (held-out
// images, no bank entry) PIRL's "pretext_acc" scores g(v_It) with f(v_I) as
// the positive against the same negatives; NPID has no positive there and
// reports nothing.
func (m *bankModel) Metrics() map[string]float64 {
	out := map[string]float64{}
	if m.mem.Variant == ops.NCEUniform {
		out["nce_z"] = m.mem.Z
	}
	if len(m.mem.Acc) != m.terms+1 {
		return out
	}
	if m.training {
		if m.terms == 0 {
			out["pretext_acc"] = m.mem.Acc[0]
			return out
		}
		var s float64
		for _, a := range m.mem.Acc[:m.terms] {
			s += a
		}
		out["pretext_acc"] = s / float64(m.terms)
		out["pretext_acc_f"] = m.mem.Acc[m.terms]
		return out
	}
	if m.terms == 0 {
		return out
	}
	var s float64
	for t := 0; t < m.terms; t++ {
		s += m.heldOutAccuracy(m.mem.Seen[t], m.mem.Seen[m.terms])
	}
	out["pretext_acc"] = s / float64(m.terms)
	return out
}

// heldOutAccuracy is the fraction of rows i of g whose dot product with
// f[i] exceeds that with each of the row's negatives in the bank.
func (m *bankModel) heldOutAccuracy(g, f []float32) float64 {
	D := m.pc.Dim
	n := len(g) / D
	if n == 0 || len(f) != len(g) {
		return 0
	}
	hits := 0
	for i := 0; i < n; i++ {
		gi := g[i*D : (i+1)*D]
		pos := dot32(gi, f[i*D:(i+1)*D])
		ok := true
		for _, j := range m.rowNegatives(i) {
			if dot32(gi, m.bank.Row(j)) >= pos {
				ok = false
				break
			}
		}
		if ok {
			hits++
		}
	}
	return float64(hits) / float64(n)
}

func dot32(a, b []float32) float64 {
	var s float64
	for i, v := range a {
		s += float64(v) * float64(b[i])
	}
	return s
}

// InitState fills every bank entry with the embedding f (the head
// "head.f" on the pooled backbone features, L2-normalised) of its image as
// the initial network computes it, in chunks of 2,048 images, and marks it
// written (pretext.Initializer). With ColdBank or NoWarmStart it does
// nothing.
func (m *bankModel) InitState(features func(index []int) ([]float32, error), n int) error {
	if m.pc.ColdBank || m.pc.NoWarmStart {
		return nil
	}
	if n != m.bank.N {
		return fmt.Errorf("pretext: %s: %d training images for a memory bank of %d", m.task.name, n, m.bank.N)
	}
	var f *models.Linear
	for _, h := range m.heads {
		if h.Name == "head.f" {
			f = h
		}
	}
	if f == nil {
		return fmt.Errorf("pretext: %s: no head.f to embed the images with", m.task.name)
	}
	w, b := models.NodeTensor(f.W), models.NodeTensor(f.B)
	D, F := w.Shape[0], w.Shape[1]
	const chunk = 2048
	for lo := 0; lo < n; lo += chunk {
		idx := make([]int, 0, chunk)
		for i := lo; i < min(lo+chunk, n); i++ {
			idx = append(idx, i)
		}
		feats, err := features(idx)
		if err != nil {
			return fmt.Errorf("pretext: %s: warm start: %w", m.task.name, err)
		}
		if len(feats) != len(idx)*F {
			return fmt.Errorf("pretext: %s: warm start: %d feature values for %d images of %d", m.task.name, len(feats), len(idx), F)
		}
		emb := make([]float32, len(idx)*D)
		for i := range idx {
			x := feats[i*F : (i+1)*F]
			for d := 0; d < D; d++ {
				s := float64(b.Data[d])
				for j, v := range w.Data[d*F : (d+1)*F] {
					s += float64(v) * float64(x[j])
				}
				emb[i*D+d] = float32(s)
			}
		}
		for _, i := range idx {
			m.bank.Written[i] = false // replaced, not averaged (Update)
		}
		if err := m.bank.Update(idx, emb); err != nil {
			return err
		}
	}
	return nil
}

// State returns the memory bank ("memory_bank", [BankSize, Dim]) and the
// NCE normalising constant ("nce_z", [1]; 0 until estimated or with the
// "pirl" loss) for checkpoints.
func (m *bankModel) State() models.Weights {
	return models.Weights{
		"memory_bank":         m.bank.Tensor(),
		"memory_bank_written": m.bank.WrittenTensor(),
		"nce_z":               {Shape: []int{1}, Data: []float32{float32(m.mem.Z)}},
	}
}

// SetState restores what State saved.
func (m *bankModel) SetState(w models.Weights) error {
	bank, ok := w["memory_bank"]
	if !ok {
		return fmt.Errorf("pretext: %s: checkpoint state has no memory_bank (has %v)", m.task.name, w.Names())
	}
	if err := m.bank.SetTensor(bank); err != nil {
		return fmt.Errorf("pretext: %s: %w", m.task.name, err)
	}
	if wr, ok := w["memory_bank_written"]; ok {
		if err := m.bank.SetWrittenTensor(wr); err != nil {
			return fmt.Errorf("pretext: %s: %w", m.task.name, err)
		}
	} else {
		// A checkpoint from before the flags: its entries were all
		// treated as written.
		for i := range m.bank.Written {
			m.bank.Written[i] = true
		}
	}
	z, ok := w["nce_z"]
	if !ok || len(z.Data) != 1 {
		return fmt.Errorf("pretext: %s: checkpoint state has no scalar nce_z", m.task.name)
	}
	m.mem.Z = float64(z.Data[0])
	return nil
}
