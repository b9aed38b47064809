package pretext

import (
	"fmt"
	"math/rand"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
)

// Jigsaw is the Jigsaw-puzzle pretext task of Noroozi & Favaro 2016,
// "Unsupervised Learning of Visual Representations by Solving Jigsaw
// Puzzles" (ECCV). Every source image is cut into 3x3 tiles (see
// CutPuzzle), one permutation of a fixed set of N is drawn uniformly, and a
// context-free network (Section 3.1) must tell which one shuffled the tiles:
//
//	tiles [9B, C, T, T] (raster order) -> shared backbone
//	-> per tile: the last convolutional map [9B, C', h, w], flattened,
//	   -> fc6 (shared, TileDim) -> BN -> ReLU -> dropout     ("spatial" head)
//	   or the pooled "features" [9B, D]                     ("pooled" head)
//	-> reorder each image's 9 rows by its permutation and concatenate
//	   -> [B, 9*TileDim]  (shuffled position p holds tile Perms[k][p])
//	-> fc7 (Hidden) -> BN -> ReLU -> dropout -> fc8 (N) -> softmax cross-entropy
//
// The head's batch norms (VISSL's MLP heads with use_bn) and dropout after
// fc6 and fc7 (bbrattoli/JigsawPuzzlePytorch: 0.5) are on by default
// (JigsawConfig.HeadNorm, Dropout): without them the head memorises the
// small tile features instead of asking the backbone for better ones.
//
// As in the paper, the convolutional layers and fc6 see one tile at a time
// and share their weights; only fc7 and fc8 see all nine. The spatial head
// (the default) keeps where things are inside a tile, as the paper's fc6 on
// the flattened conv5 map does; the pooled head averages it away.
// Reordering the per-tile rows rather than the input tiles is the same
// computation, since everything before the reordering treats the rows of
// its batch alike. A batch of B source images is 9B backbone inputs; target
// k is the index of the permutation in the set. The config's crop scale
// and flip settings are not used (the tile pipeline has its own random
// crop); its Mean and Std normalise the tiles only when per-tile
// normalisation is off.
type Jigsaw struct{}

func init() { Register("jigsaw", func() Task { return Jigsaw{} }) }

func (Jigsaw) Name() string      { return "jigsaw" }
func (Jigsaw) NeedsLabels() bool { return false }

// JigsawConfig is the Jigsaw task's part of the pretext config
// (Config.Jigsaw; nil means DefaultJigsawConfig(Config.InputSize)).
type JigsawConfig struct {
	// N is the number of permutations, the classes of the task (paper:
	// 1000; default 100, which the paper's Table 4 shows costs little
	// downstream and which is easier to learn on a small budget).
	N int `json:"n"`
	// Method selects the permutation set: maxavg (the paper's Algorithm 1,
	// default), maxmin or random; see GeneratePermSet.
	Method string `json:"method"`
	// PermSeed seeds the permutation set (default 1).
	PermSeed int64 `json:"perm_seed"`
	// PermFile, when set, reads the set from a file written by
	// `selfsup perms` instead (N must then be 0 or its size).
	PermFile string `json:"perm_file,omitempty"`
	// Head is "spatial" (default: fc6 on each tile's flattened last
	// convolutional map, as the paper) or "pooled" (each tile's globally
	// pooled backbone features, no fc6).
	Head string `json:"head"`
	// TileDim is the width of fc6, the per-tile layer of the spatial head
	// (0: the default 256; AlexNet-sized versions use 512 to 1024).
	TileDim int `json:"tile_dim"`
	// Hidden is the width of fc7, which sees all nine tiles (0: the
	// default 512, the paper 4096; negative: no fc7, fc8 maps the
	// concatenation straight to N).
	Hidden int `json:"hidden"`
	// HeadNorm is "bn" (default: a batch norm after fc6 and after fc7,
	// before the ReLU) or "none".
	HeadNorm string `json:"head_norm,omitempty"`
	// Dropout is the rate of the dropout after fc6's and fc7's ReLU (0:
	// the default 0.5, as bbrattoli's fc6/fc7; negative: none).
	Dropout float64 `json:"dropout,omitempty"`
	// Tiles is the tile pipeline; a zero Grid means
	// DefaultTileConfig(Config.InputSize).
	Tiles TileConfig `json:"tiles"`
}

// Jigsaw heads (JigsawConfig.Head) and their normalisation
// (JigsawConfig.HeadNorm).
const (
	JigsawHeadSpatial = "spatial"
	JigsawHeadPooled  = "pooled"
	JigsawNormBN      = "bn"
	JigsawNormNone    = "none"
)

// DefaultJigsawConfig returns the defaults for images of imageSize pixels:
// 100 maxavg permutations with seed 1, the spatial head with fc6 of 256 and
// fc7 of 512 units, batch norm and dropout 0.5 after both, and
// DefaultTileConfig(imageSize).
func DefaultJigsawConfig(imageSize int) JigsawConfig {
	return JigsawConfig{N: 100, Method: PermMethodMaxAvg, PermSeed: 1, Head: JigsawHeadSpatial, TileDim: 256, Hidden: 512,
		HeadNorm: JigsawNormBN, Dropout: 0.5, Tiles: DefaultTileConfig(imageSize)}
}

// ResolveJigsaw returns cfg.Jigsaw with its zero fields given their
// defaults for cfg.InputSize (Tiles when Grid is 0, Method, N unless a
// PermFile is named, Head, TileDim, Hidden, HeadNorm, Dropout), or
// DefaultJigsawConfig(cfg.InputSize) when it is nil.
func ResolveJigsaw(cfg Config) JigsawConfig {
	if cfg.Jigsaw == nil {
		return DefaultJigsawConfig(cfg.InputSize)
	}
	j := *cfg.Jigsaw
	if j.Tiles.Grid == 0 {
		j.Tiles = DefaultTileConfig(cfg.InputSize)
	}
	if j.Method == "" {
		j.Method = PermMethodMaxAvg
	}
	if j.N == 0 && j.PermFile == "" {
		j.N = 100
	}
	if j.Head == "" {
		j.Head = JigsawHeadSpatial
	}
	if j.TileDim == 0 {
		j.TileDim = 256
	}
	if j.Hidden == 0 {
		j.Hidden = 512
	}
	if j.HeadNorm == "" {
		j.HeadNorm = JigsawNormBN
	}
	if j.Dropout == 0 {
		j.Dropout = 0.5
	}
	return j
}

// PermSet returns the permutation set the config names: read from PermFile
// or generated with GeneratePermSet(N, Method, PermSeed).
func (j JigsawConfig) PermSet() (*PermSet, error) {
	if j.PermFile != "" {
		s, err := ReadPermSet(j.PermFile)
		if err != nil {
			return nil, err
		}
		if j.N != 0 && j.N != len(s.Perms) {
			return nil, fmt.Errorf("pretext: jigsaw: %s holds %d permutations, config says n=%d", j.PermFile, len(s.Perms), j.N)
		}
		return s, nil
	}
	return GeneratePermSet(j.N, j.Method, j.PermSeed)
}

// Validate checks the settings (not the permutation set itself).
func (j JigsawConfig) Validate() error {
	if j.Head != JigsawHeadSpatial && j.Head != JigsawHeadPooled {
		return fmt.Errorf("pretext: jigsaw: head must be %q or %q, got %q", JigsawHeadSpatial, JigsawHeadPooled, j.Head)
	}
	if j.HeadNorm != JigsawNormBN && j.HeadNorm != JigsawNormNone {
		return fmt.Errorf("pretext: jigsaw: head norm must be %q or %q, got %q", JigsawNormBN, JigsawNormNone, j.HeadNorm)
	}
	if j.Dropout >= 1 {
		return fmt.Errorf("pretext: jigsaw: dropout must be < 1, got %g", j.Dropout)
	}
	if j.Head == JigsawHeadSpatial && j.TileDim < 1 {
		return fmt.Errorf("pretext: jigsaw: fc6 width must be >= 1, got %d", j.TileDim)
	}
	if j.Tiles.Grid != 3 {
		return fmt.Errorf("pretext: jigsaw: grid must be 3 (permutations of %d tiles), got %d", PermTiles, j.Tiles.Grid)
	}
	return j.Tiles.Validate()
}

func (Jigsaw) Build(bb *models.Backbone, batch int, cfg Config, heads models.Weights, rng *rand.Rand) (Model, error) {
	jc := ResolveJigsaw(cfg)
	if err := jc.Validate(); err != nil {
		return nil, err
	}
	if cfg.Channels != bb.Spec.InC {
		return nil, fmt.Errorf("pretext: jigsaw: images have %d channels, backbone %s expects %d", cfg.Channels, bb.Spec.Arch, bb.Spec.InC)
	}
	if batch < 1 {
		return nil, fmt.Errorf("pretext: jigsaw: batch must be >= 1, got %d", batch)
	}
	set, err := jc.PermSet()
	if err != nil {
		return nil, fmt.Errorf("pretext: jigsaw: permutation set: %w", err)
	}
	if err := set.Validate(); err != nil {
		return nil, fmt.Errorf("pretext: jigsaw: permutation set: %w", err)
	}
	n, t := batch*PermTiles, jc.Tiles.Tile
	m := &jigsawModel{cfg: cfg, jc: jc, perms: set.Perms, batch: batch,
		labels: &ops.Labels{Y: make([]int, batch)}, rows: &rowIndex{Rows: make([]int, n)}}
	for i := range m.rows.Rows {
		m.rows.Rows[i] = i
	}
	m.input = G.NewTensor(bb.Graph, tensor.Float32, 4, G.WithShape(n, cfg.Channels, t, t), G.WithName("tiles"),
		G.WithValue(tensor.New(tensor.WithShape(n, cfg.Channels, t, t), tensor.Of(tensor.Float32))))
	out := "features"
	if jc.Head == JigsawHeadSpatial {
		if out, err = lastSpatialOutput(bb.Spec); err != nil {
			return nil, err
		}
	}
	outs, err := bb.Forward(m.input, out)
	if err != nil {
		return nil, fmt.Errorf("pretext: jigsaw: %w", err)
	}
	var x *G.Node
	in := bb.Spec.FeatureDim
	bn6, bn7, rate := "", "", jc.Dropout
	if jc.HeadNorm == JigsawNormBN {
		bn6, bn7 = "head.bn6", "head.bn7"
	}
	if len(heads) > 0 && heads["head.fc8.weight"].Data != nil && heads["head.bn7.weight"].Data == nil && heads["head.bn6.weight"].Data == nil {
		bn6, bn7, rate = "", "", 0 // a checkpoint written before the head had batch norm and dropout
	}
	if jc.Head == JigsawHeadSpatial {
		if x, err = flattenRows(outs[out]); err != nil {
			return nil, err
		}
		if m.h6, x, err = newHiddenLayer(bb.Graph, x, "head.fc6", bn6, x.Shape()[1], jc.TileDim, rate, bb.Mode, heads, rng); err != nil {
			return nil, fmt.Errorf("pretext: jigsaw: %w", err)
		}
		in = jc.TileDim
	} else {
		x = outs["features"]
	}
	m.feats = x
	if x, err = gatherRows(x, m.rows, batch, PermTiles); err != nil {
		return nil, err
	}
	m.concat = x
	in *= PermTiles
	if jc.Hidden > 0 {
		if m.h7, x, err = newHiddenLayer(bb.Graph, x, "head.fc7", bn7, in, jc.Hidden, rate, bb.Mode, heads, rng); err != nil {
			return nil, fmt.Errorf("pretext: jigsaw: %w", err)
		}
		in = jc.Hidden
	}
	if m.fc8, err = models.NewLinear(bb.Graph, "head.fc8", in, len(set.Perms), heads, rng); err != nil {
		return nil, fmt.Errorf("pretext: jigsaw: %w", err)
	}
	if m.logits, err = m.fc8.Apply(x); err != nil {
		return nil, err
	}
	if m.loss, err = ops.SoftmaxCrossEntropy(m.logits, m.labels); err != nil {
		return nil, err
	}
	return m, nil
}

type jigsawModel struct {
	cfg    Config
	jc     JigsawConfig
	perms  [][]int
	batch  int
	input  *G.Node
	feats  *G.Node // per-tile rows [9B, D] before the reordering, raster order
	concat *G.Node // reordered and concatenated [B, 9D]
	rows   *rowIndex
	h6, h7 *hiddenLayer // fc6 (spatial head) and fc7; either may be nil
	fc8    *models.Linear
	logits *G.Node
	loss   *G.Node
	labels *ops.Labels
}

func (m *jigsawModel) Loss() *G.Node { return m.loss }

// hidden lists the hidden layers the head has.
func (m *jigsawModel) hidden() []*hiddenLayer {
	var out []*hiddenLayer
	for _, h := range []*hiddenLayer{m.h6, m.h7} {
		if h != nil {
			out = append(out, h)
		}
	}
	return out
}

// dropouts lists the dropout masks, in the order of Batch.Inputs[1:].
func (m *jigsawModel) dropouts() []*dropout {
	var out []*dropout
	for _, h := range m.hidden() {
		if h.drop != nil {
			out = append(out, h.drop)
		}
	}
	return out
}

func (m *jigsawModel) Learnables() G.Nodes {
	var out G.Nodes
	for _, h := range m.hidden() {
		out = append(out, h.params()...)
	}
	return append(out, m.fc8.W, m.fc8.B)
}

func (m *jigsawModel) HeadWeights() models.Weights {
	w := m.fc8.Weights()
	for _, h := range m.hidden() {
		for k, v := range h.weights() {
			w[k] = v
		}
	}
	return w
}

// lastSpatialOutput names the backbone output that feeds its global
// average pool (the last convolutional map).
func lastSpatialOutput(s *models.Spec) (string, error) {
	pool := s.Outputs["features"]
	for _, l := range s.Layers {
		if l.Name != pool || l.Op != models.OpGlobalAvgPool || len(l.Inputs) != 1 {
			continue
		}
		for name, layer := range s.Outputs {
			if layer == l.Inputs[0] {
				return name, nil
			}
		}
	}
	return "", fmt.Errorf("pretext: jigsaw: backbone %s exposes no output feeding its global pool; use the pooled head", s.Arch)
}

// MakeBatch cuts every image into tiles (CutPuzzle with the task's
// TileConfig; without per-tile normalisation the tiles are normalised with
// the dataset's Mean and Std) and draws its permutation uniformly from the
// set. Inputs[0] holds the tiles of image b at rows 9b..9b+8 in raster
// (unshuffled) order, Inputs[1:] the head's dropout masks; Targets[b] is
// the permutation index, which Load turns into the feature reordering.
func (m *jigsawModel) MakeBatch(imgs []data.Image, labels []int, index []int, rng *rand.Rand) (*Batch, error) {
	t := m.jc.Tiles.Tile
	per := m.cfg.Channels * t * t
	b := &Batch{Inputs: [][]float32{make([]float32, 0, PermTiles*len(imgs)*per)}, Index: index}
	for i, img := range imgs {
		if img.C != m.cfg.Channels {
			return nil, fmt.Errorf("pretext: jigsaw: image %d has %d channels, expected %d", i, img.C, m.cfg.Channels)
		}
		tiles, err := MakeTiles(data.ToTensor(img), m.jc.Tiles, rng)
		if err != nil {
			return nil, fmt.Errorf("pretext: jigsaw: image %d: %w", i, err)
		}
		for _, tile := range tiles {
			if !m.jc.Tiles.PerTileNorm {
				if tile, err = data.Normalize(tile, m.cfg.Mean, m.cfg.Std); err != nil {
					return nil, fmt.Errorf("pretext: jigsaw: %w", err)
				}
			}
			b.Inputs[0] = append(b.Inputs[0], tile.Data...)
		}
		b.Targets = append(b.Targets, rng.Intn(len(m.perms)))
	}
	for _, d := range m.dropouts() {
		b.Inputs = append(b.Inputs, d.draw(rng))
	}
	return b, nil
}

// Load copies the tiles into the graph and sets, for every image b with
// target k, the feature rows read at shuffled position p to 9b + Perms[k][p].
func (m *jigsawModel) Load(b *Batch) error {
	drops := m.dropouts()
	if len(b.Inputs) != 1+len(drops) {
		return fmt.Errorf("pretext: jigsaw: batch has %d inputs, expected %d (tiles and %d dropout masks)", len(b.Inputs), 1+len(drops), len(drops))
	}
	for i, d := range drops {
		if err := d.load(b.Inputs[1+i]); err != nil {
			return fmt.Errorf("pretext: jigsaw: %w", err)
		}
	}
	dst := m.input.Value().Data().([]float32)
	if len(b.Inputs[0]) != len(dst) {
		return fmt.Errorf("pretext: jigsaw: batch input has %d values, graph expects %d (shape %v)", len(b.Inputs[0]), len(dst), m.input.Shape())
	}
	if len(b.Targets) != m.batch {
		return fmt.Errorf("pretext: jigsaw: batch has %d targets, expected %d", len(b.Targets), m.batch)
	}
	for i, k := range b.Targets {
		if k < 0 || k >= len(m.perms) {
			return fmt.Errorf("pretext: jigsaw: target %d of image %d outside [0, %d)", k, i, len(m.perms))
		}
	}
	copy(dst, b.Inputs[0])
	copy(m.labels.Y, b.Targets)
	for i, k := range b.Targets {
		for p, src := range m.perms[k] {
			m.rows.Rows[i*PermTiles+p] = i*PermTiles + src
		}
	}
	return nil
}

func (m *jigsawModel) Metrics() map[string]float64 {
	return map[string]float64{"pretext_acc": predAccuracy(m.labels)}
}
