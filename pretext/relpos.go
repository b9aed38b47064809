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

// RelPos is the relative patch position ("context prediction") pretext
// task of Doersch, Gupta & Efros 2015, "Unsupervised Visual Representation
// Learning by Context Prediction" (ICCV). From every source image a square
// window is cut into a 3x3 grid of cells (see CutRelPos); the patch of the
// centre cell and the patch of one of its 8 neighbours, drawn uniformly,
// go through the shared backbone, and a late-fusion head tells where the
// neighbour lies relative to the centre:
//
//	patches [2N, C, P, P] (rows 2i: centre of pair i, 2i+1: its neighbour)
//	-> shared backbone -> pooled "features" [2N, D]
//	-> concatenate each pair (centre, neighbour) -> [N, 2D]
//	-> fc7 (Hidden) -> ReLU -> fc8 (8) -> softmax cross-entropy
//
// As in the paper (Section 3, Figure 3) both patches are processed alone up
// to a per-patch representation (here the pooled backbone output stands in
// for the paper's fc6) and only fc7 and fc8 see the pair. Target k in
// [0, 8) names the neighbour's cell in raster order with the centre left
// out (see RelPosOffset):
//
//	0 1 2
//	3 . 4
//	5 6 7
//
// A batch of B source images holds N = B*Pairs pairs (default 2 pairs per
// image), 2N backbone inputs. The config's crop scale and flip settings are
// not used (the patch pipeline has its own random window; a flip would
// need its labels mirrored); its Mean and Std normalise the patches only
// when per-patch normalisation is off.
//
// Config overrides the pretext config's RelPos; with both nil the task
// runs with DefaultRelPosConfig(InputSize).
type RelPos struct {
	Config *RelPosConfig
}

func init() { Register("relpos", func() Task { return RelPos{} }) }

func (RelPos) Name() string      { return "relpos" }
func (RelPos) NeedsLabels() bool { return false }

// RelPosClasses is the number of relative positions: the 8 neighbours of
// the centre cell of a 3x3 grid.
const RelPosClasses = 8

// relposOffsets[k] is the (row, column) offset of neighbour k from the
// centre cell.
var relposOffsets = [RelPosClasses][2]int{
	{-1, -1}, {-1, 0}, {-1, 1},
	{0, -1}, {0, 1},
	{1, -1}, {1, 0}, {1, 1},
}

// RelPosOffset returns the cell offset (dy, dx), each in {-1, 0, 1} and not
// both 0, of the neighbour that target k in [0, 8) names: rows grow
// downwards, columns to the right (k = 0 is the upper-left cell, 4 the
// right one, 6 the one below). It returns ok = false for k outside [0, 8).
func RelPosOffset(k int) (dy, dx int, ok bool) {
	if k < 0 || k >= RelPosClasses {
		return 0, 0, false
	}
	return relposOffsets[k][0], relposOffsets[k][1], true
}

// RelPosTarget is the inverse of RelPosOffset: the target of the neighbour
// at cell offset (dy, dx), or -1 when (dy, dx) is no neighbour.
func RelPosTarget(dy, dx int) int {
	for k, o := range relposOffsets {
		if o[0] == dy && o[1] == dx {
			return k
		}
	}
	return -1
}

// RelPosConfig configures the relpos task. Sizes are in pixels.
//
// Geometry (paper, Section 3: 96 px patches with a 48 px gap and up to 7
// px of jitter in each direction, from images resized to 150-450k pixels):
// a random square window of side CropFrac * the image's shorter side is
// resized to Crop x Crop and split into 3x3 cells (as the jigsaw tiles,
// see CutPuzzle); each patch is a Patch x Patch square at a random position
// inside its cell that keeps at least Gap/2 pixels from the cell's edges,
// so neighbouring patches are always at least Gap pixels apart (no edge or
// texture continues from one to the other) and their positions jitter by
// up to Crop/3 - Patch - Gap pixels.
//
// Chromatic aberration (paper, Section 3.1): lenses shift colour channels
// by an amount that grows towards the edges of a photograph, which tells a
// network where a patch lies in the image without any understanding of its
// content. ColorDrop is the paper's main countermeasure ("color
// dropping"): in every patch two of the three colour channels, drawn at
// random, are replaced by Gaussian noise of 1/100 the standard deviation
// of the kept channel. GrayProb (random grayscale of the whole image) is
// offered as a weaker alternative; the default is colour dropping alone.
type RelPosConfig struct {
	// Crop is the side of the resized window, three cells (default: 3
	// cells of round(InputSize*225/256/3) px clamped to [28, 75], the
	// jigsaw tiles' cells: 84 for 32 px images).
	Crop int `json:"crop"`
	// CropFrac is the side of the random square window, as a fraction of
	// the image's shorter side, before it is resized to Crop (default
	// 225/256 = 0.879).
	CropFrac float64 `json:"crop_frac"`
	// Patch is the side of every patch (default 3/4 of a cell: 21 px in 28
	// px cells, 56 px in 75 px cells).
	Patch int `json:"patch"`
	// Gap is the smallest distance between neighbouring patches (default a
	// seventh of a cell: 4 px in 28 px cells, 11 px in 75 px cells, about
	// a fifth of a patch; the paper's half-patch gap would leave patches
	// of a few source pixels on 32 px images).
	Gap int `json:"gap"`
	// Pairs is the number of (centre, neighbour) pairs cut from every
	// source image per step (default 2); the pairs of one image share its
	// window but draw their patch positions and targets independently.
	Pairs int `json:"pairs"`
	// Hidden is the width of fc7, the first layer that sees both patches
	// (default 512, the paper 4096; negative: no fc7, fc8 maps the
	// concatenated features straight to the 8 positions).
	Hidden int `json:"hidden"`
	// PerPatchNorm brings every channel of every patch to zero mean and
	// unit variance on its own (the paper subtracts each patch's mean);
	// without it patches are normalised with the dataset's Mean and Std.
	PerPatchNorm bool `json:"per_patch_norm"`
	// ColorDrop enables colour dropping on 3-channel images (see above).
	ColorDrop bool `json:"color_drop"`
	// GrayProb turns a whole 3-channel image grey (every channel its
	// BT.601 luma) with this probability before it is cut (default 0).
	GrayProb float64 `json:"gray_prob"`
}

// DefaultRelPosConfig returns the defaults for images whose shorter side
// is imageSize pixels: the jigsaw tiles' window and cells (CropFrac
// 225/256, cells of round(imageSize*CropFrac/3) clamped to [28, 75]),
// patches of 3/4 of a cell, a gap of at least a seventh of a cell, 2 pairs
// per image, fc7 of 512 units, per-patch normalisation and colour
// dropping on, no grayscale. For 32 px images (CIFAR): a 28 px window
// resized to 84, 21 px patches, gap >= 4 px, jitter 0-3 px.
func DefaultRelPosConfig(imageSize int) RelPosConfig {
	crop, frac, patch, gap := relposGeometry(imageSize)
	return RelPosConfig{Crop: crop, CropFrac: frac, Patch: patch, Gap: gap, Pairs: 2, Hidden: 512,
		PerPatchNorm: true, ColorDrop: true}
}

func relposGeometry(imageSize int) (crop int, frac float64, patch, gap int) {
	frac = 225.0 / 256
	cell := int(math.Round(float64(imageSize) * frac / 3))
	cell = min(max(cell, 28), 75)
	return 3 * cell, frac, int(math.Round(float64(cell) * 3 / 4)), max(1, int(math.Round(float64(cell)/7)))
}

// ResolveRelPos returns *rc with its zero numeric fields given their
// defaults for images of inputSize pixels (a zero Crop sets Crop, Patch and
// Gap together; CropFrac, Pairs, Hidden one by one), or
// DefaultRelPosConfig(inputSize) when rc is nil. Boolean fields are kept
// as given.
func ResolveRelPos(rc *RelPosConfig, inputSize int) RelPosConfig {
	if rc == nil {
		return DefaultRelPosConfig(inputSize)
	}
	r := *rc
	crop, frac, patch, gap := relposGeometry(inputSize)
	if r.Crop == 0 {
		r.Crop, r.Patch, r.Gap = crop, patch, gap
	}
	if r.CropFrac == 0 {
		r.CropFrac = frac
	}
	if r.Pairs == 0 {
		r.Pairs = 2
	}
	if r.Hidden == 0 {
		r.Hidden = 512
	}
	return r
}

// Validate checks that the geometry and settings are consistent.
func (r RelPosConfig) Validate() error {
	switch {
	case r.Crop < 3:
		return fmt.Errorf("pretext: relpos: crop must be >= 3 px (three cells), got %d", r.Crop)
	case r.Patch < 1:
		return fmt.Errorf("pretext: relpos: patch must be >= 1 px, got %d", r.Patch)
	case r.Gap < 0:
		return fmt.Errorf("pretext: relpos: gap must be >= 0 px, got %d", r.Gap)
	case r.Patch+r.Gap > r.Crop/3:
		return fmt.Errorf("pretext: relpos: patch %d px + gap %d px exceed the smallest cell of a %d px crop (%d px)", r.Patch, r.Gap, r.Crop, r.Crop/3)
	case r.CropFrac <= 0 || r.CropFrac > 1:
		return fmt.Errorf("pretext: relpos: crop fraction must be in (0, 1], got %g", r.CropFrac)
	case r.Pairs < 1:
		return fmt.Errorf("pretext: relpos: pairs per image must be >= 1, got %d", r.Pairs)
	case r.GrayProb < 0 || r.GrayProb > 1:
		return fmt.Errorf("pretext: relpos: grayscale probability must be in [0, 1], got %g", r.GrayProb)
	}
	return nil
}

// RelPosPair is one (centre, neighbour) pair cut by CutRelPos.
type RelPosPair struct {
	// Target is the neighbour's position, in [0, 8) (see RelPosOffset).
	Target int
	// Boxes are the centre's and the neighbour's windows in the cut's
	// Crop (Patch x Patch).
	Boxes [2]TileBox
	// Patches are the centre and the neighbour, each [C, Patch, Patch],
	// normalised and colour-dropped.
	Patches [2]data.Tensor
	// Kept is, per patch, the channel kept by colour dropping, or -1 when
	// none was dropped.
	Kept [2]int
}

// RelPosCut is what CutRelPos cuts from one image, with the geometry kept
// for pictures and tests.
type RelPosCut struct {
	// Crop is the random window resized to [C, Crop, Crop], values in
	// [0, 1], after the random grayscale.
	Crop data.Tensor
	// Window is the window in the source image: top, left, side.
	Window [3]int
	// Gray reports whether the image was turned grey.
	Gray bool
	// Pairs holds the pairs, in the order drawn.
	Pairs []RelPosPair
}

// relposBox draws a Patch x Patch box inside the cell at grid position
// (row, col) of a crop of side crop, at least ceil(gap/2) pixels from the
// cell's top and left edges and floor(gap/2) from its bottom and right
// ones, so that two neighbouring boxes are at least gap pixels apart.
// Draws: row offset, then column offset.
func relposBox(row, col, crop, patch, gap int, rng *rand.Rand) TileBox {
	cy, ch := cellSpan(row, 3, crop)
	cx, cw := cellSpan(col, 3, crop)
	lo := (gap + 1) / 2
	oy := lo + rng.Intn(ch-patch-gap+1)
	ox := lo + rng.Intn(cw-patch-gap+1)
	return TileBox{Top: cy + oy, Left: cx + ox, H: patch, W: patch}
}

// CutRelPos cuts pairs (centre, neighbour) patches from img ([C, H, W],
// values in [0, 1]):
//
//  1. with probability GrayProb a 3-channel image is turned grey;
//  2. a random square window of side round(CropFrac * min(H, W)) is taken
//     and resized to Crop x Crop (one window for all pairs);
//  3. per pair: the target k is drawn uniformly from [0, 8), then the
//     centre patch's box in cell 4 and the neighbour's box in cell
//     (1+dy)*3 + (1+dx), (dy, dx) = RelPosOffset(k) (see RelPosConfig for
//     the gap);
//  4. each patch is normalised: with PerPatchNorm every channel to zero
//     mean and unit variance, else with mean and std (one value per
//     channel or one for all; nil leaves values in [0, 1]);
//  5. with ColorDrop, on a colour image that was not turned grey, one
//     channel of each patch is kept at random and the other two are
//     replaced by Gaussian noise with 1/100 of the kept channel's standard
//     deviation.
//
// The draws, in order: grayscale (when GrayProb > 0 on a 3-channel
// image), window position, then per pair: target, centre box, neighbour
// box, then per patch (centre first) the kept channel and the noise.
func CutRelPos(img data.Tensor, rc RelPosConfig, mean, std []float32, rng *rand.Rand) (*RelPosCut, error) {
	if err := rc.Validate(); err != nil {
		return nil, err
	}
	if !img.Valid() {
		return nil, fmt.Errorf("pretext: relpos: invalid image tensor %dx%dx%d with %d values", img.C, img.H, img.W, len(img.Data))
	}
	cut := &RelPosCut{}
	if img.C == 3 && rc.GrayProb > 0 && rng.Float64() < rc.GrayProb {
		g := data.ToGray(img)
		img = data.Tensor{C: 3, H: img.H, W: img.W, Data: append(append(append(make([]float32, 0, 3*len(g.Data)), g.Data...), g.Data...), g.Data...)}
		cut.Gray = true
	}
	side := max(1, int(math.Round(rc.CropFrac*float64(min(img.H, img.W)))))
	top, left := rng.Intn(img.H-side+1), rng.Intn(img.W-side+1)
	cut.Window = [3]int{top, left, side}
	cut.Crop = data.Resize(data.Crop(img, top, left, side, side), rc.Crop, rc.Crop)
	drop := rc.ColorDrop && img.C == 3 && !cut.Gray
	for p := 0; p < rc.Pairs; p++ {
		k := rng.Intn(RelPosClasses)
		dy, dx, _ := RelPosOffset(k)
		pair := RelPosPair{Target: k, Kept: [2]int{-1, -1}}
		pair.Boxes[0] = relposBox(1, 1, rc.Crop, rc.Patch, rc.Gap, rng)
		pair.Boxes[1] = relposBox(1+dy, 1+dx, rc.Crop, rc.Patch, rc.Gap, rng)
		for i, b := range pair.Boxes {
			t := data.Crop(cut.Crop, b.Top, b.Left, b.H, b.W)
			if rc.PerPatchNorm {
				t = normalizeTile(t)
			} else if mean != nil {
				var err error
				if t, err = data.Normalize(t, mean, std); err != nil {
					return nil, fmt.Errorf("pretext: relpos: %w", err)
				}
			}
			if drop {
				pair.Kept[i] = colorDrop(t, rng)
			}
			pair.Patches[i] = t
		}
		cut.Pairs = append(cut.Pairs, pair)
	}
	return cut, nil
}

// colorDrop keeps one channel of the 3-channel t, drawn uniformly, and
// overwrites the other two in place with Gaussian noise of zero mean and
// 1/100 of the kept channel's (population) standard deviation (Doersch et
// al. 2015, Section 3.1). It returns the kept channel.
func colorDrop(t data.Tensor, rng *rand.Rand) int {
	n := t.H * t.W
	keep := rng.Intn(3)
	kept := t.Data[keep*n : (keep+1)*n]
	var s, sq float64
	for _, v := range kept {
		s += float64(v)
	}
	m := s / float64(n)
	for _, v := range kept {
		sq += (float64(v) - m) * (float64(v) - m)
	}
	sigma := 0.01 * math.Sqrt(sq/float64(n))
	for c := 0; c < 3; c++ {
		if c == keep {
			continue
		}
		for i := range t.Data[c*n : (c+1)*n] {
			t.Data[c*n+i] = float32(sigma * rng.NormFloat64())
		}
	}
	return keep
}

func (t RelPos) Build(bb *models.Backbone, batch int, cfg Config, heads models.Weights, rng *rand.Rand) (Model, error) {
	c := t.Config
	if c == nil {
		c = cfg.RelPos
	}
	rc := ResolveRelPos(c, cfg.InputSize)
	if err := rc.Validate(); err != nil {
		return nil, err
	}
	if cfg.Channels != bb.Spec.InC {
		return nil, fmt.Errorf("pretext: relpos: images have %d channels, backbone %s expects %d", cfg.Channels, bb.Spec.Arch, bb.Spec.InC)
	}
	if batch < 1 {
		return nil, fmt.Errorf("pretext: relpos: batch must be >= 1, got %d", batch)
	}
	n, p := batch*rc.Pairs, rc.Patch
	m := &relposModel{cfg: cfg, rc: rc, batch: batch, labels: &ops.Labels{Y: make([]int, n)}}
	m.input = G.NewTensor(bb.Graph, tensor.Float32, 4, G.WithShape(2*n, cfg.Channels, p, p), G.WithName("relpos.patches"),
		G.WithValue(tensor.New(tensor.WithShape(2*n, cfg.Channels, p, p), tensor.Of(tensor.Float32))))
	outs, err := bb.Forward(m.input, "features")
	if err != nil {
		return nil, fmt.Errorf("pretext: relpos: %w", err)
	}
	m.feats = outs["features"]
	// Rows 2i and 2i+1 are pair i's centre and neighbour: the identity
	// gather with two blocks per row concatenates them in that order.
	idx := &rowIndex{Rows: make([]int, 2*n)}
	for i := range idx.Rows {
		idx.Rows[i] = i
	}
	x, err := gatherRows(m.feats, idx, n, 2)
	if err != nil {
		return nil, err
	}
	m.concat = x
	in := 2 * bb.Spec.FeatureDim
	if m.fc7, m.fc8, m.logits, m.loss, err = fcHead(bb.Graph, x, in, rc.Hidden, RelPosClasses, m.labels, heads, rng); err != nil {
		return nil, fmt.Errorf("pretext: relpos: %w", err)
	}
	return m, nil
}

type relposModel struct {
	cfg      Config
	rc       RelPosConfig
	batch    int
	input    *G.Node        // [2N, C, P, P]
	feats    *G.Node        // [2N, D]
	concat   *G.Node        // [N, 2D]
	fc7, fc8 *models.Linear // fc7 may be nil
	logits   *G.Node
	loss     *G.Node
	labels   *ops.Labels
}

func (m *relposModel) Loss() *G.Node { return m.loss }

func (m *relposModel) layers() []*models.Linear {
	if m.fc7 == nil {
		return []*models.Linear{m.fc8}
	}
	return []*models.Linear{m.fc7, m.fc8}
}

func (m *relposModel) Learnables() G.Nodes { return linearParams(m.layers()) }

func (m *relposModel) HeadWeights() models.Weights { return linearWeights(m.layers()) }

// MakeBatch cuts Pairs pairs from every image (CutRelPos with the task's
// config; without per-patch normalisation the patches are normalised with
// the dataset's Mean and Std). Inputs[0] holds, for pair i (image i/Pairs),
// the centre at row 2i and the neighbour at row 2i+1, each [C, Patch,
// Patch]; Targets[i] is the neighbour's position in [0, 8).
func (m *relposModel) MakeBatch(imgs []data.Image, labels []int, index []int, rng *rand.Rand) (*Batch, error) {
	p := m.rc.Patch
	per := m.cfg.Channels * p * p
	b := &Batch{Inputs: [][]float32{make([]float32, 0, 2*m.rc.Pairs*len(imgs)*per)}, Index: index}
	for i, img := range imgs {
		if img.C != m.cfg.Channels {
			return nil, fmt.Errorf("pretext: relpos: image %d has %d channels, expected %d", i, img.C, m.cfg.Channels)
		}
		cut, err := CutRelPos(data.ToTensor(img), m.rc, m.cfg.Mean, m.cfg.Std, rng)
		if err != nil {
			return nil, fmt.Errorf("pretext: relpos: image %d: %w", i, err)
		}
		for _, pair := range cut.Pairs {
			b.Inputs[0] = append(append(b.Inputs[0], pair.Patches[0].Data...), pair.Patches[1].Data...)
			b.Targets = append(b.Targets, pair.Target)
		}
	}
	return b, nil
}

// Load copies the patches and targets into the graph.
func (m *relposModel) Load(b *Batch) error {
	if len(b.Inputs) != 1 {
		return fmt.Errorf("pretext: relpos: batch has %d inputs, expected 1", len(b.Inputs))
	}
	dst := m.input.Value().Data().([]float32)
	if len(b.Inputs[0]) != len(dst) {
		return fmt.Errorf("pretext: relpos: batch input has %d values, graph expects %d (shape %v)", len(b.Inputs[0]), len(dst), m.input.Shape())
	}
	if len(b.Targets) != len(m.labels.Y) {
		return fmt.Errorf("pretext: relpos: batch has %d targets, expected %d (%d images x %d pairs)", len(b.Targets), len(m.labels.Y), m.batch, m.rc.Pairs)
	}
	for i, k := range b.Targets {
		if k < 0 || k >= RelPosClasses {
			return fmt.Errorf("pretext: relpos: target %d of pair %d outside [0, %d)", k, i, RelPosClasses)
		}
	}
	copy(dst, b.Inputs[0])
	copy(m.labels.Y, b.Targets)
	return nil
}

// Ranks gives, per pair, how many positions scored above the target.
func (m *relposModel) Ranks() []int { return m.labels.Rank }

func (m *relposModel) Metrics() map[string]float64 {
	return map[string]float64{"pretext_acc": predAccuracy(m.labels)}
}
