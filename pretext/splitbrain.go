package pretext

import (
	"fmt"
	"math"
	"math/rand"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// SplitBrain is the split-brain autoencoder of Zhang, Isola & Efros,
// "Split-Brain Autoencoders: Unsupervised Learning by Cross-Channel
// Prediction" (CVPR 2017, arXiv 1611.09842) on Lab images, with the
// paper's best loss, classification over quantised targets for both
// halves (its section 3 and Table 2):
//
//	Lab image [B, 3, S, S] (data.SpaceLab, normalised with the training
//	images' statistics) -> the split backbone (models.Split: two
//	half-width copies of the architecture, one on L, one on ab)
//	  L half's last map  [B, C/2, m, m] -> 1x1 conv + bias -> ab logits [B, Qab, m, m]
//	  ab half's last map [B, C/2, m, m] -> 1x1 conv + bias -> L logits  [B, QL, m, m]
//	loss = the L -> ab loss + the ab -> L loss
//
// The L -> ab half is the colorization task's: its ab bins (ColorBins of
// AB.Grid, 261 at 10), soft-encoded targets (AB.Neighbours nearest bins,
// Gaussian AB.Sigma) and class rebalancing with the training images'
// smoothed ab prior (AB.Lambda; off with NoRebalance), through the same
// loss op. The ab -> L half classifies the lightness into LBins: the
// paper quantises L into 100 bins of 1 on ImageNet; at 32 px the
// prediction grid is 8 x 8 (64 cells an image, each the mean of a 4 x 4
// block, so neighbouring lightness values blur together), and 20 bins of
// width 5 (LGrid) keep the classes few, at the ab grid's ratio of bin to
// range (10 to about 200). Its targets are
// soft-encoded too (LNeighbours nearest bins, Gaussian LSigma, half a
// bin as AB.Sigma is half an ab bin; LNeighbours 1 is the one-hot target)
// and not rebalanced. Targets come from the augmented image's Lab planes
// resized to m x m.
//
// The architecture is always a split one: Arch turns "resnet20c" into
// "resnet20c-split" (the run records that name). The export holds the
// split backbone, one graph, with input space lab in its metadata:
// extraction converts RGB images to Lab; its features, and every stage,
// are the concatenation of the halves'. Metrics while training:
// "ab_acc" and "l_acc", the fraction of grid cells whose most probable
// bin is their nearest, and "pretext_acc", their mean. Evaluate reports
// the ab half as colorization's (raw ab accuracy, AuC, against grey) and
// the L half's bin top-1 and mean absolute L* error (against predicting
// the training images' mean lightness).
type SplitBrain struct{}

func init() { Register("splitbrain", func() Task { return SplitBrain{} }) }

func (SplitBrain) Name() string      { return "splitbrain" }
func (SplitBrain) NeedsLabels() bool { return false }

// Arch is the split form of arch (arch itself when it is one): the
// architecture split-brain training builds.
func (SplitBrain) Arch(arch string) (string, error) {
	if models.IsSplit(arch) {
		return arch, nil
	}
	return arch + models.SplitSuffix, nil
}

// SplitBrainConfig configures the splitbrain task. Zero fields take the
// defaults of DefaultSplitBrainConfig (see Resolve).
type SplitBrainConfig struct {
	// AB configures the L -> ab half as the colorization task (bins,
	// soft encoding, rebalancing, annealed mean; its Prior is set by
	// Prepare).
	AB ColorizationConfig `json:"ab"`
	// NoRebalance trains the L -> ab half without class rebalancing
	// (every weight 1).
	NoRebalance bool `json:"no_rebalance,omitempty"`
	// LGrid is the width of an L bin; 100/LGrid bins cover [0, 100]
	// (default 5: 20 bins).
	LGrid float64 `json:"l_grid"`
	// LNeighbours and LSigma soft-encode an L target over its nearest
	// bins with Gaussian weights (default 3 and 2.5).
	LNeighbours int     `json:"l_neighbours"`
	LSigma      float64 `json:"l_sigma"`
}

// DefaultSplitBrainConfig returns colorization's ab settings
// (DefaultColorizationConfig), 20 L bins of width 5, soft-encoded over 3
// bins at sigma 2.5, rebalancing on.
func DefaultSplitBrainConfig() SplitBrainConfig {
	return SplitBrainConfig{AB: DefaultColorizationConfig(), LGrid: 5, LNeighbours: 3, LSigma: 2.5}
}

// Resolve returns c with its zero fields set to the defaults.
func (c SplitBrainConfig) Resolve() SplitBrainConfig {
	d := DefaultSplitBrainConfig()
	c.AB = c.AB.Resolve()
	orDefault(&c.LGrid, d.LGrid)
	orDefault(&c.LNeighbours, d.LNeighbours)
	orDefault(&c.LSigma, d.LSigma)
	return c
}

// Validate checks the settings.
func (c SplitBrainConfig) Validate() error {
	if err := c.AB.Validate(); err != nil {
		return fmt.Errorf("pretext: splitbrain: %w", err)
	}
	lb, err := NewLBins(c.LGrid)
	if err != nil {
		return err
	}
	switch {
	case c.LNeighbours < 1 || c.LNeighbours > lb.Len():
		return fmt.Errorf("pretext: splitbrain: L neighbours must be in [1, %d], got %d", lb.Len(), c.LNeighbours)
	case !(c.LSigma > 0) || math.IsInf(c.LSigma, 0):
		return fmt.Errorf("pretext: splitbrain: L sigma must be positive and finite, got %v", c.LSigma)
	}
	return nil
}

// splitConfig is the task's configuration from the pretext config
// (defaults where it has none).
func splitConfig(cfg Config) SplitBrainConfig {
	if cfg.SplitBrain != nil {
		return cfg.SplitBrain.Resolve()
	}
	return DefaultSplitBrainConfig()
}

// LBins are the quantised lightness bins of the ab -> L half: Len() bins
// of width Grid whose edges are the multiples of Grid in [0, 100], bin k
// covering [k*Grid, (k+1)*Grid) (the last one closed), centred at
// (k+0.5)*Grid.
type LBins struct {
	Grid float64
	n    int
}

// NewLBins returns the bins of width grid; 100/grid must be an integer
// from 2 to 100.
func NewLBins(grid float64) (LBins, error) {
	n := math.Round(100 / grid)
	if !(grid > 0) || n < 2 || n > 100 || math.Abs(n*grid-100) > 1e-9 {
		return LBins{}, fmt.Errorf("pretext: splitbrain: L bin width must divide 100 into 2 to 100 bins, got %v", grid)
	}
	return LBins{Grid: grid, n: int(n)}, nil
}

// Len is the number of bins.
func (b LBins) Len() int { return b.n }

// Centre is the lightness at the middle of bin k.
func (b LBins) Centre(k int) float64 { return (float64(k) + 0.5) * b.Grid }

// Nearest is the bin holding l (clamped to [0, 100]): the bin whose
// centre is nearest.
func (b LBins) Nearest(l float64) int {
	return min(max(int(math.Floor(l/b.Grid)), 0), b.n-1)
}

// Encode soft-encodes l over its len(idx) nearest bins, nearest first
// (ties to the lower bin): idx gets the bins, z their Gaussian weights
// exp(-d²/2σ²), normalised to sum 1.
func (b LBins) Encode(l, sigma float64, idx []int32, z []float32) {
	k := len(idx)
	lo, hi := b.Nearest(l), b.Nearest(l) // the chosen bins are [lo, hi]
	idx[0] = int32(lo)
	for j := 1; j < k; j++ {
		left, right := lo-1, hi+1
		switch {
		case left < 0:
			hi = right
			idx[j] = int32(hi)
		case right >= b.n || math.Abs(b.Centre(left)-l) <= math.Abs(b.Centre(right)-l):
			lo = left
			idx[j] = int32(lo)
		default:
			hi = right
			idx[j] = int32(hi)
		}
	}
	d0 := math.Abs(b.Centre(int(idx[0])) - l)
	w := make([]float64, k)
	var sum float64
	for j := range w {
		d := math.Abs(b.Centre(int(idx[j])) - l)
		w[j] = math.Exp(-(d*d - d0*d0) / (2 * sigma * sigma)) // shifted: the ratio is what counts
		sum += w[j]
	}
	for j := range w {
		z[j] = float32(w[j] / sum)
	}
}

// AnnealedMean is the lightness decoded from logits [Len()] at
// temperature t: the mean of the centres under softmax(logits/t), as
// ABBins.AnnealedMean.
func (b LBins) AnnealedMean(logits []float64, t float64) float64 {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, v)
	}
	var sum, l float64
	for k, v := range logits {
		e := math.Exp((v - mx) / t)
		sum += e
		l += e * b.Centre(k)
	}
	return l / sum
}

// Prepare sets the config splitbrain trains with: the Lab input space
// (3-channel images required) with its per-channel mean and standard
// deviation (data.LabStats), and the ab prior of the L -> ab half (as
// Colorization.Prepare).
func (SplitBrain) Prepare(cfg *Config, ds data.Dataset) error {
	if cfg.Channels != 3 {
		return fmt.Errorf("pretext: splitbrain: needs colour images (3 channels), got %d", cfg.Channels)
	}
	sc := splitConfig(*cfg)
	if err := sc.Validate(); err != nil {
		return err
	}
	bins, err := ColorBins(sc.AB.Grid)
	if err != nil {
		return err
	}
	if ds == nil || ds.Len() == 0 {
		return fmt.Errorf("pretext: splitbrain: no training images for the ab prior")
	}
	mean, std, err := data.LabStats(ds, data.StatsImages)
	if err != nil {
		return fmt.Errorf("pretext: splitbrain: %w", err)
	}
	if sc.AB.Prior, err = abPrior(ds, bins, sc.AB, cfg.InputSize); err != nil {
		return fmt.Errorf("pretext: splitbrain: %w", err)
	}
	cfg.Input, cfg.Mean, cfg.Std, cfg.SplitBrain = data.SpaceLab, mean, std, &sc
	return nil
}

// splitPrefix starts the name of every decoder parameter: head.split.ab.*
// predicts ab from the L half, head.split.l.* L from the ab half.
const splitPrefix = "head.split."

// splitHead is one half's decoder and loss.
type splitHead struct {
	tap    string  // the backbone tap it reads
	q      int     // bins
	logits *G.Node // [B, q, m, m]
	loss   *G.Node // scalar
	target *colorTarget
	w, b   *G.Node
}

// splitModel is SplitBrain built on a split backbone for a fixed batch.
type splitModel struct {
	cfg     Config
	sc      SplitBrainConfig
	bins    *ABBins
	lbins   LBins
	weights []float64 // rebalancing weight per ab bin
	batch   int
	side    int // m: the prediction grid
	input   *G.Node
	ab, l   *splitHead
	loss    *G.Node
}

// splitMap is the tap of a split spec holding half's last spatial map:
// the map its pooled features average.
func splitMap(s *models.Spec, half string) (string, error) {
	pool, ok := s.Taps[half+".features"]
	if ok {
		for _, l := range s.Layers {
			if l.Name != pool || l.Op != models.OpGlobalAvgPool {
				continue
			}
			for name, layer := range s.Taps {
				if layer == l.Inputs[0] && strings.HasPrefix(name, half+".") {
					return name, nil
				}
			}
		}
	}
	return "", fmt.Errorf("pretext: splitbrain: backbone %s is not a split backbone with a %q half feeding a global pool (use %s%s)",
		s.Arch, half, strings.TrimSuffix(s.Arch, models.SplitSuffix), models.SplitSuffix)
}

func (SplitBrain) Build(bb *models.Backbone, batch int, cfg Config, heads models.Weights, rng *rand.Rand) (Model, error) {
	sc := splitConfig(cfg)
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	switch {
	case cfg.Input != data.SpaceLab || cfg.Channels != 3:
		return nil, fmt.Errorf("pretext: splitbrain: the config has input space %q for %d-channel images, expected %q for 3 (prepare it with SplitBrain.Prepare)", cfg.Input, cfg.Channels, data.SpaceLab)
	case bb.Spec.InC != 3:
		return nil, fmt.Errorf("pretext: splitbrain: backbone %s takes %d channels, expected 3 (L, a, b)", bb.Spec.Arch, bb.Spec.InC)
	case batch < 1:
		return nil, fmt.Errorf("pretext: splitbrain: batch must be >= 1, got %d", batch)
	case len(cfg.Mean) != 3 || len(cfg.Std) != 3:
		return nil, fmt.Errorf("pretext: splitbrain: %d means and %d stds, expected 3 of each (L, a, b)", len(cfg.Mean), len(cfg.Std))
	}
	bins, err := ColorBins(sc.AB.Grid)
	if err != nil {
		return nil, err
	}
	if len(sc.AB.Prior) != bins.Len() {
		return nil, fmt.Errorf("pretext: splitbrain: ab prior over %d bins, expected %d (grid %v; prepare the config with SplitBrain.Prepare)", len(sc.AB.Prior), bins.Len(), sc.AB.Grid)
	}
	lbins, _ := NewLBins(sc.LGrid)
	m := &splitModel{cfg: cfg, sc: sc, bins: bins, lbins: lbins, weights: RebalanceWeights(sc.AB.Prior, sc.AB.Lambda), batch: batch}
	if sc.NoRebalance {
		for q := range m.weights {
			m.weights[q] = 1
		}
	}
	s := cfg.InputSize
	m.input = G.NewTensor(bb.Graph, tensor.Float32, 4, G.WithShape(batch, 3, s, s), G.WithName("split.views"),
		G.WithValue(tensor.New(tensor.WithShape(batch, 3, s, s), tensor.Of(tensor.Float32))))
	// The ab decoder reads the L half, the L decoder the ab half.
	m.ab, m.l = &splitHead{q: bins.Len()}, &splitHead{q: lbins.Len()}
	for i, h := range []*splitHead{m.ab, m.l} {
		if h.tap, err = splitMap(bb.Spec, models.SplitHalves[i]); err != nil {
			return nil, err
		}
	}
	outs, err := bb.Forward(m.input, m.ab.tap, m.l.tap)
	if err != nil {
		return nil, fmt.Errorf("pretext: splitbrain: %w", err)
	}
	for i, h := range []*splitHead{m.ab, m.l} {
		x := outs[h.tap]
		xs := x.Shape()
		if x.Dims() != 4 || xs[2] != xs[3] || i == 1 && xs[2] != m.side {
			return nil, fmt.Errorf("pretext: splitbrain: backbone map %s %v, expected square [B, C, m, m] (and the halves' alike)", h.tap, xs)
		}
		m.side = xs[2]
		name := splitPrefix + []string{"ab", "l"}[i] + ".out."
		wt, err := colorParam(heads, name+"weight", []int{h.q, xs[1], 1, 1}, math.Sqrt(1/float64(xs[1])), rng)
		if err != nil {
			return nil, err
		}
		bt, err := colorParam(heads, name+"bias", []int{h.q}, 0, rng)
		if err != nil {
			return nil, err
		}
		h.w, h.b = models.ParamNode(bb.Graph, name+"weight", wt, tensor.Float32), models.ParamNode(bb.Graph, name+"bias", bt, tensor.Float32)
		if h.logits, err = ops.Conv2DBias(x, h.w, h.b, 1, 0); err != nil {
			return nil, fmt.Errorf("pretext: splitbrain: decoder: %w", err)
		}
	}
	p := batch * m.side * m.side
	m.ab.target = &colorTarget{K: sc.AB.Neighbours, Idx: make([]int32, p*sc.AB.Neighbours), Z: make([]float32, p*sc.AB.Neighbours), W: make([]float32, p)}
	m.l.target = &colorTarget{K: sc.LNeighbours, Idx: make([]int32, p*sc.LNeighbours), Z: make([]float32, p*sc.LNeighbours), W: make([]float32, p)}
	for i := range m.l.target.W {
		m.l.target.W[i] = 1
	}
	for _, h := range []*splitHead{m.ab, m.l} {
		if h.loss, err = colorLoss(h.logits, h.target); err != nil {
			return nil, err
		}
	}
	if m.loss, err = G.Add(m.ab.loss, m.l.loss); err != nil {
		return nil, fmt.Errorf("pretext: splitbrain: loss: %w", err)
	}
	return m, nil
}

func (m *splitModel) Loss() *G.Node       { return m.loss }
func (m *splitModel) Learnables() G.Nodes { return G.Nodes{m.ab.w, m.ab.b, m.l.w, m.l.b} }
func (m *splitModel) HeadWeights() models.Weights {
	w := models.Weights{}
	for _, n := range m.Learnables() {
		w[n.Name()] = models.NodeTensor(n)
	}
	return w
}

// MakeBatch augments every image (as the other tasks: random resized crop
// or pad-crop, flip) and converts it to Lab: Inputs[0] holds the
// normalised Lab image [B, 3, S, S]; the targets of the m x m grid (the
// Lab planes resized): Inputs[1] and Inputs[2] the ab bins (as float32)
// and soft weights [B, m, m, AB.Neighbours], Inputs[3] the rebalancing
// weights [B, m, m], Inputs[4] and Inputs[5] the L bins and soft weights
// [B, m, m, LNeighbours].
func (m *splitModel) MakeBatch(imgs []data.Image, labels []int, index []int, rng *rand.Rand) (*Batch, error) {
	s, g, ka, kl := m.cfg.InputSize, m.side, m.sc.AB.Neighbours, m.sc.LNeighbours
	n := len(imgs)
	b := &Batch{Inputs: [][]float32{make([]float32, 0, n*3*s*s), make([]float32, 0, n*g*g*ka), make([]float32, 0, n*g*g*ka),
		make([]float32, 0, n*g*g), make([]float32, 0, n*g*g*kl), make([]float32, 0, n*g*g*kl)}, Index: index}
	ia, za := make([]int32, ka), make([]float32, ka)
	il, zl := make([]int32, kl), make([]float32, kl)
	for i, img := range imgs {
		if img.C != 3 {
			return nil, fmt.Errorf("pretext: splitbrain: image %d has %d channels, expected 3 (RGB)", i, img.C)
		}
		t := augment(img, m.cfg, rng)
		if t.H != s || t.W != s {
			return nil, fmt.Errorf("pretext: splitbrain: image %d augments to %dx%d, expected %dx%d", i, t.H, t.W, s, s)
		}
		in, err := data.Normalize(data.ToLabSpace(t), m.cfg.Mean, m.cfg.Std)
		if err != nil {
			return nil, fmt.Errorf("pretext: splitbrain: image %d: %w", i, err)
		}
		b.Inputs[0] = append(b.Inputs[0], in.Data...)
		small := data.Resize(data.ToLab(t), g, g)
		for p := 0; p < g*g; p++ {
			m.bins.Encode(float64(small.Data[g*g+p]), float64(small.Data[2*g*g+p]), m.sc.AB.Sigma, ia, za)
			for _, q := range ia {
				b.Inputs[1] = append(b.Inputs[1], float32(q))
			}
			b.Inputs[2] = append(b.Inputs[2], za...)
			b.Inputs[3] = append(b.Inputs[3], float32(m.weights[ia[0]]))
			m.lbins.Encode(float64(small.Data[p]), m.sc.LSigma, il, zl)
			for _, q := range il {
				b.Inputs[4] = append(b.Inputs[4], float32(q))
			}
			b.Inputs[5] = append(b.Inputs[5], zl...)
		}
	}
	return b, nil
}

// Load copies the Lab image into the graph and the targets into the
// losses.
func (m *splitModel) Load(b *Batch) error {
	if len(b.Inputs) != 6 {
		return fmt.Errorf("pretext: splitbrain: batch has %d inputs, expected 6 (Lab image; ab bins, soft and rebalancing weights; L bins, soft weights)", len(b.Inputs))
	}
	dst := m.input.Value().Data().([]float32)
	ta, tl := m.ab.target, m.l.target
	for i, n := range []int{len(dst), len(ta.Idx), len(ta.Z), len(ta.W), len(tl.Idx), len(tl.Z)} {
		if len(b.Inputs[i]) != n {
			return fmt.Errorf("pretext: splitbrain: batch input %d has %d values, expected %d (batch %d, %d px, %dx%d grid, %d ab and %d L bins per target)",
				i, len(b.Inputs[i]), n, m.batch, m.cfg.InputSize, m.side, m.side, ta.K, tl.K)
		}
	}
	for i, h := range []*splitHead{m.ab, m.l} {
		for j, v := range b.Inputs[1+3*i] {
			if v < 0 || int(v) >= h.q || v != float32(int(v)) {
				return fmt.Errorf("pretext: splitbrain: batch %s target %d is bin %v, expected an integer in [0, %d)", []string{"ab", "L"}[i], j, v, h.q)
			}
		}
	}
	copy(dst, b.Inputs[0])
	for j, v := range b.Inputs[1] {
		ta.Idx[j] = int32(v)
	}
	copy(ta.Z, b.Inputs[2])
	copy(ta.W, b.Inputs[3])
	for j, v := range b.Inputs[4] {
		tl.Idx[j] = int32(v)
	}
	copy(tl.Z, b.Inputs[5])
	return nil
}

// Metrics reports, for the last batch, ab_acc and l_acc (the fraction of
// grid cells whose most probable bin is their nearest) and pretext_acc,
// their mean.
func (m *splitModel) Metrics() map[string]float64 {
	acc := func(t *colorTarget) float64 {
		if t.Count == 0 {
			return 0
		}
		return float64(t.Hits) / float64(t.Count)
	}
	a, l := acc(m.ab.target), acc(m.l.target)
	return map[string]float64{"pretext_acc": (a + l) / 2, "ab_acc": a, "l_acc": l}
}
