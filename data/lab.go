package data

import (
	"fmt"
	"math"
)

// CIE L*a*b* conversion of sRGB colours (IEC 61966-2-1) under the D65
// white point (2° observer), with the constants of scikit-image's
// skimage.color.rgb2lab / lab2rgb, so that values agree with the Python
// tools colorization papers use: white is (100, 0, 0), pure red about
// (53.24, 80.09, 67.20).

// SpaceLabL is the input space of a backbone that sees only the CIE
// lightness of an RGB image (colorization, Zhang, Isola & Efros 2016): one
// channel, L*/100 (in [0, 1]), normalised like any channel afterwards. A
// model exported with it records it in its metadata, and extraction
// converts RGB images to it (see ToSpace).
const SpaceLabL = "lab-l"

// SpaceLab is the input space of a backbone that sees the whole CIE Lab
// image (the split-brain autoencoder, Zhang, Isola & Efros 2017): three
// channels, L*/100, a*/100 and b*/100 (LabScale; L in [0, 1], a and b
// roughly in [-1.1, 1.3]), normalised per channel afterwards with the
// training images' statistics (LabStats). Like SpaceLabL it is recorded in
// an exported model's metadata, and extraction converts RGB images to it.
const SpaceLab = "lab"

// LabScale divides L*, a* and b* in SpaceLab.
const LabScale = 100

// rgb2xyz is skimage's sRGB -> XYZ matrix; labWhite the D65 white point.
var (
	rgb2xyz = [3][3]float64{
		{0.412453, 0.357580, 0.180423},
		{0.212671, 0.715160, 0.072169},
		{0.019334, 0.119193, 0.950227},
	}
	xyz2rgb  = invert3(rgb2xyz)
	labWhite = [3]float64{0.95047, 1, 1.08883}
)

func invert3(m [3][3]float64) [3][3]float64 {
	a, b, c := m[0][0], m[0][1], m[0][2]
	d, e, f := m[1][0], m[1][1], m[1][2]
	g, h, i := m[2][0], m[2][1], m[2][2]
	det := a*(e*i-f*h) - b*(d*i-f*g) + c*(d*h-e*g)
	return [3][3]float64{
		{(e*i - f*h) / det, (c*h - b*i) / det, (b*f - c*e) / det},
		{(f*g - d*i) / det, (a*i - c*g) / det, (c*d - a*f) / det},
		{(d*h - e*g) / det, (b*g - a*h) / det, (a*e - b*d) / det},
	}
}

// srgbToLinear removes the sRGB transfer curve of a value in [0, 1].
func srgbToLinear(c float64) float64 {
	if c > 0.04045 {
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return c / 12.92
}

// linearToSRGB applies the sRGB transfer curve.
func linearToSRGB(c float64) float64 {
	if c > 0.0031308 {
		return 1.055*math.Pow(c, 1/2.4) - 0.055
	}
	return 12.92 * c
}

func labF(t float64) float64 {
	if t > 0.008856 {
		return math.Cbrt(t)
	}
	return 7.787*t + 16.0/116
}

func labFInv(t float64) float64 {
	if t > 0.2068966 {
		return t * t * t
	}
	return (t - 16.0/116) / 7.787
}

// labFromLinear is L*, a*, b* of linear RGB.
func labFromLinear(r, g, b float64) (l, a, bb float64) {
	var f [3]float64
	for k, row := range rgb2xyz {
		f[k] = labF((row[0]*r + row[1]*g + row[2]*b) / labWhite[k])
	}
	return 116*f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])
}

// lightnessFromLinear is L*/100 of linear RGB as float32: the one
// computation behind ToLabL, LabLStats and the runtime's lab-l input.
func lightnessFromLinear(r, g, b float64) float32 {
	row := rgb2xyz[1]
	return float32((116*labF(row[0]*r+row[1]*g+row[2]*b) - 16) / 100)
}

// LinearRGBToLab is RGBToLab of a colour whose components are already
// linear (LinearLUT's values for 8-bit colours).
func LinearRGBToLab(r, g, b float64) (l, a, bb float64) { return labFromLinear(r, g, b) }

// RGBToLab converts an sRGB colour with components in [0, 1] to CIE
// L*a*b* (D65): L in [0, 100], a and b roughly in [-128, 128].
func RGBToLab(r, g, b float64) (l, a, bb float64) {
	return labFromLinear(srgbToLinear(r), srgbToLinear(g), srgbToLinear(b))
}

// LabToRGB converts CIE L*a*b* (D65) to sRGB components in [0, 1],
// clipping colours outside the sRGB gamut (as skimage.color.lab2rgb).
func LabToRGB(l, a, b float64) (r, g, bl float64) {
	fy := (l + 16) / 116
	f := [3]float64{a/500 + fy, fy, math.Max(0, fy-b/200)}
	var xyz, rgb [3]float64
	for k := range f {
		xyz[k] = labFInv(f[k]) * labWhite[k]
	}
	for k, row := range xyz2rgb {
		v := linearToSRGB(math.Max(0, row[0]*xyz[0]+row[1]*xyz[1]+row[2]*xyz[2]))
		rgb[k] = math.Min(1, math.Max(0, v))
	}
	return rgb[0], rgb[1], rgb[2]
}

// LinearLUT is the linear value of every 8-bit sRGB level v (of
// float32(v)/255, exactly as ToTensor scales it): what LightnessLUT reads.
func LinearLUT() *[256]float64 {
	var lut [256]float64
	for v := range lut {
		lut[v] = srgbToLinear(float64(float32(v) / 255))
	}
	return &lut
}

// LightnessLUT is L*/100 of an 8-bit sRGB pixel through a LinearLUT:
// bit for bit ToLabL(ToTensor(img)) at that pixel.
func LightnessLUT(lut *[256]float64, r, g, b uint8) float32 {
	return lightnessFromLinear(lut[r], lut[g], lut[b])
}

// LabLUT is L*, a* and b* divided by LabScale (SpaceLab) of an 8-bit
// sRGB pixel through a LinearLUT: bit for bit ToLabSpace(ToTensor(img))
// at that pixel.
func LabLUT(lut *[256]float64, r, g, b uint8) (l, a, bb float32) {
	return labSpace(lut[r], lut[g], lut[b])
}

// labSpace is SpaceLab's three values of linear RGB.
func labSpace(r, g, b float64) (l, a, bb float32) {
	lf, af, bf := labFromLinear(r, g, b)
	return float32(lf / LabScale), float32(af / LabScale), float32(bf / LabScale)
}

// ToLabSpace returns the SpaceLab planes (L*, a*, b* over LabScale) of a
// 3-channel sRGB tensor with values in [0, 1], as [3, H, W]; a 1-channel
// tensor is read as grey (a and b within 0.01 of 0 in CIE units:
// skimage's white point and matrix do not quite agree).
func ToLabSpace(t Tensor) Tensor {
	n := t.H * t.W
	out := newTensor(3, t.H, t.W)
	for i := 0; i < n; i++ {
		r := t.Data[i]
		g, b := r, r
		if t.C == 3 {
			g, b = t.Data[n+i], t.Data[2*n+i]
		}
		out.Data[i], out.Data[n+i], out.Data[2*n+i] = labSpace(srgbToLinear(float64(r)), srgbToLinear(float64(g)), srgbToLinear(float64(b)))
	}
	return out
}

// ToLabL returns L*/100 of a 3-channel sRGB tensor (values in [0, 1]) as
// a 1-channel tensor; a 1-channel tensor is read as grey (R = G = B).
func ToLabL(t Tensor) Tensor {
	n := t.H * t.W
	out := newTensor(1, t.H, t.W)
	for i := range out.Data {
		r := t.Data[i]
		g, b := r, r
		if t.C == 3 {
			g, b = t.Data[n+i], t.Data[2*n+i]
		}
		out.Data[i] = lightnessFromLinear(srgbToLinear(float64(r)), srgbToLinear(float64(g)), srgbToLinear(float64(b)))
	}
	return out
}

// ToLab returns the L*, a* and b* planes of a 3-channel sRGB tensor
// (values in [0, 1]) in CIE units ([3, H, W]); a 1-channel tensor is read
// as grey. Its first plane is 100 * ToLabL(t) up to float32 rounding.
func ToLab(t Tensor) Tensor {
	n := t.H * t.W
	out := newTensor(3, t.H, t.W)
	for i := 0; i < n; i++ {
		r := t.Data[i]
		g, b := r, r
		if t.C == 3 {
			g, b = t.Data[n+i], t.Data[2*n+i]
		}
		l, a, bb := RGBToLab(float64(r), float64(g), float64(b))
		out.Data[i], out.Data[n+i], out.Data[2*n+i] = float32(l), float32(a), float32(bb)
	}
	return out
}

// SpaceChannels returns the channels a backbone with input space space
// sees of images with c channels ("" : the images' own), and the channels
// the images must be decoded with (SpaceLabL: 1 and 3, L* is computed from
// RGB; SpaceLab: 3 and 3).
func SpaceChannels(space string, c int) (input, decode int, err error) {
	switch space {
	case "":
		return c, c, nil
	case SpaceLabL:
		return 1, 3, nil
	case SpaceLab:
		return 3, 3, nil
	}
	return 0, 0, fmt.Errorf("data: unknown input space %q (known: %q, %q, %q)", space, "", SpaceLabL, SpaceLab)
}

// ToSpace converts a [C, H, W] tensor with values in [0, 1] to the input
// space space ("": unchanged; SpaceLabL: ToLabL; SpaceLab: ToLabSpace).
func ToSpace(t Tensor, space string) (Tensor, error) {
	switch space {
	case "":
		return t, nil
	case SpaceLabL:
		return ToLabL(t), nil
	case SpaceLab:
		return ToLabSpace(t), nil
	}
	_, _, err := SpaceChannels(space, t.C)
	return Tensor{}, err
}

// SpaceStats is the per-channel mean and standard deviation (at least
// 1e-3) of up to n images spread evenly over ds as a backbone with input
// space space sees them: ChannelStats, LabLStats or LabStats.
func SpaceStats(ds Dataset, space string, n int) (mean, std []float32, err error) {
	switch space {
	case "":
		return ChannelStats(ds, n)
	case SpaceLabL:
		return LabLStats(ds, n)
	case SpaceLab:
		return LabStats(ds, n)
	}
	_, _, err = SpaceChannels(space, 3)
	return nil, nil, err
}

// LabStats is ChannelStats in SpaceLab: the mean and standard deviation
// (at least 1e-3) of L*, a* and b* over LabScale of up to n images spread
// evenly over ds.
func LabStats(ds Dataset, n int) (mean, std []float32, err error) {
	if ds.Len() == 0 {
		return nil, nil, fmt.Errorf("data: Lab statistics: no images")
	}
	lut := LinearLUT()
	step := max(1, ds.Len()/n)
	var sum, sq [3]float64
	var count float64
	for i := 0; i < ds.Len(); i += step {
		img, err := ds.Image(i)
		if err != nil {
			return nil, nil, err
		}
		hw := img.H * img.W
		for p := 0; p < hw; p++ {
			r := img.Pix[p]
			g, b := r, r
			if img.C == 3 {
				g, b = img.Pix[hw+p], img.Pix[2*hw+p]
			}
			l, a, bb := LabLUT(lut, r, g, b)
			for c, v := range [3]float32{l, a, bb} {
				sum[c] += float64(v)
				sq[c] += float64(v) * float64(v)
			}
		}
		count += float64(hw)
	}
	mean, std = make([]float32, 3), make([]float32, 3)
	for c := range sum {
		m := sum[c] / count
		mean[c], std[c] = float32(m), float32(math.Max(math.Sqrt(math.Max(sq[c]/count-m*m, 0)), 1e-3))
	}
	return mean, std, nil
}

// LabLStats is ChannelStats of L*/100 (SpaceLabL): the mean and standard
// deviation (at least 1e-3) of the lightness of up to n images spread
// evenly over ds.
func LabLStats(ds Dataset, n int) (mean, std []float32, err error) {
	if ds.Len() == 0 {
		return nil, nil, fmt.Errorf("data: lightness statistics: no images")
	}
	lut := LinearLUT()
	step := max(1, ds.Len()/n)
	var sum, sq, count float64
	for i := 0; i < ds.Len(); i += step {
		img, err := ds.Image(i)
		if err != nil {
			return nil, nil, err
		}
		hw := img.H * img.W
		for p := 0; p < hw; p++ {
			r := img.Pix[p]
			g, b := r, r
			if img.C == 3 {
				g, b = img.Pix[hw+p], img.Pix[2*hw+p]
			}
			v := float64(LightnessLUT(lut, r, g, b))
			sum += v
			sq += v * v
		}
		count += float64(hw)
	}
	m := sum / count
	return []float32{float32(m)}, []float32{float32(math.Max(math.Sqrt(sq/count-m*m), 1e-3))}, nil
}
