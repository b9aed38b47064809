package pretext

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"sort"
	"strings"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/data/scene"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// Synthetic is the free-semantic-label task of Ren & Lee, "Cross-Domain
// Self-supervised Multi-task Feature Learning using Synthetic Imagery"
// (CVPR 2018, arXiv 1711.09082): the backbone sees rendered scenes
// (data/scene: ray-cast spheres, boxes and cylinders on a textured ground
// before textured walls, lit by one or two lights with shadows, from a
// random camera) and light dense decoders predict, for every pixel, the
// three labels the renderer gives for free:
//
//	scene [B, C, S, S] -> backbone -> every stage map [B, C_k, s_k, s_k]
//	-> per stage a 1x1 convolution to Width channels, bilinear upsampling
//	   to the grid G x G of the finest stage map (the input grid, 32 x 32,
//	   for the CIFAR-stem networks; a quarter of the side for the ImageNet
//	   stem), summed with one bias -> ReLU (a hypercolumn)
//	-> 3x3 convolution to 5 channels [B, 5, G, G]: depth, normal (3),
//	   contour logit
//	-> DepthWeight L1(depth) + NormalWeight (1 - cos)(normal)
//	   + ContourWeight class-weighted BCE(contour)   (synLoss)
//
// Targets on the G x G grid (block averages of the S x S render when G <
// S; contours: the block's maximum): depth along the camera axis divided
// by scene.MaxDepth (25 world units) and clipped to 1; the unit normal in
// camera coordinates (x right, y up, z away from the camera); instance
// contours (scene.Render: occlusion boundaries and depth discontinuities,
// on the nearer side). Contour weights follow HED's class balancing (the
// paper's contour loss): a positive pixel weighs 1-π and a negative one π,
// π the image's fraction of contour pixels, both divided by 2π(1-π) so
// that an image's weights average 1 (an image without contours, or all
// contour, weighs 1 everywhere). The three terms weigh 1 each by default,
// as the paper's released configuration.
//
// Scenes come from the batch's generator (scene.Random(rng), one per
// source image, whose pixels are ignored), so runs are reproducible and a
// resumed run draws the scenes an uninterrupted one would. The scene is
// quantised to 8 bits as photographs are (turned to BT.601 luma for
// 1-channel configs) and normalised with the config's mean and std (the
// training data's, which extraction applies to real images).
//
// Domain adaptation (SyntheticConfig.Adapt, `pretrain --synthetic-adapt
// DATA`): every step also draws Batch real, unlabelled images of DATA
// (uniformly, from the same generator, with the recipe's augmentation), and
// the backbone sees scenes and real images as one batch [2B, C, S, S]
// (its batch norms see both domains). A discriminator on the pooled
// features (Linear AdaptHidden -> ReLU -> Linear 2) learns with softmax
// cross-entropy to tell synthetic (class 0) from real (class 1); a
// gradient-reversal layer (ops.GradReverse, lambda AdaptLambda) between
// the features and the discriminator makes the same minimisation push the
// backbone to features the discriminator cannot separate (Ganin &
// Lempitsky 2015; the paper trains its discriminator in alternating
// GAN-style steps with a domain-loss weight of 0.1, the default lambda
// here). The decoders and their loss see the scenes' rows only.
//
// Metrics: "pretext_acc" is the fraction of grid pixels whose predicted
// normal is within 22.5° of the truth; "depth_l1", "normal_cos" (mean 1 -
// cos) and "contour_bce" are the three unweighted terms; with adaptation
// "disc_acc" (the discriminator's accuracy over both domains) and
// "disc_loss". Evaluate reports depth L1, the normals' angular error and
// the contours' F-score and average precision on freshly generated
// held-out scenes. The export holds the backbone only.
type Synthetic struct{}

func init() { Register("synthetic", func() Task { return Synthetic{} }) }

func (Synthetic) Name() string      { return "synthetic" }
func (Synthetic) NeedsLabels() bool { return false }

// SyntheticConfig configures the synthetic task. Zero fields take the
// defaults of DefaultSyntheticConfig (see Resolve).
type SyntheticConfig struct {
	// Width is the number of channels of the decoders' hypercolumn
	// (default 32).
	Width int `json:"width"`
	// DepthWeight, NormalWeight and ContourWeight weigh the three loss
	// terms (default 1 each).
	DepthWeight   float64 `json:"depth_weight"`
	NormalWeight  float64 `json:"normal_weight"`
	ContourWeight float64 `json:"contour_weight"`
	// Supersample is the renderer's sub-pixel grid on instance boundaries
	// (scene.Options; default 2).
	Supersample int `json:"supersample"`
	// Adapt is the dataset spec (data.Open) of the real images for domain
	// adaptation; "" trains without. AdaptImages is their number, set by
	// Prepare (a resumed run checks it).
	Adapt       string `json:"adapt,omitempty"`
	AdaptImages int    `json:"adapt_images,omitempty"`
	// AdaptLambda is the gradient-reversal weight (default 0.1) and
	// AdaptHidden the discriminator's hidden units (default 64).
	AdaptLambda float64 `json:"adapt_lambda,omitempty"`
	AdaptHidden int     `json:"adapt_hidden,omitempty"`
}

// DefaultSyntheticConfig returns the defaults: decoder width 32, loss
// weights 1, 2 x 2 supersampling of boundary pixels, no adaptation
// (lambda 0.1 and 64 hidden units when on).
func DefaultSyntheticConfig() SyntheticConfig {
	return SyntheticConfig{Width: 32, DepthWeight: 1, NormalWeight: 1, ContourWeight: 1, Supersample: 2, AdaptLambda: 0.1, AdaptHidden: 64}
}

// Resolve returns c with its zero fields set to the defaults.
func (c SyntheticConfig) Resolve() SyntheticConfig {
	d := DefaultSyntheticConfig()
	orDefault(&c.Width, d.Width)
	if c.DepthWeight == 0 && c.NormalWeight == 0 && c.ContourWeight == 0 {
		c.DepthWeight, c.NormalWeight, c.ContourWeight = d.DepthWeight, d.NormalWeight, d.ContourWeight
	}
	orDefault(&c.Supersample, d.Supersample)
	orDefault(&c.AdaptLambda, d.AdaptLambda)
	orDefault(&c.AdaptHidden, d.AdaptHidden)
	return c
}

// Validate checks the settings.
func (c SyntheticConfig) Validate() error {
	finite := func(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }
	switch {
	case c.Width < 1 || c.Width > 1024:
		return fmt.Errorf("pretext: synthetic: decoder width must be in [1, 1024], got %d", c.Width)
	case !finite(c.DepthWeight) || !finite(c.NormalWeight) || !finite(c.ContourWeight) || c.DepthWeight+c.NormalWeight+c.ContourWeight == 0:
		return fmt.Errorf("pretext: synthetic: loss weights must be finite, >= 0 and not all 0, got %v, %v, %v", c.DepthWeight, c.NormalWeight, c.ContourWeight)
	case c.Supersample < 1 || c.Supersample > 8:
		return fmt.Errorf("pretext: synthetic: supersampling must be in [1, 8], got %d", c.Supersample)
	case !finite(c.AdaptLambda):
		return fmt.Errorf("pretext: synthetic: adaptation lambda must be finite and >= 0, got %v", c.AdaptLambda)
	case c.AdaptHidden < 1:
		return fmt.Errorf("pretext: synthetic: discriminator hidden units must be >= 1, got %d", c.AdaptHidden)
	}
	return nil
}

// synConfig is the task's configuration from the pretext config (defaults
// where it has none).
func synConfig(cfg Config) SyntheticConfig {
	if cfg.Synthetic != nil {
		return cfg.Synthetic.Resolve()
	}
	return DefaultSyntheticConfig()
}

var (
	adaptMu    sync.Mutex
	adaptCache = map[string]data.Dataset{}
)

// adaptImages loads (once per process) the real images of spec, the
// "train" split or, for a folder without splits, all of it, converted to
// channels channels and decoded into memory.
func adaptImages(spec string, channels int) (data.Dataset, error) {
	key := fmt.Sprintf("%d|%s", channels, spec)
	adaptMu.Lock()
	defer adaptMu.Unlock()
	if ds, ok := adaptCache[key]; ok {
		return ds, nil
	}
	oo := data.OpenOptions{Channels: channels}
	ds, err := data.Load(spec, "train", oo)
	if errors.Is(err, data.ErrNoSplit) {
		ds, err = data.Load(spec, "", oo)
	}
	if err != nil {
		return nil, fmt.Errorf("pretext: synthetic: adaptation images: %w", err)
	}
	if ds.Len() == 0 {
		return nil, fmt.Errorf("pretext: synthetic: adaptation images: %s holds none", spec)
	}
	ds = data.Convert(ds, channels, 0)
	adaptCache[key] = ds
	return ds, nil
}

// Prepare writes the resolved synthetic config into cfg and, with
// adaptation, loads the real images once and records their number.
func (Synthetic) Prepare(cfg *Config, _ data.Dataset) error {
	sc := synConfig(*cfg)
	if err := sc.Validate(); err != nil {
		return err
	}
	if sc.Adapt != "" {
		ds, err := adaptImages(sc.Adapt, cfg.Channels)
		if err != nil {
			return err
		}
		sc.AdaptImages = ds.Len()
	}
	cfg.Synthetic = &sc
	return nil
}

// synPrefix starts the name of every head parameter.
const synPrefix = "head.synthetic."

// synModel is Synthetic built on a backbone for a fixed batch.
type synModel struct {
	cfg    Config
	sc     SyntheticConfig
	batch  int
	rows   int // batch, or 2*batch with adaptation
	grid   int // G: the prediction grid
	input  *G.Node
	pred   *G.Node // [rows, 5, G, G]
	loss   *G.Node
	target *synTarget
	params []*G.Node
	// Adaptation: the real images, the discriminator and its loss.
	real      data.Dataset
	domain    *ops.Labels
	discLoss  *G.Node
	disc      []*models.Linear
	stageName []string
}

// stageOutputs lists the backbone's stage outputs ("stage1", ...) in order.
func stageOutputs(s *models.Spec) []string {
	var out []string
	for name := range s.Outputs {
		if strings.HasPrefix(name, "stage") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func (Synthetic) Build(bb *models.Backbone, batch int, cfg Config, heads models.Weights, rng *rand.Rand) (Model, error) {
	sc := synConfig(cfg)
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	c, s := cfg.InputChannels(), cfg.InputSize
	switch {
	case cfg.Input != "":
		return nil, fmt.Errorf("pretext: synthetic: input space %q, expected the images' own channels", cfg.Input)
	case c != 1 && c != 3:
		return nil, fmt.Errorf("pretext: synthetic: %d channels, expected 1 or 3", c)
	case bb.Spec.InC != c:
		return nil, fmt.Errorf("pretext: synthetic: backbone %s takes %d channels, the config has %d", bb.Spec.Arch, bb.Spec.InC, c)
	case batch < 1:
		return nil, fmt.Errorf("pretext: synthetic: batch must be >= 1, got %d", batch)
	case (len(cfg.Mean) != c && len(cfg.Mean) != 1) || len(cfg.Std) != len(cfg.Mean):
		return nil, fmt.Errorf("pretext: synthetic: %d means and %d stds for %d channels", len(cfg.Mean), len(cfg.Std), c)
	case s < 4:
		return nil, fmt.Errorf("pretext: synthetic: input size %d, expected >= 4", s)
	}
	m := &synModel{cfg: cfg, sc: sc, batch: batch, rows: batch}
	if sc.Adapt != "" {
		ds, err := adaptImages(sc.Adapt, c)
		if err != nil {
			return nil, err
		}
		if sc.AdaptImages != 0 && ds.Len() != sc.AdaptImages {
			return nil, fmt.Errorf("pretext: synthetic: the run adapted to %d images of %s, it now holds %d", sc.AdaptImages, sc.Adapt, ds.Len())
		}
		m.real, m.rows = ds, 2*batch
	}
	m.input = G.NewTensor(bb.Graph, tensor.Float32, 4, G.WithShape(m.rows, c, s, s), G.WithName("synthetic.views"),
		G.WithValue(tensor.New(tensor.WithShape(m.rows, c, s, s), tensor.Of(tensor.Float32))))
	m.stageName = stageOutputs(bb.Spec)
	if len(m.stageName) == 0 {
		return nil, fmt.Errorf("pretext: synthetic: backbone %s exposes no stage outputs", bb.Spec.Arch)
	}
	names := append([]string(nil), m.stageName...)
	if m.real != nil {
		names = append(names, "features")
	}
	outs, err := bb.Forward(m.input, names...)
	if err != nil {
		return nil, fmt.Errorf("pretext: synthetic: %w", err)
	}
	for _, st := range m.stageName {
		if sh := outs[st].Shape(); sh[2] != sh[3] {
			return nil, fmt.Errorf("pretext: synthetic: %s map %v, expected square", st, sh)
		}
		m.grid = max(m.grid, outs[st].Shape()[2])
	}
	if s%m.grid != 0 {
		return nil, fmt.Errorf("pretext: synthetic: a %d px input does not tile the %d x %d prediction grid", s, m.grid, m.grid)
	}
	if m.pred, err = m.decoder(bb.Graph, outs, heads, rng); err != nil {
		return nil, err
	}
	p := batch * m.grid * m.grid
	m.target = &synTarget{N: batch, Depth: make([]float32, p), Normal: make([]float32, 3*p), Contour: make([]float32, p), ContourW: make([]float32, p),
		WDepth: sc.DepthWeight, WNormal: sc.NormalWeight, WContour: sc.ContourWeight}
	if m.loss, err = syntheticLoss(m.pred, m.target); err != nil {
		return nil, err
	}
	if m.real != nil {
		if err := m.discriminator(bb.Graph, outs["features"], heads, rng); err != nil {
			return nil, err
		}
		if m.loss, err = G.Add(m.loss, m.discLoss); err != nil {
			return nil, fmt.Errorf("pretext: synthetic: %w", err)
		}
	}
	return m, nil
}

// param makes a learnable float32 node: the tensor heads holds under name
// (its shape must match), else a fresh one, normal with standard deviation
// std (0: zeros).
func (m *synModel) param(g *G.ExprGraph, name string, heads models.Weights, shape []int, std float64, rng *rand.Rand) (*G.Node, error) {
	t, ok := heads[name]
	if ok {
		if !sameInts(t.Shape, shape) {
			return nil, fmt.Errorf("pretext: synthetic: head weight %s has shape %v, expected %v", name, t.Shape, shape)
		}
	} else {
		t = models.Tensor{Shape: shape, Data: make([]float32, prod(shape))}
		if std > 0 {
			for i := range t.Data {
				t.Data[i] = float32(rng.NormFloat64() * std)
			}
		}
	}
	n := models.ParamNode(g, name, t, tensor.Float32)
	m.params = append(m.params, n)
	return n, nil
}

// decoder builds the hypercolumn decoder on the stage maps and returns
// the prediction [rows, 5, G, G].
func (m *synModel) decoder(g *G.ExprGraph, outs map[string]*G.Node, heads models.Weights, rng *rand.Rand) (*G.Node, error) {
	w := m.sc.Width
	var sum *G.Node
	for k, st := range m.stageName {
		x := outs[st]
		ch, side := x.Shape()[1], x.Shape()[2]
		if m.grid%side != 0 {
			return nil, fmt.Errorf("pretext: synthetic: %s map of side %d does not divide the %d x %d grid", st, side, m.grid, m.grid)
		}
		wt, err := m.param(g, synPrefix+st+".weight", heads, []int{w, ch, 1, 1}, math.Sqrt(2/float64(ch)), rng)
		if err != nil {
			return nil, err
		}
		var y *G.Node
		if k == 0 {
			b, err := m.param(g, synPrefix+"bias", heads, []int{w}, 0, rng)
			if err != nil {
				return nil, err
			}
			y, err = ops.Conv2DBias(x, wt, b, 1, 0)
		} else {
			y, err = ops.Conv2D(x, wt, 1, 0)
		}
		if err == nil && side != m.grid {
			y, err = ops.Upsample2D(y, m.grid/side, ops.UpsampleBilinear)
		}
		if err == nil && sum != nil {
			y, err = G.Add(sum, y)
		}
		if err != nil {
			return nil, fmt.Errorf("pretext: synthetic: decoder %s: %w", st, err)
		}
		sum = y
	}
	h, err := ops.ReLU(sum)
	if err != nil {
		return nil, fmt.Errorf("pretext: synthetic: decoder: %w", err)
	}
	wo, err := m.param(g, synPrefix+"out.weight", heads, []int{synOut, w, 3, 3}, math.Sqrt(1/float64(9*w)), rng)
	if err != nil {
		return nil, err
	}
	bo, err := m.param(g, synPrefix+"out.bias", heads, []int{synOut}, 0, rng)
	if err != nil {
		return nil, err
	}
	out, err := ops.Conv2DBias(h, wo, bo, 1, 1)
	if err != nil {
		return nil, fmt.Errorf("pretext: synthetic: decoder output: %w", err)
	}
	return out, nil
}

// discriminator builds the domain discriminator on the pooled features
// behind the gradient reversal, and its loss: the first batch rows are
// synthetic (class 0), the rest real (class 1).
func (m *synModel) discriminator(g *G.ExprGraph, feats *G.Node, heads models.Weights, rng *rand.Rand) error {
	d := feats.Shape()[1]
	fc1, err := models.NewLinear(g, synPrefix+"disc1", d, m.sc.AdaptHidden, heads, rng)
	if err != nil {
		return err
	}
	fc2, err := models.NewLinear(g, synPrefix+"disc2", m.sc.AdaptHidden, 2, heads, rng)
	if err != nil {
		return err
	}
	m.disc = []*models.Linear{fc1, fc2}
	x, err := ops.GradReverse(feats, m.sc.AdaptLambda)
	if err == nil {
		x, err = fc1.Apply(x)
	}
	if err == nil {
		x, err = ops.ReLU(x)
	}
	if err == nil {
		x, err = fc2.Apply(x)
	}
	if err != nil {
		return fmt.Errorf("pretext: synthetic: discriminator: %w", err)
	}
	m.domain = &ops.Labels{Y: make([]int, m.rows)}
	for i := m.batch; i < m.rows; i++ {
		m.domain.Y[i] = 1
	}
	if m.discLoss, err = ops.SoftmaxCrossEntropy(x, m.domain); err != nil {
		return fmt.Errorf("pretext: synthetic: discriminator: %w", err)
	}
	return nil
}

func (m *synModel) Loss() *G.Node { return m.loss }

func (m *synModel) Learnables() G.Nodes {
	out := append(G.Nodes(nil), m.params...)
	return append(out, linearParams(m.disc)...)
}

func (m *synModel) HeadWeights() models.Weights {
	w := linearWeights(m.disc)
	for _, p := range m.params {
		w[p.Name()] = models.NodeTensor(p)
	}
	return w
}

// options is how the task renders its scenes.
func (m *synModel) options() scene.Options {
	o := scene.DefaultOptions()
	o.Supersample = m.sc.Supersample
	return o
}

// MakeBatch renders one scene per source image (scene.Random(rng); the
// images themselves are not used) and, with adaptation, draws as many real
// images of the adaptation set (uniformly, with the recipe's augmentation)
// from rng. Inputs[0] holds the normalised views [rows, C, S, S], scenes
// first; Inputs[1] the depth targets [B, G, G], Inputs[2] the normals
// [B, 3, G, G], Inputs[3] the contours [B, G, G] and Inputs[4] their
// weights [B, G, G].
func (m *synModel) MakeBatch(imgs []data.Image, labels []int, index []int, rng *rand.Rand) (*Batch, error) {
	scenes := make([]*scene.Scene, len(imgs))
	for i := range scenes {
		scenes[i] = scene.Random(rng)
	}
	b, err := m.sceneBatch(scenes, index)
	if err != nil {
		return nil, err
	}
	if m.real != nil {
		for range imgs {
			k := rng.Intn(m.real.Len())
			img, err := m.real.Image(k)
			if err != nil {
				return nil, fmt.Errorf("pretext: synthetic: adaptation image %d: %w", k, err)
			}
			v, err := data.Normalize(augment(img, m.cfg, rng), m.cfg.Mean, m.cfg.Std)
			if err != nil {
				return nil, fmt.Errorf("pretext: synthetic: adaptation image %d (%s): %w", k, m.real.Source(k), err)
			}
			if v.C != m.cfg.InputChannels() || v.H != m.cfg.InputSize || v.W != m.cfg.InputSize {
				return nil, fmt.Errorf("pretext: synthetic: adaptation image %d (%s) augments to %dx%dx%d, expected %dx%dx%d",
					k, m.real.Source(k), v.C, v.H, v.W, m.cfg.InputChannels(), m.cfg.InputSize, m.cfg.InputSize)
			}
			b.Inputs[0] = append(b.Inputs[0], v.Data...)
		}
	}
	return b, nil
}

// sceneBatch renders scenes into a batch (see MakeBatch; no real images).
func (m *synModel) sceneBatch(scenes []*scene.Scene, index []int) (*Batch, error) {
	s, g, c := m.cfg.InputSize, m.grid, m.cfg.InputChannels()
	n := len(scenes)
	b := &Batch{Inputs: [][]float32{make([]float32, 0, m.rows*c*s*s), make([]float32, 0, n*g*g), make([]float32, 0, 3*n*g*g),
		make([]float32, 0, n*g*g), make([]float32, 0, n*g*g)}, Index: index}
	for i, sc := range scenes {
		r, err := sc.Render(s, m.options())
		if err != nil {
			return nil, fmt.Errorf("pretext: synthetic: scene %d: %w", i, err)
		}
		v, err := data.Normalize(sceneView(r, c), m.cfg.Mean, m.cfg.Std)
		if err != nil {
			return nil, fmt.Errorf("pretext: synthetic: scene %d: %w", i, err)
		}
		b.Inputs[0] = append(b.Inputs[0], v.Data...)
		depth, normal, contour, weight := sceneTargets(r, g)
		b.Inputs[1] = append(b.Inputs[1], depth...)
		b.Inputs[2] = append(b.Inputs[2], normal...)
		b.Inputs[3] = append(b.Inputs[3], contour...)
		b.Inputs[4] = append(b.Inputs[4], weight...)
	}
	return b, nil
}

// quantize rounds v in [0, 1] to the nearest of 256 levels, as an 8-bit
// photograph stores it.
func quantize(v float32) float32 { return float32(math.Round(float64(v)*255)) / 255 }

// sceneView is a render as the backbone's image, in [0, 1]: its colour
// quantised to 8 bits, or for c = 1 the BT.601 luma of that, quantised
// again.
func sceneView(r *scene.Render, c int) data.Tensor {
	t := data.Tensor{C: 3, H: r.Size, W: r.Size, Data: make([]float32, len(r.RGB))}
	for i, v := range r.RGB {
		t.Data[i] = quantize(v)
	}
	if c == 1 {
		t = data.ToGray(t)
		for i, v := range t.Data {
			t.Data[i] = quantize(v)
		}
	}
	return t
}

// sceneTargets are a render's labels on a g x g grid (g divides the
// render's size; f = size/g): depth / scene.MaxDepth clipped to 1 and
// averaged over each f x f block, the block's mean normal renormalised
// ((0, 0, -1) if it cancels out), the block's largest contour value, and
// the contour weights (class-balanced, see Synthetic).
func sceneTargets(r *scene.Render, g int) (depth, normal, contour, weight []float32) {
	s, f := r.Size, r.Size/g
	n, gg := s*s, g*g
	depth, normal, contour, weight = make([]float32, gg), make([]float32, 3*gg), make([]float32, gg), make([]float32, gg)
	pos := 0
	for y := 0; y < g; y++ {
		for x := 0; x < g; x++ {
			var d float64
			var nv [3]float64
			var e uint8
			for dy := 0; dy < f; dy++ {
				for dx := 0; dx < f; dx++ {
					p := (y*f+dy)*s + x*f + dx
					d += math.Min(1, float64(r.Depth[p])/scene.MaxDepth)
					for k := range nv {
						nv[k] += float64(r.Normal[k*n+p])
					}
					e = max(e, r.Contour[p])
				}
			}
			q := y*g + x
			depth[q] = float32(d / float64(f*f))
			l := math.Sqrt(nv[0]*nv[0] + nv[1]*nv[1] + nv[2]*nv[2])
			if l < 1e-9 {
				nv, l = [3]float64{0, 0, -1}, 1
			}
			for k := range nv {
				normal[k*gg+q] = float32(nv[k] / l)
			}
			contour[q] = float32(e)
			pos += int(e)
		}
	}
	wp, wn := float32(1), float32(1)
	if pos > 0 && pos < gg {
		pi := float64(pos) / float64(gg)
		wp, wn = float32(1/(2*pi)), float32(1/(2*(1-pi)))
	}
	for q := range weight {
		if contour[q] != 0 {
			weight[q] = wp
		} else {
			weight[q] = wn
		}
	}
	return depth, normal, contour, weight
}

// Load copies the views into the graph and the targets into the loss.
func (m *synModel) Load(b *Batch) error {
	if len(b.Inputs) != 5 {
		return fmt.Errorf("pretext: synthetic: batch has %d inputs, expected 5 (views, depth, normals, contours, contour weights)", len(b.Inputs))
	}
	dst := m.input.Value().Data().([]float32)
	st := m.target
	for i, n := range []int{len(dst), len(st.Depth), len(st.Normal), len(st.Contour), len(st.ContourW)} {
		if len(b.Inputs[i]) != n {
			return fmt.Errorf("pretext: synthetic: batch input %d has %d values, expected %d (batch %d, %d rows, %d px, %dx%d grid)",
				i, len(b.Inputs[i]), n, m.batch, m.rows, m.cfg.InputSize, m.grid, m.grid)
		}
	}
	copy(dst, b.Inputs[0])
	copy(st.Depth, b.Inputs[1])
	copy(st.Normal, b.Inputs[2])
	copy(st.Contour, b.Inputs[3])
	copy(st.ContourW, b.Inputs[4])
	return nil
}

// Metrics reports pretext_acc (normals within 22.5°), the three loss
// terms and, with adaptation, the discriminator's accuracy and loss.
func (m *synModel) Metrics() map[string]float64 {
	st := m.target
	out := map[string]float64{"pretext_acc": 0, "depth_l1": st.DepthL1, "normal_cos": st.NormalCos, "contour_bce": st.ContourBCE}
	if st.Pixels > 0 {
		out["pretext_acc"] = float64(st.NormalHits) / float64(st.Pixels)
	}
	if m.real != nil {
		out["disc_acc"] = predAccuracy(m.domain)
		if v := m.discLoss.Value(); v != nil {
			if f, ok := v.Data().(float32); ok {
				out["disc_loss"] = float64(f)
			}
		}
	}
	return out
}
