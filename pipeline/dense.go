package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval/dense"
	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/internal/progress"
	"github.com/selfsup/selfsup/runtime"
)

// DenseConfig is what `selfsup eval segment` and `eval detect` share: the
// model, the annotated data (see data.OpenAnnotated) and its splits, the
// stage maps to probe, the input size and a feature cache.
type DenseConfig struct {
	Model, Data           string
	TrainSplit, TestSplit string
	// Layers are stage outputs [N, C, h, w] of Model; the head's layer is
	// picked among them on the validation split.
	Layers []string
	// Size is the square input size; 0: the model's. A model with a fixed
	// input size accepts only its own.
	Size int
	// Tile, when > 0, cuts images larger than Tile x Tile pixels into
	// tiles of that size before anything else (data.Annotated.Tiled; a
	// box keeping under half its area in a tile is ignored there):
	// large aerial photographs. Split train and test by image.
	Tile int
	// ValFraction of the training images are held out to pick the layer
	// and hyper-parameters (default 0.2).
	ValFraction float64
	// Cache, when set, is a folder where extracted maps are kept as .npy,
	// named by the model's sha256, split, layer, size and flip.
	Cache     string
	SkipBad   bool
	MaxPixels int64
	// Bootstrap resamples of the test images for the intervals (default 1000).
	Bootstrap int
	Seed      int64
	// Picture, when set, receives a PNG of a few test images.
	Picture string
	Runtime runtime.Options
	Batch   int
	Log     io.Writer
}

// Interval is a value and its bootstrap 95% interval over test images.
type Interval struct {
	Value float64    `json:"value"`
	CI95  [2]float64 `json:"ci95"`
}

func (c *DenseConfig) defaults() {
	if c.TrainSplit == "" {
		c.TrainSplit = "train2017"
	}
	if c.TestSplit == "" {
		c.TestSplit = "val2017"
	}
	if c.ValFraction == 0 {
		c.ValFraction = 0.2
	}
	if c.Bootstrap == 0 {
		c.Bootstrap = 1000
	}
	if c.Batch == 0 {
		c.Batch = 16
	}
}

// denseSource is an open model with its preprocessing and output shapes.
type denseSource struct {
	sess  *runtime.Session
	pre   runtime.Preprocess
	shape map[string][3]int // layer -> C, h, w
	hash  string
}

func openDense(c *DenseConfig) (*denseSource, error) {
	if c.Model == "" || c.Data == "" {
		return nil, fmt.Errorf("dense: give --model and --data")
	}
	if len(c.Layers) == 0 {
		return nil, fmt.Errorf("dense: no layers to probe")
	}
	sess, err := runtime.Open(c.Model, c.Runtime)
	if err != nil {
		return nil, err
	}
	s := &denseSource{sess: sess, shape: map[string][3]int{}}
	fail := func(err error) (*denseSource, error) { sess.Close(); return nil, err }
	if s.pre, err = sess.Preprocess(); err != nil {
		return fail(err)
	}
	in := sess.Inputs()[0].Shape
	if c.Size != 0 && c.Size != s.pre.Size {
		if in[2] > 0 {
			return fail(fmt.Errorf("dense: --size %d, but %s takes %d x %d inputs only: export it with --size %d (or --dynamic-hw)", c.Size, c.Model, in[2], in[3], c.Size))
		}
		s.pre.Size = c.Size
	}
	outs := map[string][]int64{}
	var names []string
	for _, o := range sess.Outputs() {
		outs[o.Name] = o.Shape
		names = append(names, o.Name)
	}
	for _, l := range c.Layers {
		if l == LayerPixels || l == LayerPrior { // baselines: computed from the input, not by the model
			g := s.pre.Size / baselineBlock
			if g < 1 {
				return fail(fmt.Errorf("dense: layer %q needs inputs of at least %d px, got %d", l, baselineBlock, s.pre.Size))
			}
			s.shape[l] = [3]int{map[string]int{LayerPixels: s.pre.Channels * baselineBlock * baselineBlock, LayerPrior: 1}[l], g, g}
			continue
		}
		sh, ok := outs[l]
		if !ok {
			return fail(fmt.Errorf("dense: %s has no output %q (its outputs: %s); export it with --outputs all", c.Model, l, strings.Join(names, ", ")))
		}
		if len(sh) != 4 || sh[1] <= 0 {
			return fail(fmt.Errorf("dense: output %q of %s has shape %v, want a stage map [N, C, h, w]", l, c.Model, sh))
		}
		hw := [2]int{int(sh[2]), int(sh[3])}
		if hw[0] <= 0 { // dynamic: the stage's stride from a fixed-size run is unknown; assume h = w
			hw = [2]int{0, 0}
		}
		s.shape[l] = [3]int{int(sh[1]), hw[0], hw[1]}
	}
	b, err := os.ReadFile(c.Model)
	if err != nil {
		return fail(err)
	}
	sum := sha256.Sum256(b)
	s.hash = hex.EncodeToString(sum[:6])
	return s, nil
}

// maps extracts the layers of images idx of a (horizontally flipped when
// flip), from the cache when there.
func (s *denseSource) maps(c *DenseConfig, a *data.Annotated, split string, idx []int, flip bool) (map[string]*dense.Maps, error) {
	out := map[string]*dense.Maps{}
	cacheName := func(l string) string {
		return filepath.Join(c.Cache, fmt.Sprintf("%s-%s-%s-%d-n%d-flip%v%s.npy", s.hash, split, l, s.pre.Size, len(idx), flip, tileKey(c.Tile)))
	}
	var need []string
	for _, l := range c.Layers {
		if c.Cache != "" {
			if x, shape, err := npy.ReadFloat32(cacheName(l)); err == nil && len(shape) == 4 && shape[0] == len(idx) {
				out[l] = &dense.Maps{N: shape[0], C: shape[1], H: shape[2], W: shape[3], Data: x}
				continue
			}
		}
		need = append(need, l)
	}
	if len(need) == 0 {
		return out, nil
	}
	p := s.pre
	load := func(i int, dst []float32) error {
		img, err := a.Decode(idx[i], data.DecodeOptions{Size: p.Size, Channels: p.DecodeChannels()})
		if err != nil {
			return err
		}
		if flip {
			img = data.FromTensor(data.FlipHorizontal(data.ToTensor(img)))
		}
		return p.Fill(img, dst)
	}
	var model []string
	for _, l := range need {
		if l != LayerPixels && l != LayerPrior {
			model = append(model, l)
			continue
		}
		m, err := baselineMaps(l, s.shape[l], p.CHW(), len(idx), load)
		if err != nil {
			return nil, err
		}
		out[l] = m
	}
	if need = model; len(need) == 0 {
		return out, nil
	}
	label := "maps " + split
	if flip {
		label += " flipped"
	}
	bar := progress.New(logTo(c.Log), label, len(idx), 0, "img")
	fs, err := runtime.ExtractOutputs(s.sess, len(idx), p.CHW(), load, need, runtime.ExtractOptions{Batch: c.Batch, Progress: bar.Update})
	bar.Finish()
	if err != nil {
		return nil, err
	}
	for _, l := range need {
		f := fs[l]
		sh := s.shape[l]
		if sh[1] == 0 {
			side := 1
			for side*side*sh[0] < f.Dim {
				side++
			}
			sh[1], sh[2] = side, side
		}
		if sh[0]*sh[1]*sh[2] != f.Dim {
			return nil, fmt.Errorf("dense: output %q gives %d values an image, want %d x %d x %d", l, f.Dim, sh[0], sh[1], sh[2])
		}
		m := &dense.Maps{N: len(idx), C: sh[0], H: sh[1], W: sh[2], Data: f.Data}
		out[l] = m
		if c.Cache != "" {
			if err := os.MkdirAll(c.Cache, 0o755); err != nil {
				return nil, err
			}
			if err := npy.WriteFloat32(cacheName(l), m.Data, m.N, m.C, m.H, m.W); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// openSplits opens the training and test splits of c.Data.
func openSplits(c *DenseConfig) (train, test *data.Annotated, err error) {
	o := data.AnnotatedOptions{SkipBad: c.SkipBad, MaxPixels: c.MaxPixels}
	if train, err = data.OpenAnnotated(c.Data, c.TrainSplit, o); err != nil {
		return nil, nil, err
	}
	if test, err = data.OpenAnnotated(c.Data, c.TestSplit, o); err != nil {
		return nil, nil, err
	}
	if c.Tile > 0 {
		if train, err = train.Tiled(c.Tile, 0.5); err != nil {
			return nil, nil, err
		}
		if test, err = test.Tiled(c.Tile, 0.5); err != nil {
			return nil, nil, err
		}
	}
	if n := len(train.Skipped) + len(test.Skipped); n > 0 {
		fmt.Fprintf(logTo(c.Log), "skipped %d bad files (--skip-bad): %s\n", n, strings.Join(append(train.Skipped, test.Skipped...), "; "))
	}
	return train, test, nil
}

// tileKey marks cached maps of tiled images ("" when not tiled).
func tileKey(tile int) string {
	if tile <= 0 {
		return ""
	}
	return fmt.Sprintf("-tile%d", tile)
}

// The baseline layers of the dense probes: LayerPixels is the model's
// preprocessed input cut into baselineBlock x baselineBlock patches, each
// flattened into C*16 channels at 1/4 of the input's resolution ("raw
// pixels, patches flattened"); LayerPrior is one constant channel on the
// same grid, which standardises to zero, so the head learns only its
// biases: the class prior ("prior-only head"). Any model given with them
// only supplies the preprocessing (input size, mean and std).
const (
	LayerPixels   = "pixels"
	LayerPrior    = "prior"
	baselineBlock = 4
)

// baselineMaps computes a baseline layer of n images; load fills image i's
// preprocessed [C, H, W] input.
func baselineMaps(layer string, sh [3]int, chw [3]int, n int, load func(int, []float32) error) (*dense.Maps, error) {
	m := &dense.Maps{N: n, C: sh[0], H: sh[1], W: sh[2], Data: make([]float32, n*sh[0]*sh[1]*sh[2])}
	if layer == LayerPrior {
		for i := range m.Data {
			m.Data[i] = 1
		}
		return m, nil
	}
	in := make([]float32, chw[0]*chw[1]*chw[2])
	const b = baselineBlock
	for i := 0; i < n; i++ {
		if err := load(i, in); err != nil {
			return nil, err
		}
		SpaceToDepth(m.At(i), in, chw, b, m.H, m.W)
	}
	return m, nil
}

// SpaceToDepth writes the b x b patches of x ([C, H, W]) at the top-left
// gh x gw grid of patches into dst ([C*b*b, gh, gw]): channel
// (c*b+dy)*b+dx of cell (y, x) is x[c, y*b+dy, x*b+dx].
func SpaceToDepth(dst, x []float32, chw [3]int, b, gh, gw int) {
	C, H, W := chw[0], chw[1], chw[2]
	for c := 0; c < C; c++ {
		for dy := 0; dy < b; dy++ {
			for dx := 0; dx < b; dx++ {
				o := dst[((c*b+dy)*b+dx)*gh*gw:]
				for y := 0; y < gh; y++ {
					for xx := 0; xx < gw; xx++ {
						o[y*gw+xx] = x[(c*H+y*b+dy)*W+xx*b+dx]
					}
				}
			}
		}
	}
}
