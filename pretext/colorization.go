package pretext

import (
	"fmt"
	"math"
	"math/rand"
	"sort"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// Colorization is the colorization pretext task of Zhang, Isola & Efros,
// "Colorful Image Colorization" (ECCV 2016, arXiv 1603.06668): the
// backbone sees the CIE lightness of an RGB image only (data.SpaceLabL:
// one channel, L*/100, normalised with the training images' statistics),
// and a decoder predicts its colour, the a*b* planes, as a distribution
// over quantised ab bins at every cell of the backbone's last spatial map:
//
//	lightness [B, 1, S, S] -> backbone up to its last spatial map
//	[B, C', m, m] (8 x 8 for resnet20c at 32 px: a quarter of the side,
//	the paper's ratio) -> 1x1 convolution with bias -> logits [B, Q, m, m]
//	-> class-rebalanced soft cross-entropy (section 2.1, eq. 2 and 3)
//
// Targets: the ab planes of the augmented image, resized (bilinear,
// antialiased) to m x m, each cell soft-encoded over its Neighbours
// nearest bins with Gaussian weights (sigma Sigma; the paper: 5 and 5).
// Bins (ColorBins): the cells of side Grid (10, the paper's) centred on
// multiples of Grid that an 8-bit sRGB colour falls into, 261 of them;
// the paper's 313 in-gamut bins came from ImageNet's pixels, whose source
// gamut and JPEG decoding spread ab further than the sRGB cube reaches.
// Rebalancing (eq. 4): the empirical bin prior p of the training images
// (their pixels at the input size, Prepare), smoothed with a Gaussian of
// PriorSigma in ab, mixed with the uniform distribution (Lambda 0.5), w ∝
// 1/((1-λ) p + λ/Q), normalised so that Σ_q p_q w_q = 1.
//
// Decoding (section 2.2): the annealed mean of the distribution at
// temperature T (0.38), upsampled to the image. Evaluate reports the
// paper's raw accuracy: the area under the curve of the fraction of
// pixels whose ab error is within a threshold, thresholds 0 to 150,
// against predicting grey (a = b = 0). Metric while training:
// "pretext_acc", the fraction of grid cells whose most probable bin is
// their nearest.
//
// The export holds the backbone only, with input space lab-l in its
// metadata: extraction converts RGB images to their lightness.
type Colorization struct{}

func init() { Register("colorization", func() Task { return Colorization{} }) }

func (Colorization) Name() string      { return "colorization" }
func (Colorization) NeedsLabels() bool { return false }

// ColorizationConfig configures the colorization task. Zero fields take
// the defaults of DefaultColorizationConfig (see Resolve).
type ColorizationConfig struct {
	// Grid is the side of an ab bin (default 10, the paper's).
	Grid float64 `json:"grid"`
	// Neighbours and Sigma soft-encode a target over its nearest bins
	// with Gaussian weights (default 5 and 5).
	Neighbours int     `json:"neighbours"`
	Sigma      float64 `json:"sigma"`
	// Lambda mixes the prior with the uniform distribution for the
	// rebalancing weights (default 0.5); PriorSigma smooths the empirical
	// prior (default 5).
	Lambda     float64 `json:"lambda"`
	PriorSigma float64 `json:"prior_sigma"`
	// Temperature of the annealed mean (default 0.38).
	Temperature float64 `json:"temperature"`
	// PriorImages is the number of training images, spread evenly, the
	// prior is estimated from (default 2000).
	PriorImages int `json:"prior_images"`
	// Prior is the smoothed empirical prior over ColorBins(Grid), set by
	// Prepare.
	Prior []float64 `json:"prior,omitempty"`
}

// DefaultColorizationConfig returns the paper's settings: grid 10, 5
// neighbours at sigma 5, lambda 0.5, prior smoothed with sigma 5,
// temperature 0.38; the prior from 2000 images.
func DefaultColorizationConfig() ColorizationConfig {
	return ColorizationConfig{Grid: 10, Neighbours: 5, Sigma: 5, Lambda: 0.5, PriorSigma: 5, Temperature: 0.38, PriorImages: 2000}
}

// Resolve returns c with its zero fields set to the defaults.
func (c ColorizationConfig) Resolve() ColorizationConfig {
	d := DefaultColorizationConfig()
	orDefault(&c.Grid, d.Grid)
	orDefault(&c.Neighbours, d.Neighbours)
	orDefault(&c.Sigma, d.Sigma)
	orDefault(&c.Lambda, d.Lambda)
	orDefault(&c.PriorSigma, d.PriorSigma)
	orDefault(&c.Temperature, d.Temperature)
	orDefault(&c.PriorImages, d.PriorImages)
	return c
}

// Validate checks the settings.
func (c ColorizationConfig) Validate() error {
	switch {
	case !(c.Grid >= 2 && c.Grid <= 64):
		return fmt.Errorf("pretext: colorization: bin size must be in [2, 64], got %v", c.Grid)
	case c.Neighbours < 1 || c.Neighbours > 32:
		return fmt.Errorf("pretext: colorization: neighbours must be in [1, 32], got %d", c.Neighbours)
	case !(c.Sigma > 0) || !(c.PriorSigma > 0) || math.IsInf(c.Sigma, 0) || math.IsInf(c.PriorSigma, 0):
		return fmt.Errorf("pretext: colorization: sigmas must be positive and finite, got %v and %v", c.Sigma, c.PriorSigma)
	case !(c.Lambda > 0 && c.Lambda <= 1):
		return fmt.Errorf("pretext: colorization: lambda must be in (0, 1], got %v", c.Lambda)
	case !(c.Temperature > 0 && c.Temperature <= 1):
		return fmt.Errorf("pretext: colorization: temperature must be in (0, 1], got %v", c.Temperature)
	case c.PriorImages < 1:
		return fmt.Errorf("pretext: colorization: prior images must be >= 1, got %d", c.PriorImages)
	}
	return nil
}

// colorConfig is the task's configuration from the pretext config (defaults
// where it has none).
func colorConfig(cfg Config) ColorizationConfig {
	if cfg.Colorization != nil {
		return cfg.Colorization.Resolve()
	}
	return DefaultColorizationConfig()
}

// ABBins are the quantised ab bins of a grid: Centres[q] = (a, b) of bin
// q (multiples of Grid), sorted by a then b.
type ABBins struct {
	Grid    float64
	Centres [][2]float64
	lo      [2]int // cell coordinates of cell[0]
	side    [2]int
	cell    []int32 // bin of every cell in the bounding box, -1 none
}

var (
	binsMu    sync.Mutex
	binsCache = map[float64]*ABBins{}
)

// ColorBins returns the bins of side grid that 8-bit sRGB colours fall
// into (a colour falls into the bin whose centre is nearest to its ab in
// each coordinate): every colour of the RGB cube's faces (a channel at 0
// or 255) and of a lattice of step 3 inside it, which reach the same 261
// bins at grid 10 as all 2^24 colours (TestColorBinsGamut checks it). The
// result is cached and shared: do not modify it.
func ColorBins(grid float64) (*ABBins, error) {
	if !(grid >= 2 && grid <= 64) {
		return nil, fmt.Errorf("pretext: colorization: bin size must be in [2, 64], got %v", grid)
	}
	binsMu.Lock()
	defer binsMu.Unlock()
	if b, ok := binsCache[grid]; ok {
		return b, nil
	}
	lut := data.LinearLUT()
	seen := map[[2]int]bool{}
	visit := func(r, g, b int) {
		_, a, bb := data.LinearRGBToLab(lut[r], lut[g], lut[b])
		seen[[2]int{int(math.Round(a / grid)), int(math.Round(bb / grid))}] = true
	}
	for i := 0; i < 256; i++ {
		for j := 0; j < 256; j++ {
			for _, e := range []int{0, 255} {
				visit(e, i, j)
				visit(i, e, j)
				visit(i, j, e)
			}
		}
	}
	for r := 0; r < 256; r += 3 {
		for g := 0; g < 256; g += 3 {
			for b := 0; b < 256; b += 3 {
				visit(r, g, b)
			}
		}
	}
	keys := make([][2]int, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	bins := &ABBins{Grid: grid, lo: keys[0], side: [2]int{1, 1}}
	for _, k := range keys {
		bins.lo[1] = min(bins.lo[1], k[1])
	}
	for _, k := range keys {
		bins.side[0] = max(bins.side[0], k[0]-bins.lo[0]+1)
		bins.side[1] = max(bins.side[1], k[1]-bins.lo[1]+1)
	}
	bins.cell = make([]int32, bins.side[0]*bins.side[1])
	for i := range bins.cell {
		bins.cell[i] = -1
	}
	for q, k := range keys {
		bins.Centres = append(bins.Centres, [2]float64{float64(k[0]) * grid, float64(k[1]) * grid})
		bins.cell[(k[0]-bins.lo[0])*bins.side[1]+k[1]-bins.lo[1]] = int32(q)
	}
	binsCache[grid] = bins
	return bins, nil
}

// Len is the number of bins, Q.
func (b *ABBins) Len() int { return len(b.Centres) }

// Nearest returns the bin nearest to (a, bb).
func (b *ABBins) Nearest(a, bb float64) int {
	i, j := int(math.Round(a/b.Grid))-b.lo[0], int(math.Round(bb/b.Grid))-b.lo[1]
	if i >= 0 && i < b.side[0] && j >= 0 && j < b.side[1] {
		if q := b.cell[i*b.side[1]+j]; q >= 0 {
			return int(q)
		}
	}
	best, bd := 0, math.Inf(1)
	for q, c := range b.Centres {
		if d := (c[0]-a)*(c[0]-a) + (c[1]-bb)*(c[1]-bb); d < bd {
			best, bd = q, d
		}
	}
	return best
}

// Encode soft-encodes (a, bb) over its len(idx) nearest bins, nearest
// first: idx gets the bins, z their Gaussian weights exp(-d²/2σ²),
// normalised to sum 1 (the paper's H_gt^-1, section 2.1).
func (b *ABBins) Encode(a, bb, sigma float64, idx []int32, z []float32) {
	k := len(idx)
	dist := make([]float64, k)
	n := 0
	for q, c := range b.Centres {
		d := (c[0]-a)*(c[0]-a) + (c[1]-bb)*(c[1]-bb)
		if n == k && d >= dist[k-1] {
			continue
		}
		j := min(n, k-1)
		for j > 0 && dist[j-1] > d {
			dist[j], idx[j] = dist[j-1], idx[j-1]
			j--
		}
		dist[j], idx[j] = d, int32(q)
		n = min(n+1, k)
	}
	var sum float64
	w := make([]float64, k)
	for j := range w {
		w[j] = math.Exp(-(dist[j] - dist[0]) / (2 * sigma * sigma)) // shifted: the ratio is what counts
		sum += w[j]
	}
	for j := range w {
		z[j] = float32(w[j] / sum)
	}
}

// AnnealedMean is the ab the paper decodes from a distribution over the
// bins (section 2.2, eq. 5): the mean of the centres under
// softmax(logits/T), where logits [Q] are the decoder's outputs at one
// cell.
func (b *ABBins) AnnealedMean(logits []float64, t float64) (a, bb float64) {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, v)
	}
	var sum float64
	for q, v := range logits {
		e := math.Exp((v - mx) / t)
		sum += e
		a += e * b.Centres[q][0]
		bb += e * b.Centres[q][1]
	}
	return a / sum, bb / sum
}

// SmoothPrior smooths a histogram over the bins with a Gaussian of sigma
// in ab (p̃_q ∝ Σ_r h_r exp(-|c_q - c_r|²/2σ²)) and normalises it to sum 1.
func (b *ABBins) SmoothPrior(hist []float64, sigma float64) []float64 {
	out := make([]float64, len(b.Centres))
	var sum float64
	for q, c := range b.Centres {
		for r, h := range hist {
			if h == 0 {
				continue
			}
			d := (c[0]-b.Centres[r][0])*(c[0]-b.Centres[r][0]) + (c[1]-b.Centres[r][1])*(c[1]-b.Centres[r][1])
			out[q] += h * math.Exp(-d/(2*sigma*sigma))
		}
		sum += out[q]
	}
	for q := range out {
		out[q] /= sum
	}
	return out
}

// RebalanceWeights returns the class-rebalancing weights of the paper's
// eq. 4 for a prior p over Q bins: w_q ∝ 1/((1-λ) p_q + λ/Q), scaled so
// that their expectation under the prior, Σ_q p_q w_q, is 1.
func RebalanceWeights(prior []float64, lambda float64) []float64 {
	q := float64(len(prior))
	w := make([]float64, len(prior))
	var e float64
	for i, p := range prior {
		w[i] = 1 / ((1-lambda)*p + lambda/q)
		e += p * w[i]
	}
	for i := range w {
		w[i] /= e
	}
	return w
}

// Prepare sets the config colorization trains with: the lightness input
// space (3-channel images required) with its mean and standard deviation
// (data.LabLStats), and the ab prior: the nearest-bin histogram of every
// pixel of PriorImages training images spread evenly over ds, resized to
// the input size, smoothed (SmoothPrior).
func (Colorization) Prepare(cfg *Config, ds data.Dataset) error {
	if cfg.Channels != 3 {
		return fmt.Errorf("pretext: colorization: needs colour images (3 channels), got %d", cfg.Channels)
	}
	cc := colorConfig(*cfg)
	if err := cc.Validate(); err != nil {
		return err
	}
	bins, err := ColorBins(cc.Grid)
	if err != nil {
		return err
	}
	if ds == nil || ds.Len() == 0 {
		return fmt.Errorf("pretext: colorization: no training images for the ab prior")
	}
	mean, std, err := data.LabLStats(ds, data.StatsImages)
	if err != nil {
		return fmt.Errorf("pretext: colorization: %w", err)
	}
	if cc.Prior, err = abPrior(ds, bins, cc, cfg.InputSize); err != nil {
		return fmt.Errorf("pretext: colorization: %w", err)
	}
	cfg.Input, cfg.Mean, cfg.Std, cfg.Colorization = data.SpaceLabL, mean, std, &cc
	return nil
}

// abPrior is the smoothed empirical ab prior of cc (SmoothPrior with
// PriorSigma): the nearest-bin histogram of every pixel of PriorImages
// images spread evenly over ds, resized to s x s.
func abPrior(ds data.Dataset, bins *ABBins, cc ColorizationConfig, s int) ([]float64, error) {
	hist := make([]float64, bins.Len())
	step := max(1, ds.Len()/cc.PriorImages)
	for i := 0; i < ds.Len(); i += step {
		img, err := ds.Image(i)
		if err != nil {
			return nil, fmt.Errorf("prior: %w", err)
		}
		if img.C != 3 {
			return nil, fmt.Errorf("prior: %s has %d channels, expected 3", ds.Source(i), img.C)
		}
		lab := data.ToLab(data.Resize(data.ToTensor(img), s, s))
		n := s * s
		for p := 0; p < n; p++ {
			hist[bins.Nearest(float64(lab.Data[n+p]), float64(lab.Data[2*n+p]))]++
		}
	}
	return bins.SmoothPrior(hist, cc.PriorSigma), nil
}

// colorPrefix starts the name of every decoder parameter.
const colorPrefix = "head.color."

// colorModel is Colorization built on a backbone for a fixed batch.
type colorModel struct {
	cfg     Config
	cc      ColorizationConfig
	bins    *ABBins
	weights []float64 // rebalancing weight per bin
	batch   int
	side    int // m: the prediction grid
	input   *G.Node
	logits  *G.Node // [B, Q, m, m]
	loss    *G.Node
	target  *colorTarget
	w, b    *G.Node
}

func (Colorization) Build(bb *models.Backbone, batch int, cfg Config, heads models.Weights, rng *rand.Rand) (Model, error) {
	cc := colorConfig(cfg)
	if err := cc.Validate(); err != nil {
		return nil, err
	}
	switch {
	case cfg.Input != data.SpaceLabL || cfg.Channels != 3:
		return nil, fmt.Errorf("pretext: colorization: the config has input space %q for %d-channel images, expected %q for 3 (prepare it with Colorization.Prepare)", cfg.Input, cfg.Channels, data.SpaceLabL)
	case bb.Spec.InC != 1:
		return nil, fmt.Errorf("pretext: colorization: backbone %s takes %d channels, expected 1 (lightness)", bb.Spec.Arch, bb.Spec.InC)
	case batch < 1:
		return nil, fmt.Errorf("pretext: colorization: batch must be >= 1, got %d", batch)
	case len(cfg.Mean) != 1 || len(cfg.Std) != 1:
		return nil, fmt.Errorf("pretext: colorization: %d means and %d stds, expected 1 of each (lightness)", len(cfg.Mean), len(cfg.Std))
	}
	bins, err := ColorBins(cc.Grid)
	if err != nil {
		return nil, err
	}
	if len(cc.Prior) != bins.Len() {
		return nil, fmt.Errorf("pretext: colorization: prior over %d bins, expected %d (grid %v; prepare the config with Colorization.Prepare)", len(cc.Prior), bins.Len(), cc.Grid)
	}
	s := cfg.InputSize
	m := &colorModel{cfg: cfg, cc: cc, bins: bins, weights: RebalanceWeights(cc.Prior, cc.Lambda), batch: batch}
	m.input = G.NewTensor(bb.Graph, tensor.Float32, 4, G.WithShape(batch, 1, s, s), G.WithName("color.views"),
		G.WithValue(tensor.New(tensor.WithShape(batch, 1, s, s), tensor.Of(tensor.Float32))))
	last, err := lastSpatialOutput(bb.Spec)
	if err != nil {
		return nil, fmt.Errorf("pretext: colorization: %w", err)
	}
	outs, err := bb.Forward(m.input, last)
	if err != nil {
		return nil, fmt.Errorf("pretext: colorization: %w", err)
	}
	x := outs[last]
	xs := x.Shape()
	if x.Dims() != 4 || xs[2] != xs[3] {
		return nil, fmt.Errorf("pretext: colorization: backbone map %v, expected square [B, C, m, m]", xs)
	}
	m.side = xs[2]
	q, in := bins.Len(), xs[1]
	wt, err := colorParam(heads, colorPrefix+"out.weight", []int{q, in, 1, 1}, math.Sqrt(1/float64(in)), rng)
	if err != nil {
		return nil, err
	}
	bt, err := colorParam(heads, colorPrefix+"out.bias", []int{q}, 0, rng)
	if err != nil {
		return nil, err
	}
	m.w, m.b = models.ParamNode(bb.Graph, colorPrefix+"out.weight", wt, tensor.Float32), models.ParamNode(bb.Graph, colorPrefix+"out.bias", bt, tensor.Float32)
	if m.logits, err = ops.Conv2DBias(x, m.w, m.b, 1, 0); err != nil {
		return nil, fmt.Errorf("pretext: colorization: decoder: %w", err)
	}
	p, k := batch*m.side*m.side, cc.Neighbours
	m.target = &colorTarget{K: k, Idx: make([]int32, p*k), Z: make([]float32, p*k), W: make([]float32, p)}
	if m.loss, err = colorLoss(m.logits, m.target); err != nil {
		return nil, err
	}
	return m, nil
}

// colorParam is the head tensor name (its shape must be shape), or a fresh
// one, normal with standard deviation std (0: zeros).
func colorParam(heads models.Weights, name string, shape []int, std float64, rng *rand.Rand) (models.Tensor, error) {
	if t, ok := heads[name]; ok {
		if !sameInts(t.Shape, shape) {
			return t, fmt.Errorf("pretext: head weight %s has shape %v, expected %v", name, t.Shape, shape)
		}
		return t, nil
	}
	t := models.Tensor{Shape: shape, Data: make([]float32, prod(shape))}
	if std > 0 {
		for i := range t.Data {
			t.Data[i] = float32(rng.NormFloat64() * std)
		}
	}
	return t, nil
}

func (m *colorModel) Loss() *G.Node       { return m.loss }
func (m *colorModel) Learnables() G.Nodes { return G.Nodes{m.w, m.b} }
func (m *colorModel) HeadWeights() models.Weights {
	return models.Weights{m.w.Name(): models.NodeTensor(m.w), m.b.Name(): models.NodeTensor(m.b)}
}

// MakeBatch augments every image (as the other tasks: random resized crop
// or pad-crop, flip), converts it to Lab and splits it: Inputs[0] holds
// the normalised lightness [B, 1, S, S]; Inputs[1] and Inputs[2] the
// soft-encoded targets of the m x m grid, bins (as float32) and weights
// [B, m, m, K]; Inputs[3] the rebalancing weights [B, m, m].
func (m *colorModel) MakeBatch(imgs []data.Image, labels []int, index []int, rng *rand.Rand) (*Batch, error) {
	s, g, k := m.cfg.InputSize, m.side, m.cc.Neighbours
	b := &Batch{Inputs: [][]float32{make([]float32, 0, len(imgs)*s*s), make([]float32, 0, len(imgs)*g*g*k),
		make([]float32, 0, len(imgs)*g*g*k), make([]float32, 0, len(imgs)*g*g)}, Index: index}
	idx, z := make([]int32, k), make([]float32, k)
	for i, img := range imgs {
		if img.C != 3 {
			return nil, fmt.Errorf("pretext: colorization: image %d has %d channels, expected 3 (RGB)", i, img.C)
		}
		t := augment(img, m.cfg, rng)
		if t.H != s || t.W != s {
			return nil, fmt.Errorf("pretext: colorization: image %d augments to %dx%d, expected %dx%d", i, t.H, t.W, s, s)
		}
		l, err := data.Normalize(data.ToLabL(t), m.cfg.Mean, m.cfg.Std)
		if err != nil {
			return nil, fmt.Errorf("pretext: colorization: image %d: %w", i, err)
		}
		b.Inputs[0] = append(b.Inputs[0], l.Data...)
		ab := data.ToLab(t)
		small := data.Resize(data.Tensor{C: 2, H: s, W: s, Data: ab.Data[s*s:]}, g, g)
		for p := 0; p < g*g; p++ {
			m.bins.Encode(float64(small.Data[p]), float64(small.Data[g*g+p]), m.cc.Sigma, idx, z)
			for _, q := range idx {
				b.Inputs[1] = append(b.Inputs[1], float32(q))
			}
			b.Inputs[2] = append(b.Inputs[2], z...)
			b.Inputs[3] = append(b.Inputs[3], float32(m.weights[idx[0]]))
		}
	}
	return b, nil
}

// Load copies the lightness into the graph and the targets into the loss.
func (m *colorModel) Load(b *Batch) error {
	if len(b.Inputs) != 4 {
		return fmt.Errorf("pretext: colorization: batch has %d inputs, expected 4 (lightness, bins, soft weights, rebalancing weights)", len(b.Inputs))
	}
	dst := m.input.Value().Data().([]float32)
	st := m.target
	for i, n := range []int{len(dst), len(st.Idx), len(st.Z), len(st.W)} {
		if len(b.Inputs[i]) != n {
			return fmt.Errorf("pretext: colorization: batch input %d has %d values, expected %d (batch %d, %d px, %dx%d grid, %d bins per target)",
				i, len(b.Inputs[i]), n, m.batch, m.cfg.InputSize, m.side, m.side, st.K)
		}
	}
	copy(dst, b.Inputs[0])
	q := m.bins.Len()
	for i, v := range b.Inputs[1] {
		if v < 0 || int(v) >= q || v != float32(int(v)) {
			return fmt.Errorf("pretext: colorization: batch target %d is bin %v, expected an integer in [0, %d)", i, v, q)
		}
		st.Idx[i] = int32(v)
	}
	copy(st.Z, b.Inputs[2])
	copy(st.W, b.Inputs[3])
	return nil
}

// Metrics reports pretext_acc: the fraction of grid cells of the last
// batch whose most probable bin is their nearest.
func (m *colorModel) Metrics() map[string]float64 {
	if m.target.Count == 0 {
		return map[string]float64{"pretext_acc": 0}
	}
	return map[string]float64{"pretext_acc": float64(m.target.Hits) / float64(m.target.Count)}
}
