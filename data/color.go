package data

import (
	"math"
	"math/rand"
)

func clamp01(v float32) float32 {
	if v < 0 {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}

// jitterFactor draws a factor uniform in [max(0, 1-s), 1+s].
func jitterFactor(rng *rand.Rand, s float32) float32 {
	lo, hi := max(0, 1-float64(s)), 1+float64(s)
	return float32(lo + (hi-lo)*rng.Float64())
}

// ColorJitter randomly changes the brightness, contrast, saturation and
// hue of t, in a random order, as torchvision's ColorJitter: factors are
// drawn uniform in [max(0, 1-x), 1+x] for brightness, contrast and
// saturation and in [-hue, hue] (hue <= 0.5) for the hue shift, a zero
// strength disabling its change (and its draw). The draws are a permutation
// of the four changes, then the factors in the order brightness, contrast,
// saturation, hue. Brightness scales the values; contrast blends with the
// mean luma of the image; saturation blends with each pixel's luma; hue
// rotates the hue in HSV space. Results are clamped to [0, 1]. A 1-channel
// t ignores saturation and hue (their draws still happen).
func ColorJitter(t Tensor, rng *rand.Rand, brightness, contrast, saturation, hue float32) Tensor {
	order := rng.Perm(4)
	var fb, fc, fs, fh float32
	if brightness > 0 {
		fb = jitterFactor(rng, brightness)
	}
	if contrast > 0 {
		fc = jitterFactor(rng, contrast)
	}
	if saturation > 0 {
		fs = jitterFactor(rng, saturation)
	}
	if hue > 0 {
		h := math.Min(float64(hue), 0.5)
		fh = float32(-h + 2*h*rng.Float64())
	}
	for _, op := range order {
		switch {
		case op == 0 && brightness > 0:
			t = AdjustBrightness(t, fb)
		case op == 1 && contrast > 0:
			t = AdjustContrast(t, fc)
		case op == 2 && saturation > 0:
			t = AdjustSaturation(t, fs)
		case op == 3 && hue > 0:
			t = AdjustHue(t, fh)
		}
	}
	return t
}

// AdjustBrightness returns clamp(f * t, 0, 1).
func AdjustBrightness(t Tensor, f float32) Tensor {
	out := newTensor(t.C, t.H, t.W)
	for i, v := range t.Data {
		out.Data[i] = clamp01(f * v)
	}
	return out
}

// AdjustContrast blends t with the mean of its luma (of its only channel
// when C=1): clamp(f*t + (1-f)*mean, 0, 1).
func AdjustContrast(t Tensor, f float32) Tensor {
	g := ToGray(t)
	var sum float64
	for _, v := range g.Data {
		sum += float64(v)
	}
	mean := float32(sum / float64(len(g.Data)))
	out := newTensor(t.C, t.H, t.W)
	for i, v := range t.Data {
		out.Data[i] = clamp01(f*v + (1-f)*mean)
	}
	return out
}

// AdjustSaturation blends a 3-channel t with its per-pixel luma:
// clamp(f*t + (1-f)*luma, 0, 1); f=0 gives gray, f=1 the input. Other
// channel counts are returned as they are.
func AdjustSaturation(t Tensor, f float32) Tensor {
	if t.C != 3 {
		return t
	}
	g := ToGray(t)
	n := len(g.Data)
	out := newTensor(3, t.H, t.W)
	for c := 0; c < 3; c++ {
		for i := 0; i < n; i++ {
			out.Data[c*n+i] = clamp01(f*t.Data[c*n+i] + (1-f)*g.Data[i])
		}
	}
	return out
}

// AdjustHue shifts the hue of a 3-channel t by shift (in turns, [-0.5,
// 0.5]) in HSV space, keeping saturation and value. Other channel counts
// are returned as they are.
func AdjustHue(t Tensor, shift float32) Tensor {
	if t.C != 3 {
		return t
	}
	n := t.H * t.W
	out := newTensor(3, t.H, t.W)
	for i := 0; i < n; i++ {
		h, s, v := rgbToHSV(t.Data[i], t.Data[n+i], t.Data[2*n+i])
		h += shift
		h -= float32(math.Floor(float64(h)))
		out.Data[i], out.Data[n+i], out.Data[2*n+i] = hsvToRGB(h, s, v)
	}
	return out
}

// rgbToHSV converts an RGB triple in [0, 1] to hue (turns, [0, 1)),
// saturation and value, as torchvision's _rgb2hsv.
func rgbToHSV(r, g, b float32) (h, s, v float32) {
	maxc := max(r, g, b)
	minc := min(r, g, b)
	v = maxc
	cr := maxc - minc
	if cr == 0 {
		return 0, 0, v
	}
	s = cr / maxc
	rc, gc, bc := (maxc-r)/cr, (maxc-g)/cr, (maxc-b)/cr
	switch {
	case maxc == r:
		h = bc - gc
	case maxc == g:
		h = 2 + rc - bc
	default:
		h = 4 + gc - rc
	}
	h = h/6 + 1
	h -= float32(math.Floor(float64(h)))
	return h, s, v
}

// hsvToRGB inverts rgbToHSV.
func hsvToRGB(h, s, v float32) (r, g, b float32) {
	h6 := h * 6
	i := float32(math.Floor(float64(h6)))
	f := h6 - i
	p := clamp01(v * (1 - s))
	q := clamp01(v * (1 - s*f))
	t := clamp01(v * (1 - s*(1-f)))
	switch int(i) % 6 {
	case 0:
		return v, t, p
	case 1:
		return q, v, p
	case 2:
		return p, v, t
	case 3:
		return p, q, v
	case 4:
		return t, p, v
	default:
		return v, p, q
	}
}
