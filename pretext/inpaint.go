package pretext

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"math/rand"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// Inpaint is the context-encoder pretext task of Pathak, Krähenbühl,
// Donahue, Darrell & Efros, "Context Encoders: Feature Learning by
// Inpainting" (CVPR 2016): a region of every (augmented, normalised) image
// is blanked out and the network must paint it back from its context.
//
//	masked view [B, C, S, S] (hole filled with 0, the dataset mean after
//	normalisation) -> backbone up to its last spatial map [B, C', m, m]
//	-> k x (ConvTranspose2D K 4, stride 2, pad 1 [-> BatchNorm] -> ReLU)
//	   up to P = m*2^k >= the predicted side  (the DCGAN-style decoder of
//	   the paper's section 3.1)
//	-> 3x3 convolution to C channels: the prediction [B, C, P, P]
//	-> L2 on the masked region (eq. 1), read in the central window of P
//
// Masks (InpaintConfig.Mask): "center" (the task "inpainting") blanks the
// central square of half the side, a quarter of the area, and the decoder
// predicts that square only; "random-block" (the task "inpainting-block")
// blanks square blocks of a quarter of the side at random places until at
// least a quarter of the image is covered (section 3.3), and the decoder
// predicts the whole image with the loss on the blanked pixels only. With
// Overlap > 0 (center mask) the predicted square reaches Overlap pixels
// beyond the hole on every side, those border pixels stay visible in the
// input and weigh OverlapWeight in the loss, as in the paper's released
// code (4 pixels of 64, weight 10).
//
// The paper's adversarial term (weight 0.001 against 0.999 for L2) and its
// channel-wise fully connected layer are left out: the loss is the
// reconstruction term alone, and the decoder starts from the backbone's
// spatial map. The pooled backbone features stay what export writes; the
// decoder is a head. Metrics: "recon_mse" (mean squared error over the
// hole's pixels and channels, in normalised units), "recon_mse_baseline"
// (the same for predicting the dataset mean, 0) and "pretext_acc" (the
// fraction of the hole's values reconstructed within InpaintConfig.Tolerance
// on the [0, 1] pixel scale).
type Inpaint struct {
	Config InpaintConfig
}

func init() {
	Register("inpainting", func() Task { return Inpaint{Config: DefaultInpaintConfig()} })
	Register("inpainting-block", func() Task {
		c := DefaultInpaintConfig()
		c.Mask = InpaintMaskRandomBlock
		return Inpaint{Config: c}
	})
}

// Name is "inpainting" for the center mask and "inpainting-block" for random blocks.
func (t Inpaint) Name() string {
	if t.Config.Mask == InpaintMaskRandomBlock {
		return "inpainting-block"
	}
	return "inpainting"
}

func (Inpaint) NeedsLabels() bool { return false }

// resolve is the task's configuration: the pretext config's Inpaint where
// set, with the mask kind of the task, else the task's own.
func (t Inpaint) resolve(cfg Config) InpaintConfig {
	c := t.Config
	if cfg.Inpaint != nil {
		c = *cfg.Inpaint
		c.Mask = t.Config.Mask
	}
	return c.Resolve()
}

// Inpainting masks (InpaintConfig.Mask).
const (
	InpaintMaskCenter      = "center"
	InpaintMaskRandomBlock = "random-block"
)

// InpaintConfig configures the Inpaint task. Zero fields take the defaults
// of DefaultInpaintConfig (see Resolve).
type InpaintConfig struct {
	// Mask is InpaintMaskCenter (default) or InpaintMaskRandomBlock.
	Mask string `json:"mask"`
	// Overlap (center mask) is the width in pixels of the predicted
	// border around the hole that stays visible in the input (default 0;
	// the paper's code: 4 at 128 px).
	Overlap int `json:"overlap,omitempty"`
	// OverlapWeight is the loss weight of the border pixels relative to
	// the hole's (default 10, as the paper's code).
	OverlapWeight float64 `json:"overlap_weight"`
	// BlockFrac (random-block mask) is the side of a block as a fraction
	// of the image side (default 1/4), Coverage the fraction of the image
	// the blocks cover at least (default 1/4).
	BlockFrac float64 `json:"block_frac"`
	Coverage  float64 `json:"coverage"`
	// Width is the number of channels of the first up-convolution,
	// halved by every further one down to at least 16 (default 128).
	Width int `json:"width"`
	// NoBatchNorm drops the batch norms after the up-convolutions (on by
	// default, as in the DCGAN generator); the convolutions then get biases.
	NoBatchNorm bool `json:"no_batch_norm,omitempty"`
	// Tolerance is the largest absolute error on the [0, 1] pixel scale
	// that pretext_acc counts as reconstructed (default 0.1).
	Tolerance float64 `json:"tolerance"`
}

// DefaultInpaintConfig returns the defaults: center mask without overlap
// (overlap weight 10), random blocks of a quarter of the side covering a
// quarter of the image, decoder width 128 with batch norm, tolerance 0.1.
func DefaultInpaintConfig() InpaintConfig {
	return InpaintConfig{Mask: InpaintMaskCenter, OverlapWeight: 10, BlockFrac: 0.25, Coverage: 0.25, Width: 128, Tolerance: 0.1}
}

// Resolve returns c with its zero fields set to the defaults.
func (c InpaintConfig) Resolve() InpaintConfig {
	d := DefaultInpaintConfig()
	orDefault(&c.Mask, d.Mask)
	orDefault(&c.OverlapWeight, d.OverlapWeight)
	orDefault(&c.BlockFrac, d.BlockFrac)
	orDefault(&c.Coverage, d.Coverage)
	orDefault(&c.Width, d.Width)
	orDefault(&c.Tolerance, d.Tolerance)
	return c
}

// Validate checks the settings.
func (c InpaintConfig) Validate() error {
	switch {
	case c.Mask != InpaintMaskCenter && c.Mask != InpaintMaskRandomBlock:
		return fmt.Errorf("pretext: inpaint: mask must be %q or %q, got %q", InpaintMaskCenter, InpaintMaskRandomBlock, c.Mask)
	case c.Overlap < 0:
		return fmt.Errorf("pretext: inpaint: overlap must be >= 0, got %d", c.Overlap)
	case c.Overlap > 0 && c.Mask != InpaintMaskCenter:
		return fmt.Errorf("pretext: inpaint: overlap %d needs the %q mask", c.Overlap, InpaintMaskCenter)
	case !(c.OverlapWeight > 0) || math.IsInf(c.OverlapWeight, 0):
		return fmt.Errorf("pretext: inpaint: overlap weight must be positive and finite, got %v", c.OverlapWeight)
	case !(c.BlockFrac > 0 && c.BlockFrac <= 1):
		return fmt.Errorf("pretext: inpaint: block fraction must be in (0, 1], got %v", c.BlockFrac)
	case !(c.Coverage > 0 && c.Coverage <= 0.9):
		return fmt.Errorf("pretext: inpaint: coverage must be in (0, 0.9], got %v", c.Coverage)
	case c.Width < 1:
		return fmt.Errorf("pretext: inpaint: decoder width must be >= 1, got %d", c.Width)
	case !(c.Tolerance > 0):
		return fmt.Errorf("pretext: inpaint: tolerance must be positive, got %v", c.Tolerance)
	}
	return nil
}

// InpaintGeometry is where the loss looks, for images of side Size: the
// prediction covers the square of side Region at (Top, Left); the center
// mask's hole is the square of side Hole at (HoleTop, HoleLeft) inside it.
// For the random-block mask the region is the whole image and the hole is
// drawn per image (InpaintConfig.Blocks).
type InpaintGeometry struct {
	Size, Region, Top, Left int
	Hole, HoleTop, HoleLeft int
}

// Geometry returns the region and hole of images of side size: for the
// center mask a hole of side size/2 (a quarter of the area, the paper's
// choice) centred at floor((size-hole)/2) and a region Overlap pixels
// larger on every side; for random blocks the whole image.
func (c InpaintConfig) Geometry(size int) (InpaintGeometry, error) {
	g := InpaintGeometry{Size: size}
	if c.Mask == InpaintMaskRandomBlock {
		g.Region = size
		return g, nil
	}
	g.Hole = size / 2
	g.HoleTop = (size - g.Hole) / 2
	g.HoleLeft = g.HoleTop
	g.Region, g.Top, g.Left = g.Hole+2*c.Overlap, g.HoleTop-c.Overlap, g.HoleLeft-c.Overlap
	if g.Hole < 1 || g.Top < 0 || g.Top+g.Region > size {
		return g, fmt.Errorf("pretext: inpaint: a %d px image cannot hold a %d px hole with %d px overlap", size, g.Hole, c.Overlap)
	}
	return g, nil
}

// Blocks draws the random-block mask of an image of side size: blocks of
// side max(1, round(BlockFrac*size)) with their top-left corners uniform
// over the image, added until at least Coverage of the pixels are covered.
// It returns the mask [size*size], 1 on covered pixels.
func (c InpaintConfig) Blocks(size int, rng *rand.Rand) []float32 {
	m := make([]float32, size*size)
	b := max(1, min(size, int(math.Round(c.BlockFrac*float64(size)))))
	want := int(math.Ceil(c.Coverage * float64(size*size)))
	covered := 0
	for covered < want {
		top, left := rng.Intn(size-b+1), rng.Intn(size-b+1)
		for y := top; y < top+b; y++ {
			for x := left; x < left+b; x++ {
				if m[y*size+x] == 0 {
					m[y*size+x] = 1
					covered++
				}
			}
		}
	}
	return m
}

// inpaintModel is Inpaint built on a backbone for a fixed batch.
type inpaintModel struct {
	cfg    Config
	ic     InpaintConfig
	geo    InpaintGeometry
	batch  int
	input  *G.Node
	pred   *G.Node // [B, C, P, P]
	loss   *G.Node
	target *inpaintTarget
	params []*G.Node // learnable, in creation order
	bn     map[string]*ops.BNState
}

// inpaintPrefix starts the name of every decoder parameter.
const inpaintPrefix = "head.inpaint."

func (t Inpaint) Build(bb *models.Backbone, batch int, cfg Config, heads models.Weights, rng *rand.Rand) (Model, error) {
	ic := t.resolve(cfg)
	if err := ic.Validate(); err != nil {
		return nil, err
	}
	if cfg.Channels != bb.Spec.InC {
		return nil, fmt.Errorf("pretext: inpaint: images have %d channels, backbone %s expects %d", cfg.Channels, bb.Spec.Arch, bb.Spec.InC)
	}
	if batch < 1 {
		return nil, fmt.Errorf("pretext: inpaint: batch must be >= 1, got %d", batch)
	}
	if len(cfg.Std) != cfg.Channels && len(cfg.Std) != 1 {
		return nil, fmt.Errorf("pretext: inpaint: %d stds for %d channels", len(cfg.Std), cfg.Channels)
	}
	geo, err := ic.Geometry(cfg.InputSize)
	if err != nil {
		return nil, err
	}
	s, c := cfg.InputSize, cfg.Channels
	m := &inpaintModel{cfg: cfg, ic: ic, geo: geo, batch: batch, bn: map[string]*ops.BNState{}}
	m.target = &inpaintTarget{T: make([]float32, batch*c*geo.Region*geo.Region), W: make([]float32, batch*geo.Region*geo.Region),
		Hole: make([]float32, batch*geo.Region*geo.Region), Tol: make([]float64, c)}
	for ch := range m.target.Tol {
		sd := cfg.Std[0]
		if len(cfg.Std) > 1 {
			sd = cfg.Std[ch]
		}
		m.target.Tol[ch] = ic.Tolerance / float64(sd)
	}
	m.input = G.NewTensor(bb.Graph, tensor.Float32, 4, G.WithShape(batch, c, s, s), G.WithName("inpaint.views"),
		G.WithValue(tensor.New(tensor.WithShape(batch, c, s, s), tensor.Of(tensor.Float32))))
	last, err := lastSpatialOutput(bb.Spec)
	if err != nil {
		return nil, fmt.Errorf("pretext: inpaint: %w", err)
	}
	outs, err := bb.Forward(m.input, last)
	if err != nil {
		return nil, fmt.Errorf("pretext: inpaint: %w", err)
	}
	x := outs[last]
	if m.pred, err = m.decoder(bb, x, heads, rng); err != nil {
		return nil, err
	}
	if m.loss, err = inpaintLoss(m.pred, m.target, geo.Region); err != nil {
		return nil, err
	}
	return m, nil
}

// InpaintUpsamplings is the number of stride-2 up-convolutions the decoder
// needs to take a map of side mapSide to at least region pixels, and the
// side P they reach.
func InpaintUpsamplings(mapSide, region int) (k, side int, err error) {
	if mapSide < 1 || mapSide > region {
		return 0, 0, fmt.Errorf("pretext: inpaint: a %d px map cannot be decoded to a %d px region (the map must not be larger)", mapSide, region)
	}
	for side = mapSide; side < region; side *= 2 {
		k++
	}
	return k, side, nil
}

// decoder appends the decoder to x [B, C', m, m] and returns the
// prediction [B, C, P, P].
func (m *inpaintModel) decoder(bb *models.Backbone, x *G.Node, heads models.Weights, rng *rand.Rand) (*G.Node, error) {
	xs := x.Shape()
	if x.Dims() != 4 || xs[2] != xs[3] {
		return nil, fmt.Errorf("pretext: inpaint: backbone map %v, expected square [B, C, m, m]", xs)
	}
	k, _, err := InpaintUpsamplings(xs[2], m.geo.Region)
	if err != nil {
		return nil, err
	}
	in := xs[1]
	for j := 1; j <= k; j++ {
		out := max(m.ic.Width>>(j-1), min(m.ic.Width, 16))
		name := fmt.Sprintf("%sup%d", inpaintPrefix, j)
		// He initialisation over the effective fan-in of a stride-2, K 4
		// transposed convolution: every output cell sums 2x2 taps of Cin
		// channels.
		w, err := m.param(bb.Graph, name+".weight", heads, []int{in, out, 4, 4}, math.Sqrt(2/float64(4*in)), 0, rng)
		if err != nil {
			return nil, err
		}
		if m.ic.NoBatchNorm {
			b, err := m.param(bb.Graph, name+".bias", heads, []int{out}, 0, 0, rng)
			if err != nil {
				return nil, err
			}
			if x, err = ops.ConvTranspose2DBias(x, w, b, 2, 1, 0); err != nil {
				return nil, fmt.Errorf("pretext: inpaint: %s: %w", name, err)
			}
		} else {
			if x, err = ops.ConvTranspose2D(x, w, 2, 1, 0); err != nil {
				return nil, fmt.Errorf("pretext: inpaint: %s: %w", name, err)
			}
			if x, err = m.batchNorm(bb, name+".bn", x, heads, rng); err != nil {
				return nil, err
			}
		}
		if x, err = ops.ReLU(x); err != nil {
			return nil, fmt.Errorf("pretext: inpaint: %s: %w", name, err)
		}
		in = out
	}
	name := inpaintPrefix + "out"
	c := m.cfg.Channels
	w, err := m.param(bb.Graph, name+".weight", heads, []int{c, in, 3, 3}, math.Sqrt(1/float64(9*in)), 0, rng)
	if err != nil {
		return nil, err
	}
	b, err := m.param(bb.Graph, name+".bias", heads, []int{c}, 0, 0, rng)
	if err != nil {
		return nil, err
	}
	if x, err = ops.Conv2DBias(x, w, b, 1, 1); err != nil {
		return nil, fmt.Errorf("pretext: inpaint: %s: %w", name, err)
	}
	return x, nil
}

// param makes a learnable float32 node: the tensor heads holds under name
// (its shape must match), else a fresh one, normal with standard deviation
// std (std 0: every value fill).
func (m *inpaintModel) param(g *G.ExprGraph, name string, heads models.Weights, shape []int, std, fill float64, rng *rand.Rand) (*G.Node, error) {
	t, ok := heads[name]
	if ok {
		if !sameInts(t.Shape, shape) {
			return nil, fmt.Errorf("pretext: inpaint: head weight %s has shape %v, expected %v", name, t.Shape, shape)
		}
	} else {
		t = models.Tensor{Shape: shape, Data: make([]float32, prod(shape))}
		for i := range t.Data {
			if std > 0 {
				t.Data[i] = float32(rng.NormFloat64() * std)
			} else {
				t.Data[i] = float32(fill)
			}
		}
	}
	n := models.ParamNode(g, name, t, tensor.Float32)
	m.params = append(m.params, n)
	return n, nil
}

// batchNorm adds a batch norm named name (gamma, beta learnable; running
// statistics restored from heads when present) on x, sharing the
// backbone's training mode.
func (m *inpaintModel) batchNorm(bb *models.Backbone, name string, x *G.Node, heads models.Weights, rng *rand.Rand) (*G.Node, error) {
	c := x.Shape()[1]
	gamma, err := m.param(bb.Graph, name+".weight", heads, []int{c}, 0, 1, rng)
	if err != nil {
		return nil, err
	}
	beta, err := m.param(bb.Graph, name+".bias", heads, []int{c}, 0, 0, rng)
	if err != nil {
		return nil, err
	}
	st := &ops.BNState{Mean: make([]float32, c), Var: make([]float32, c), Momentum: 0.1, Eps: 1e-5, Mode: bb.Mode}
	for i := range st.Var {
		st.Var[i] = 1
	}
	for key, dst := range map[string][]float32{name + ".running_mean": st.Mean, name + ".running_var": st.Var} {
		if t, ok := heads[key]; ok {
			if !sameInts(t.Shape, []int{c}) {
				return nil, fmt.Errorf("pretext: inpaint: head statistics %s have shape %v, expected [%d]", key, t.Shape, c)
			}
			copy(dst, t.Data)
		}
	}
	m.bn[name] = st
	y, err := ops.BatchNorm(x, gamma, beta, st)
	if err != nil {
		return nil, fmt.Errorf("pretext: inpaint: %s: %w", name, err)
	}
	return y, nil
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func prod(s []int) int {
	n := 1
	for _, v := range s {
		n *= v
	}
	return n
}

func (m *inpaintModel) Loss() *G.Node { return m.loss }

func (m *inpaintModel) Learnables() G.Nodes { return append(G.Nodes(nil), m.params...) }

// HeadWeights snapshots the decoder's parameters and its batch norms'
// running statistics.
func (m *inpaintModel) HeadWeights() models.Weights {
	w := models.Weights{}
	for _, p := range m.params {
		w[p.Name()] = models.NodeTensor(p)
	}
	for name, st := range m.bn {
		c := len(st.Mean)
		w[name+".running_mean"] = models.Tensor{Shape: []int{c}, Data: append([]float32(nil), st.Mean...)}
		w[name+".running_var"] = models.Tensor{Shape: []int{c}, Data: append([]float32(nil), st.Var...)}
	}
	return w
}

// MakeBatch augments and normalises every image (random resized crop and
// flip, as the other tasks), then masks it. Inputs[0] holds the masked
// views [B, C, S, S] (hole set to 0); Inputs[1] the clean region [B, C, R,
// R]; Inputs[2] the loss weights [B, R, R]; Inputs[3] the hole [B, R, R]
// (1 where the view was blanked). Random-block masks are drawn from rng.
func (m *inpaintModel) MakeBatch(imgs []data.Image, labels []int, index []int, rng *rand.Rand) (*Batch, error) {
	cfg, geo := m.cfg, m.geo
	s, c, r := cfg.InputSize, cfg.Channels, geo.Region
	b := &Batch{Inputs: [][]float32{make([]float32, 0, len(imgs)*c*s*s), make([]float32, 0, len(imgs)*c*r*r),
		make([]float32, 0, len(imgs)*r*r), make([]float32, 0, len(imgs)*r*r)}, Index: index}
	for i, img := range imgs {
		if img.C != c {
			return nil, fmt.Errorf("pretext: inpaint: image %d has %d channels, expected %d", i, img.C, c)
		}
		v, err := data.Normalize(augment(img, cfg, rng), cfg.Mean, cfg.Std)
		if err != nil {
			return nil, fmt.Errorf("pretext: inpaint: image %d: %w", i, err)
		}
		if v.H != s || v.W != s {
			return nil, fmt.Errorf("pretext: inpaint: image %d augments to %dx%d, expected %dx%d", i, v.H, v.W, s, s)
		}
		hole, weight := m.mask(rng)
		// The target: the clean region.
		for ch := 0; ch < c; ch++ {
			for y := 0; y < r; y++ {
				off := (ch*s+geo.Top+y)*s + geo.Left
				b.Inputs[1] = append(b.Inputs[1], v.Data[off:off+r]...)
			}
		}
		// The view: the image with the hole blanked.
		for ch := 0; ch < c; ch++ {
			for y := 0; y < r; y++ {
				for x := 0; x < r; x++ {
					if hole[y*r+x] != 0 {
						v.Data[(ch*s+geo.Top+y)*s+geo.Left+x] = 0
					}
				}
			}
		}
		b.Inputs[0] = append(b.Inputs[0], v.Data...)
		b.Inputs[2] = append(b.Inputs[2], weight...)
		b.Inputs[3] = append(b.Inputs[3], hole...)
	}
	return b, nil
}

// mask returns one image's hole and loss weights over the region [R*R].
func (m *inpaintModel) mask(rng *rand.Rand) (hole, weight []float32) {
	geo, r := m.geo, m.geo.Region
	if m.ic.Mask == InpaintMaskRandomBlock {
		hole = m.ic.Blocks(geo.Size, rng)
		return hole, append([]float32(nil), hole...)
	}
	hole, weight = make([]float32, r*r), make([]float32, r*r)
	o := m.ic.Overlap
	for y := 0; y < r; y++ {
		for x := 0; x < r; x++ {
			if y >= o && y < r-o && x >= o && x < r-o {
				hole[y*r+x], weight[y*r+x] = 1, 1
			} else {
				weight[y*r+x] = float32(m.ic.OverlapWeight)
			}
		}
	}
	return hole, weight
}

// Load copies the masked views into the graph and the region, weights and
// hole into the loss.
func (m *inpaintModel) Load(b *Batch) error {
	if len(b.Inputs) != 4 {
		return fmt.Errorf("pretext: inpaint: batch has %d inputs, expected 4 (views, region, weights, hole)", len(b.Inputs))
	}
	dst := m.input.Value().Data().([]float32)
	want := []int{len(dst), len(m.target.T), len(m.target.W), len(m.target.Hole)}
	for i, n := range want {
		if len(b.Inputs[i]) != n {
			return fmt.Errorf("pretext: inpaint: batch input %d has %d values, expected %d (batch %d, input %d px, region %d px)",
				i, len(b.Inputs[i]), n, m.batch, m.cfg.InputSize, m.geo.Region)
		}
	}
	copy(dst, b.Inputs[0])
	copy(m.target.T, b.Inputs[1])
	copy(m.target.W, b.Inputs[2])
	copy(m.target.Hole, b.Inputs[3])
	return nil
}

// Metrics reports, over the hole of the last batch, recon_mse and
// recon_mse_baseline (normalised units) and pretext_acc.
func (m *inpaintModel) Metrics() map[string]float64 {
	st := m.target
	if st.Count == 0 {
		return map[string]float64{"recon_mse": 0, "recon_mse_baseline": 0, "pretext_acc": 0}
	}
	n := float64(st.Count)
	return map[string]float64{"recon_mse": st.SSE / n, "recon_mse_baseline": st.SST / n, "pretext_acc": float64(st.Hits) / n}
}

// InpaintScore is the reconstruction quality of an inpainting model on a
// set of images, over the holes' pixels and channels: MSE and BaselineMSE
// (predicting the dataset mean, 0) in normalised units, Acc the fraction
// within the tolerance (pretext_acc).
type InpaintScore struct {
	MSE         float64 `json:"recon_mse"`
	BaselineMSE float64 `json:"recon_mse_baseline"`
	Acc         float64 `json:"pretext_acc"`
	Images      int     `json:"images"`
}

// Evaluate scores the task with backbone arch and the given backbone and
// head weights on every image of ds: inference mode (running batch-norm
// statistics), no augmentation (images resized to cfg.InputSize), batches
// of batch images (the last one padded with rows that are not scored), and
// random-block masks drawn from a generator seeded with seed. It is what
// `selfsup eval pretext` reports for inpainting runs.
func (t Inpaint) Evaluate(arch string, backbone, heads models.Weights, cfg Config, batch int, ds data.Dataset, seed int64) (*InpaintScore, error) {
	var sse, sst float64
	var count, hits int
	err := t.infer(arch, backbone, heads, cfg, batch, ds, ds.Len(), seed, func(m *inpaintModel, _ *Batch, _, _ int) error {
		sse, sst, count, hits = sse+m.target.SSE, sst+m.target.SST, count+m.target.Count, hits+m.target.Hits
		return nil
	})
	if err != nil {
		return nil, err
	}
	if count == 0 {
		return nil, fmt.Errorf("pretext: evaluate inpaint: no masked pixels scored")
	}
	c := float64(count)
	return &InpaintScore{MSE: sse / c, BaselineMSE: sst / c, Acc: float64(hits) / c, Images: ds.Len()}, nil
}

// Picture paints the first n images of ds (as Evaluate sees them) and
// returns a grid with one row per image: the image, the masked view (hole
// in the dataset's mean colour) and the view with the prediction pasted
// into the hole, 2 px apart on a white background, every pixel drawn as
// a block of max(1, 96/InputSize) pixels (3 for CIFAR). One-channel
// images come out gray.
func (t Inpaint) Picture(arch string, backbone, heads models.Weights, cfg Config, batch int, ds data.Dataset, n int, seed int64) (image.Image, error) {
	n = min(n, ds.Len())
	if n < 1 {
		return nil, fmt.Errorf("pretext: inpaint picture: no images")
	}
	if cfg.Channels != 1 && cfg.Channels != 3 {
		return nil, fmt.Errorf("pretext: inpaint picture: %d channels, expected 1 or 3", cfg.Channels)
	}
	const gap = 2
	s, c := cfg.InputSize, cfg.Channels
	z := max(1, 96/s) // pixels drawn as z x z blocks
	cell := z*s + gap
	grid := image.NewRGBA(image.Rect(0, 0, 3*cell+gap, n*cell+gap))
	draw.Draw(grid, grid.Bounds(), image.White, image.Point{}, draw.Src)
	mean, std := func(ch int) float32 { return cfg.Mean[min(ch, len(cfg.Mean)-1)] }, func(ch int) float32 { return cfg.Std[min(ch, len(cfg.Std)-1)] }
	put := func(row, col int, at func(ch, y, x int) float32) {
		for y := 0; y < s; y++ {
			for x := 0; x < s; x++ {
				var rgb [3]uint8
				for k := range rgb {
					ch := min(k, c-1)
					v := float64(at(ch, y, x)*std(ch) + mean(ch))
					rgb[k] = uint8(math.Round(255 * math.Max(0, math.Min(1, v))))
				}
				px := image.Rect(gap+col*cell+z*x, gap+row*cell+z*y, gap+col*cell+z*(x+1), gap+row*cell+z*(y+1))
				draw.Draw(grid, px, &image.Uniform{color.RGBA{rgb[0], rgb[1], rgb[2], 255}}, image.Point{}, draw.Src)
			}
		}
	}
	err := t.infer(arch, backbone, heads, cfg, batch, ds, n, seed, func(m *inpaintModel, b *Batch, lo, real int) error {
		geo, r := m.geo, m.geo.Region
		pred := m.pred.Value().(*tensor.Dense).Float32s()
		side := m.pred.Shape()[2]
		o := (side - r) / 2
		for j := 0; j < real; j++ {
			view := b.Inputs[0][j*c*s*s : (j+1)*c*s*s]
			target, hole := b.Inputs[1][j*c*r*r:(j+1)*c*r*r], b.Inputs[3][j*r*r:(j+1)*r*r]
			// inRegion maps an image pixel to its index in the region, or -1.
			inRegion := func(y, x int) int {
				y, x = y-geo.Top, x-geo.Left
				if y < 0 || y >= r || x < 0 || x >= r {
					return -1
				}
				return y*r + x
			}
			put(lo+j, 0, func(ch, y, x int) float32 {
				if k := inRegion(y, x); k >= 0 {
					return target[ch*r*r+k]
				}
				return view[(ch*s+y)*s+x]
			})
			put(lo+j, 1, func(ch, y, x int) float32 { return view[(ch*s+y)*s+x] })
			put(lo+j, 2, func(ch, y, x int) float32 {
				if k := inRegion(y, x); k >= 0 && hole[k] != 0 {
					return pred[((j*c+ch)*side+k/r+o)*side+k%r+o]
				}
				return view[(ch*s+y)*s+x]
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return grid, nil
}

// infer builds the task in inference mode from the given weights and runs
// it over the first n images of ds in batches (the last one padded with
// rows that weigh nothing and are not scored), calling visit after every
// batch with the batch, the index of its first image and its number of
// real rows.
func (t Inpaint) infer(arch string, backbone, heads models.Weights, cfg Config, batch int, ds data.Dataset, n int, seed int64,
	visit func(m *inpaintModel, b *Batch, lo, real int) error) error {
	if n < 1 || n > ds.Len() || batch < 1 {
		return fmt.Errorf("pretext: evaluate inpaint: %d of %d images in batches of %d", n, ds.Len(), batch)
	}
	if err := checkHeads("inpaint", "an inpainting", heads, inpaintPrefix, "out.weight", "out.bias"); err != nil {
		return err
	}
	cfg.NoAugment = true
	rng := rand.New(rand.NewSource(seed))
	mod, vm, err := buildInfer(t, arch, cfg.Channels, backbone, heads, cfg, batch, rng)
	if err != nil {
		return err
	}
	defer vm.Close()
	m := mod.(*inpaintModel)
	rr := m.geo.Region * m.geo.Region
	return runBatches("inpaint", "images", m, vm, n, batch, func(lo, real int) (*Batch, error) {
		imgs, err := batchImages("inpaint", ds, lo, n, batch, false)
		if err != nil {
			return nil, err
		}
		b, err := m.MakeBatch(imgs, make([]int, batch), make([]int, batch), rng)
		if err != nil {
			return nil, err
		}
		clear(b.Inputs[2][real*rr:])
		clear(b.Inputs[3][real*rr:])
		return b, nil
	}, func(b *Batch, lo, real int) error { return visit(m, b, lo, real) })
}
