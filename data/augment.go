package data

import (
	"fmt"
	"math"
	"math/rand"
)

// Augmentations work on [C, H, W] float32 tensors with values in [0, 1],
// never modify their input, and may return the input itself when they
// leave it unchanged. They follow torchvision.transforms (v0.15+) in what
// they draw and in which order, so a recipe ports over; the draws come from
// the *rand.Rand passed in, so the same seed gives the same output. Sizes
// must be positive: otherwise the result is an invalid (empty) tensor,
// which Pipeline.Apply reports.

// resampleTaps gives, for each of out output positions, the first input
// index and the normalised weights of a bilinear (triangle) filter mapping
// in samples onto out with pixel centres aligned (align_corners=false).
// When shrinking, the filter is widened by in/out so every input sample
// contributes (antialiasing), as PIL's and torchvision's antialiased
// bilinear resize do; when growing it is plain bilinear interpolation with
// edge samples repeated.
func resampleTaps(in, out int) (starts []int, weights [][]float32) {
	scale := float64(in) / float64(out)
	fs := math.Max(scale, 1)
	starts = make([]int, out)
	weights = make([][]float32, out)
	for i := 0; i < out; i++ {
		center := (float64(i) + 0.5) * scale
		lo := max(int(math.Floor(center-fs)), 0)
		hi := min(int(math.Ceil(center+fs)), in)
		ws := make([]float64, 0, hi-lo)
		sum := 0.0
		first := -1
		for k := lo; k < hi; k++ {
			d := math.Abs(float64(k)+0.5-center) / fs
			if d >= 1 {
				if first >= 0 {
					break
				}
				continue
			}
			if first < 0 {
				first = k
			}
			ws = append(ws, 1-d)
			sum += 1 - d
		}
		if first < 0 { // cannot happen for in >= 1; keep the nearest sample
			first, ws, sum = min(max(int(center), 0), in-1), []float64{1}, 1
		}
		w32 := make([]float32, len(ws))
		for k, w := range ws {
			w32[k] = float32(w / sum)
		}
		starts[i], weights[i] = first, w32
	}
	return starts, weights
}

// Resize resamples t to h x w with bilinear interpolation, antialiased when
// shrinking (torchvision's Resize with antialias=True, PIL's BILINEAR). A
// resize to the same size returns t.
func Resize(t Tensor, h, w int) Tensor {
	if h <= 0 || w <= 0 || !t.Valid() {
		return Tensor{}
	}
	if h == t.H && w == t.W {
		return t
	}
	xs, xw := resampleTaps(t.W, w)
	ys, yw := resampleTaps(t.H, h)
	tmp := newTensor(t.C, t.H, w) // horizontal pass
	for c := 0; c < t.C; c++ {
		for y := 0; y < t.H; y++ {
			src := t.Data[(c*t.H+y)*t.W : (c*t.H+y+1)*t.W]
			dst := tmp.Data[(c*t.H+y)*w : (c*t.H+y+1)*w]
			for x := range dst {
				var s float32
				for k, wt := range xw[x] {
					s += wt * src[xs[x]+k]
				}
				dst[x] = s
			}
		}
	}
	out := newTensor(t.C, h, w) // vertical pass
	for c := 0; c < t.C; c++ {
		plane := tmp.Data[c*t.H*w : (c+1)*t.H*w]
		for y := 0; y < h; y++ {
			dst := out.Data[(c*h+y)*w : (c*h+y+1)*w]
			for k, wt := range yw[y] {
				row := plane[(ys[y]+k)*w : (ys[y]+k+1)*w]
				for x := range dst {
					dst[x] += wt * row[x]
				}
			}
		}
	}
	return out
}

// ResizeShorter resizes t so its shorter side is size, keeping the aspect
// ratio (the longer side is truncated to an integer, as torchvision's
// Resize(int) does).
func ResizeShorter(t Tensor, size int) Tensor {
	if t.H <= t.W {
		return Resize(t, size, int(float64(size)*float64(t.W)/float64(t.H)))
	}
	return Resize(t, int(float64(size)*float64(t.H)/float64(t.W)), size)
}

// Crop returns the h x w window of t whose top-left corner is at row top,
// column left. Parts of the window outside t are zero (torchvision's
// F.crop pads the same way).
func Crop(t Tensor, top, left, h, w int) Tensor {
	if h <= 0 || w <= 0 || !t.Valid() {
		return Tensor{}
	}
	if top == 0 && left == 0 && h == t.H && w == t.W {
		return t
	}
	out := newTensor(t.C, h, w)
	x0, x1 := max(left, 0), min(left+w, t.W)
	if x0 >= x1 {
		return out
	}
	for c := 0; c < t.C; c++ {
		for y := max(top, 0); y < min(top+h, t.H); y++ {
			copy(out.Data[(c*h+y-top)*w+x0-left:], t.Data[(c*t.H+y)*t.W+x0:(c*t.H+y)*t.W+x1])
		}
	}
	return out
}

// CenterCrop returns the central h x w window of t, zero-padded where it is
// larger than t; the offset is round((H-h)/2) (half to even, as Python).
func CenterCrop(t Tensor, h, w int) Tensor {
	top := int(math.RoundToEven(float64(t.H-h) / 2))
	left := int(math.RoundToEven(float64(t.W-w) / 2))
	return Crop(t, top, left, h, w)
}

// RandomResizedCropBox draws the crop window of RandomResizedCrop for an
// image of h x w: up to 10 tries of an area fraction uniform in [scaleMin,
// scaleMax] and an aspect ratio (width/height) log-uniform in [ratioMin,
// ratioMax], the first that fits; else a central crop with the ratio
// clamped to the range. Returns the window's top, left, height and width.
func RandomResizedCropBox(rng *rand.Rand, h, w int, scaleMin, scaleMax, ratioMin, ratioMax float64) (top, left, ch, cw int) {
	area := float64(h * w)
	logLo, logHi := math.Log(ratioMin), math.Log(ratioMax)
	for range 10 {
		target := area * (scaleMin + (scaleMax-scaleMin)*rng.Float64())
		ratio := math.Exp(logLo + (logHi-logLo)*rng.Float64())
		cw = int(math.RoundToEven(math.Sqrt(target * ratio)))
		ch = int(math.RoundToEven(math.Sqrt(target / ratio)))
		if cw > 0 && cw <= w && ch > 0 && ch <= h {
			top = rng.Intn(h - ch + 1)
			left = rng.Intn(w - cw + 1)
			return top, left, ch, cw
		}
	}
	inRatio := float64(w) / float64(h)
	switch {
	case inRatio < ratioMin:
		cw, ch = w, int(math.RoundToEven(float64(w)/ratioMin))
	case inRatio > ratioMax:
		ch, cw = h, int(math.RoundToEven(float64(h)*ratioMax))
	default:
		cw, ch = w, h
	}
	return (h - ch) / 2, (w - cw) / 2, ch, cw
}

// RandomResizedCrop crops a random window of t (see RandomResizedCropBox)
// and resizes it to outSize x outSize with bilinear interpolation, as
// torchvision's RandomResizedCrop (Szegedy et al. 2015, "Going deeper with
// convolutions"). Usual values: scale [0.08, 1], ratio [3/4, 4/3].
func RandomResizedCrop(t Tensor, rng *rand.Rand, outSize int, scaleMin, scaleMax, ratioMin, ratioMax float64) Tensor {
	top, left, ch, cw := RandomResizedCropBox(rng, t.H, t.W, scaleMin, scaleMax, ratioMin, ratioMax)
	return Resize(Crop(t, top, left, ch, cw), outSize, outSize)
}

// FlipHorizontal mirrors t left to right.
func FlipHorizontal(t Tensor) Tensor {
	out := newTensor(t.C, t.H, t.W)
	for r := 0; r < t.C*t.H; r++ {
		src, dst := t.Data[r*t.W:(r+1)*t.W], out.Data[r*t.W:(r+1)*t.W]
		for x := range dst {
			dst[x] = src[t.W-1-x]
		}
	}
	return out
}

// HFlip mirrors t left to right with probability p (one draw from rng
// whatever p is).
func HFlip(t Tensor, rng *rand.Rand, p float64) Tensor {
	if rng.Float64() < p {
		return FlipHorizontal(t)
	}
	return t
}

// Rotate90 rotates t by k quarter turns counter-clockwise (k may be
// negative or above 3); an odd k swaps height and width. Rotation
// prediction (Gidaris et al. 2018) uses k = 0..3 as the class.
func Rotate90(t Tensor, k int) Tensor {
	k = ((k % 4) + 4) % 4
	if k == 0 {
		return t
	}
	H, W := t.H, t.W
	oh, ow := H, W
	if k%2 == 1 {
		oh, ow = W, H
	}
	out := newTensor(t.C, oh, ow)
	for c := 0; c < t.C; c++ {
		src := t.Data[c*H*W : (c+1)*H*W]
		dst := out.Data[c*oh*ow : (c+1)*oh*ow]
		for i := 0; i < oh; i++ {
			for j := 0; j < ow; j++ {
				var y, x int
				switch k {
				case 1: // out[i][j] = in[j][W-1-i]
					y, x = j, W-1-i
				case 2:
					y, x = H-1-i, W-1-j
				case 3: // out[i][j] = in[H-1-j][i]
					y, x = H-1-j, i
				}
				dst[i*ow+j] = src[y*W+x]
			}
		}
	}
	return out
}

// ToGray returns the ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B of a
// 3-channel t as a 1-channel tensor; a 1-channel t is returned as is.
func ToGray(t Tensor) Tensor {
	if t.C != 3 {
		return t
	}
	n := t.H * t.W
	out := newTensor(1, t.H, t.W)
	r, g, b := t.Data[:n], t.Data[n:2*n], t.Data[2*n:3*n]
	for i := range out.Data {
		out.Data[i] = lumaR*r[i] + lumaG*g[i] + lumaB*b[i]
	}
	return out
}

// RandomGrayscale replaces, with probability p, every channel of a
// 3-channel t by its ITU-R BT.601 luma (the channel count is kept, as
// torchvision's RandomGrayscale does). One draw from rng whatever t is.
func RandomGrayscale(t Tensor, rng *rand.Rand, p float64) Tensor {
	if rng.Float64() >= p || t.C != 3 {
		return t
	}
	g := ToGray(t)
	out := newTensor(3, t.H, t.W)
	for c := 0; c < 3; c++ {
		copy(out.Data[c*len(g.Data):], g.Data)
	}
	return out
}

// Normalize returns (t - mean[c]) / std[c] channel by channel. mean and
// std hold one value per channel, or one value for all channels; std must
// not be zero.
func Normalize(t Tensor, mean, std []float32) (Tensor, error) {
	if !t.Valid() {
		return Tensor{}, fmt.Errorf("data: normalize: invalid tensor %s", t.shape())
	}
	if (len(mean) != t.C && len(mean) != 1) || len(std) != len(mean) {
		return Tensor{}, fmt.Errorf("data: normalize: %d-channel tensor with %d means and %d stds (want %d or 1 of each)", t.C, len(mean), len(std), t.C)
	}
	out := newTensor(t.C, t.H, t.W)
	n := t.H * t.W
	for c := 0; c < t.C; c++ {
		m, s := mean[0], std[0]
		if len(mean) > 1 {
			m, s = mean[c], std[c]
		}
		if s == 0 {
			return Tensor{}, fmt.Errorf("data: normalize: std of channel %d is zero", c)
		}
		inv := 1 / s
		for i := c * n; i < (c+1)*n; i++ {
			out.Data[i] = (t.Data[i] - m) * inv
		}
	}
	return out, nil
}

// Step is one stage of a Pipeline.
type Step func(Tensor, *rand.Rand) Tensor

// Pipeline applies its steps in order, all drawing from the same rng.
type Pipeline []Step

// Apply runs the steps on t and reports the first step that returns an
// invalid tensor (empty, or a shape that disagrees with its data).
func (p Pipeline) Apply(t Tensor, rng *rand.Rand) (Tensor, error) {
	if !t.Valid() {
		return Tensor{}, fmt.Errorf("data: pipeline: invalid input tensor %s", t.shape())
	}
	for i, s := range p {
		in := t
		t = s(t, rng)
		if !t.Valid() {
			return Tensor{}, fmt.Errorf("data: pipeline: step %d of %d turned a %s tensor into an invalid %s one", i+1, len(p), in.shape(), t.shape())
		}
	}
	return t, nil
}

// ApplyImage converts img with ToTensor and runs the pipeline on it.
func (p Pipeline) ApplyImage(img Image, rng *rand.Rand) (Tensor, error) {
	return p.Apply(ToTensor(img), rng)
}

// RandomApply returns a step that runs s with probability p (one draw from
// rng first, whatever p is), as torchvision's RandomApply.
func RandomApply(s Step, p float64) Step {
	return func(t Tensor, rng *rand.Rand) Tensor {
		if rng.Float64() < p {
			return s(t, rng)
		}
		return t
	}
}

// RandomResizedCropStep is RandomResizedCrop as a Step.
func RandomResizedCropStep(outSize int, scaleMin, scaleMax, ratioMin, ratioMax float64) Step {
	return func(t Tensor, rng *rand.Rand) Tensor {
		return RandomResizedCrop(t, rng, outSize, scaleMin, scaleMax, ratioMin, ratioMax)
	}
}

// HFlipStep is HFlip as a Step.
func HFlipStep(p float64) Step {
	return func(t Tensor, rng *rand.Rand) Tensor { return HFlip(t, rng, p) }
}

// ColorJitterStep is ColorJitter as a Step.
func ColorJitterStep(brightness, contrast, saturation, hue float32) Step {
	return func(t Tensor, rng *rand.Rand) Tensor {
		return ColorJitter(t, rng, brightness, contrast, saturation, hue)
	}
}

// RandomGrayscaleStep is RandomGrayscale as a Step.
func RandomGrayscaleStep(p float64) Step {
	return func(t Tensor, rng *rand.Rand) Tensor { return RandomGrayscale(t, rng, p) }
}

// NormalizeStep is Normalize as a Step. A tensor whose channel count the
// mean and std do not fit, or a zero std, gives an invalid tensor, which
// Pipeline.Apply reports.
func NormalizeStep(mean, std []float32) Step {
	mean, std = append([]float32(nil), mean...), append([]float32(nil), std...)
	return func(t Tensor, _ *rand.Rand) Tensor {
		out, err := Normalize(t, mean, std)
		if err != nil {
			return Tensor{}
		}
		return out
	}
}
