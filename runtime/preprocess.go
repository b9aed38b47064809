package runtime

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/selfsup/selfsup/data"
)

// Metadata keys a selfsup model carries (written by the exporter; see
// export.KeyMean and friends). They are repeated here because runtime must
// not import the training stack.
const (
	metaInputSize = "selfsup.input_size"
	metaMean      = "selfsup.mean"
	metaStd       = "selfsup.std"
	metaSpace     = "selfsup.input_space"
)

// Preprocess is what turns a stored image into a model input: channel
// conversion, a resize of the whole image to Size x Size (bilinear,
// antialiased when shrinking; see data.Resize), scaling to [0, 1] and
// per-channel normalisation (x - Mean)/Std, giving a [Channels, Size, Size]
// float32 tensor. Space is the model's input space (metadata
// selfsup.input_space): "" feeds the image's channels; data.SpaceLabL (a
// colorization backbone, Channels 1) decodes images as RGB and feeds their
// CIE lightness L*/100 (data.ToLabL); data.SpaceLab (a split-brain
// backbone, Channels 3) feeds their L*, a*, b* over 100 (data.ToLabSpace).
type Preprocess struct {
	Channels, Size int
	Mean, Std      []float32
	Space          string
}

// DecodeChannels is the number of channels images are decoded with: 3
// for data.SpaceLabL and data.SpaceLab, else Channels.
func (p Preprocess) DecodeChannels() int {
	if _, c, err := data.SpaceChannels(p.Space, p.Channels); err == nil {
		return c
	}
	return p.Channels
}

// ImageNetMean and ImageNetStd return (fresh copies of) torchvision's
// ImageNet channel statistics, the preprocessing of models without
// selfsup metadata.
func ImageNetMean() []float32 { return []float32{0.485, 0.456, 0.406} }

// ImageNetStd: see ImageNetMean.
func ImageNetStd() []float32 { return []float32{0.229, 0.224, 0.225} }

// DefaultSize is the input size of a model that fixes neither its height
// and width nor records one in its metadata.
const DefaultSize = 224

// Preprocess reads the session's preprocessing from its input shape and
// metadata (selfsup.input_size, selfsup.mean, selfsup.std). A model without
// selfsup metadata (a foreign model, for example a torchvision export)
// gets ImageNetMean and ImageNetStd (0.5 and 0.25 for one channel) and the
// input's static size, or DefaultSize (224) when height and width are
// dynamic.
func (s *Session) Preprocess() (Preprocess, error) {
	in := s.Inputs()
	if len(in) != 1 || len(in[0].Shape) != 4 {
		return Preprocess{}, fmt.Errorf("runtime: %s: expected one [N, C, H, W] input, got %v", s.Path(), in)
	}
	shape := in[0].Shape
	p := Preprocess{Channels: int(shape[1])}
	if p.Channels != 1 && p.Channels != 3 {
		return Preprocess{}, fmt.Errorf("runtime: %s: input %q has shape %v: %d channels, expected 1 or 3", s.Path(), in[0].Name, shape, p.Channels)
	}
	switch h, w := shape[2], shape[3]; {
	case h > 0 && w > 0 && h != w:
		return Preprocess{}, fmt.Errorf("runtime: %s: input %q has shape %v: height %d and width %d differ, only square inputs are supported", s.Path(), in[0].Name, shape, h, w)
	case h > 0:
		p.Size = int(h)
	case w > 0:
		p.Size = int(w)
	}
	meta, err := s.Metadata()
	if err != nil {
		return Preprocess{}, err
	}
	if v, ok := meta[metaInputSize]; ok {
		size, err := strconv.Atoi(v)
		if err != nil || size < 1 {
			return Preprocess{}, fmt.Errorf("runtime: %s: metadata %s=%q is not a positive integer", s.Path(), metaInputSize, v)
		}
		if p.Size > 0 && size != p.Size {
			return Preprocess{}, fmt.Errorf("runtime: %s: metadata %s=%d but input %q has shape %v", s.Path(), metaInputSize, size, in[0].Name, shape)
		}
		p.Size = size
	}
	if p.Size < 1 {
		p.Size = DefaultSize
	}
	if v, ok := meta[metaSpace]; ok {
		want, _, err := data.SpaceChannels(v, p.Channels)
		if err != nil || want != p.Channels {
			return Preprocess{}, fmt.Errorf("runtime: %s: metadata %s=%q does not fit input %q of shape %v (expected %q, %q with 1 channel or %q with 3)",
				s.Path(), metaSpace, v, in[0].Name, shape, "", data.SpaceLabL, data.SpaceLab)
		}
		p.Space = v
	}
	p.Mean, p.Std = ImageNetMean(), ImageNetStd()
	if p.Channels == 1 {
		p.Mean, p.Std = []float32{0.5}, []float32{0.25}
	}
	for _, key := range []string{metaMean, metaStd} {
		v, ok := meta[key]
		if !ok {
			continue
		}
		f, err := parseFloats(v)
		if err != nil || len(f) != p.Channels {
			return Preprocess{}, fmt.Errorf("runtime: %s: metadata %s=%q: expected %d comma-separated numbers", s.Path(), key, v, p.Channels)
		}
		if key == metaMean {
			p.Mean = f
		} else {
			p.Std = f
		}
	}
	for c, v := range p.Std {
		if v == 0 {
			return Preprocess{}, fmt.Errorf("runtime: %s: std of channel %d is zero", s.Path(), c)
		}
	}
	return p, nil
}

func parseFloats(s string) ([]float32, error) {
	var out []float32
	for _, part := range strings.Split(s, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(part), 32)
		if err != nil {
			return nil, err
		}
		out = append(out, float32(f))
	}
	return out, nil
}

// CHW is the shape of one model input, [Channels, Size, Size].
func (p Preprocess) CHW() [3]int { return [3]int{p.Channels, p.Size, p.Size} }

// Dataset wraps ds so that its images come out converted (to
// DecodeChannels channels) and resized for the model.
func (p Preprocess) Dataset(ds data.Dataset) data.Dataset {
	return data.Convert(ds, p.DecodeChannels(), p.Size)
}

// Fill writes image img (already converted by Dataset) into dst as a
// normalised [C, Size, Size] tensor: dst = (pixel/255 - Mean[c]) / Std[c],
// computed as data.Normalize(data.ToTensor(img)) does, bit for bit, without
// the intermediate tensors. In data.SpaceLabL img is RGB and dst gets
// (L*/100 - Mean[0]) / Std[0], bit for bit as
// data.Normalize(data.ToLabL(data.ToTensor(img))); in data.SpaceLab dst
// gets the normalised L*, a*, b* over 100, bit for bit as
// data.Normalize(data.ToLabSpace(data.ToTensor(img))).
func (p Preprocess) Fill(img data.Image, dst []float32) error {
	if img.C != p.DecodeChannels() || img.H != p.Size || img.W != p.Size {
		return fmt.Errorf("runtime: image is %dx%dx%d, model expects %dx%dx%d", img.C, img.H, img.W, p.DecodeChannels(), p.Size, p.Size)
	}
	switch p.Space {
	case data.SpaceLabL:
		return p.fillLabL(img, dst)
	case data.SpaceLab:
		return p.fillLab(img, dst)
	}
	if len(p.Mean) != p.Channels || len(p.Std) != p.Channels {
		return fmt.Errorf("runtime: preprocess has %d means and %d stds for %d channels", len(p.Mean), len(p.Std), p.Channels)
	}
	plane := p.Size * p.Size
	if len(dst) != p.Channels*plane || len(img.Pix) != len(dst) {
		return fmt.Errorf("runtime: fill: destination holds %d values, image %d, expected %d", len(dst), len(img.Pix), p.Channels*plane)
	}
	var lut [256]float32
	for c := 0; c < p.Channels; c++ {
		m, inv := p.Mean[c], 1/p.Std[c]
		for v := range lut {
			lut[v] = (float32(v)/255 - m) * inv
		}
		src, out := img.Pix[c*plane:(c+1)*plane], dst[c*plane:(c+1)*plane]
		for i, v := range src {
			out[i] = lut[v]
		}
	}
	return nil
}

// fillLabL is Fill in data.SpaceLabL.
func (p Preprocess) fillLabL(img data.Image, dst []float32) error {
	plane := p.Size * p.Size
	if len(p.Mean) != 1 || len(p.Std) != 1 || len(dst) != plane || len(img.Pix) != 3*plane {
		return fmt.Errorf("runtime: fill %s: %d means, %d stds, destination of %d values, image of %d, expected 1, 1, %d, %d",
			data.SpaceLabL, len(p.Mean), len(p.Std), len(dst), len(img.Pix), plane, 3*plane)
	}
	lut := labLUT()
	m, inv := p.Mean[0], 1/p.Std[0]
	for i := range dst {
		dst[i] = (data.LightnessLUT(lut, img.Pix[i], img.Pix[plane+i], img.Pix[2*plane+i]) - m) * inv
	}
	return nil
}

// fillLab is Fill in data.SpaceLab.
func (p Preprocess) fillLab(img data.Image, dst []float32) error {
	plane := p.Size * p.Size
	if len(p.Mean) != 3 || len(p.Std) != 3 || len(dst) != 3*plane || len(img.Pix) != 3*plane {
		return fmt.Errorf("runtime: fill %s: %d means, %d stds, destination of %d values, image of %d, expected 3, 3, %d, %d",
			data.SpaceLab, len(p.Mean), len(p.Std), len(dst), len(img.Pix), 3*plane, 3*plane)
	}
	lut := labLUT()
	var inv [3]float32
	for c := range inv {
		inv[c] = 1 / p.Std[c]
	}
	for i := 0; i < plane; i++ {
		l, a, b := data.LabLUT(lut, img.Pix[i], img.Pix[plane+i], img.Pix[2*plane+i])
		dst[i] = (l - p.Mean[0]) * inv[0]
		dst[plane+i] = (a - p.Mean[1]) * inv[1]
		dst[2*plane+i] = (b - p.Mean[2]) * inv[2]
	}
	return nil
}

var labLUT = sync.OnceValue(data.LinearLUT)

// Loader returns a load function for Extract that decodes item offset+i of
// ds, converts and resizes it (see Dataset) and fills dst with it (see
// Fill). Errors name the item's source. Safe for concurrent use when ds is.
func (p Preprocess) Loader(ds data.Dataset, offset int) func(i int, dst []float32) error {
	conv := p.Dataset(ds)
	return func(i int, dst []float32) error {
		img, err := conv.Image(offset + i)
		if err != nil {
			return fmt.Errorf("%s: %w", ds.Source(offset+i), err)
		}
		return p.Fill(img, dst)
	}
}

// ExtractDataset runs the model over every image of ds, preprocessed as
// sess.Preprocess says, and returns the features [ds.Len(), dim] of the
// output opts.Output (see ExtractOptions).
func ExtractDataset(sess *Session, ds data.Dataset, opts ExtractOptions) ([]float32, int, error) {
	p, err := sess.Preprocess()
	if err != nil {
		return nil, 0, err
	}
	return Extract(sess, ds.Len(), p.CHW(), p.Loader(ds, 0), opts)
}
