package runtime

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/selfsup/selfsup/data"
)

// Metadata keys a selfsup model carries (written by the exporter; see
// export.KeyMean and friends). They are repeated here because runtime must
// not import the training stack.
const (
	metaInputSize = "selfsup.input_size"
	metaMean      = "selfsup.mean"
	metaStd       = "selfsup.std"
)

// Preprocess is what turns a stored image into a model input: channel
// conversion, a resize of the whole image to Size x Size (bilinear,
// antialiased when shrinking; see data.Resize), scaling to [0, 1] and
// per-channel normalisation (x - Mean)/Std, giving a [Channels, Size, Size]
// float32 tensor.
type Preprocess struct {
	Channels, Size int
	Mean, Std      []float32
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

// Dataset wraps ds so that its images come out converted and resized for
// the model.
func (p Preprocess) Dataset(ds data.Dataset) data.Dataset {
	return data.Convert(ds, p.Channels, p.Size)
}

// Fill writes image img (already converted by Dataset) into dst as a
// normalised [C, Size, Size] tensor: dst = (pixel/255 - Mean[c]) / Std[c],
// computed as data.Normalize(data.ToTensor(img)) does, bit for bit, without
// the intermediate tensors.
func (p Preprocess) Fill(img data.Image, dst []float32) error {
	if img.C != p.Channels || img.H != p.Size || img.W != p.Size {
		return fmt.Errorf("runtime: image is %dx%dx%d, model expects %dx%dx%d", img.C, img.H, img.W, p.Channels, p.Size, p.Size)
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
