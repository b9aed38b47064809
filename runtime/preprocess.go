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
// conversion, a resize of the whole image to Size x Size, scaling to
// [0, 1] and per-channel normalisation (x - Mean)/Std.
type Preprocess struct {
	Channels, Size int
	Mean, Std      []float32
}

// Preprocess reads the session's preprocessing from its input shape and
// metadata. A model without selfsup metadata (a foreign model) gets
// ImageNet's mean and std and the input's static size, or 224.
func (s *Session) Preprocess() (Preprocess, error) {
	in := s.Inputs()
	if len(in) != 1 || len(in[0].Shape) != 4 {
		return Preprocess{}, fmt.Errorf("runtime: %s: expected one [N, C, H, W] input, got %v", s.Path(), in)
	}
	p := Preprocess{Channels: int(in[0].Shape[1]), Size: int(in[0].Shape[2])}
	if p.Channels != 1 && p.Channels != 3 {
		return Preprocess{}, fmt.Errorf("runtime: %s: input has %d channels, expected 1 or 3", s.Path(), p.Channels)
	}
	meta, err := s.Metadata()
	if err != nil {
		return Preprocess{}, err
	}
	if v, ok := meta[metaInputSize]; ok {
		if p.Size, err = strconv.Atoi(v); err != nil || p.Size < 1 {
			return Preprocess{}, fmt.Errorf("runtime: %s: metadata %s=%q is not a positive integer", s.Path(), metaInputSize, v)
		}
	}
	if p.Size < 1 {
		p.Size = 224
	}
	p.Mean, p.Std = []float32{0.485, 0.456, 0.406}, []float32{0.229, 0.224, 0.225}
	if p.Channels == 1 {
		p.Mean, p.Std = []float32{0.5}, []float32{0.25}
	}
	for key, dst := range map[string]*[]float32{metaMean: &p.Mean, metaStd: &p.Std} {
		v, ok := meta[key]
		if !ok {
			continue
		}
		f, err := parseFloats(v)
		if err != nil || len(f) != p.Channels {
			return Preprocess{}, fmt.Errorf("runtime: %s: metadata %s=%q: expected %d comma-separated numbers", s.Path(), key, v, p.Channels)
		}
		*dst = f
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

// Dataset wraps ds so that its images come out converted and resized for
// the model.
func (p Preprocess) Dataset(ds data.Dataset) data.Dataset {
	return data.Convert(ds, p.Channels, p.Size)
}

// Fill writes image img (already converted by Dataset) into dst as a
// normalised [C, Size, Size] tensor.
func (p Preprocess) Fill(img data.Image, dst []float32) error {
	if img.C != p.Channels || img.H != p.Size || img.W != p.Size {
		return fmt.Errorf("runtime: image is %dx%dx%d, model expects %dx%dx%d", img.C, img.H, img.W, p.Channels, p.Size, p.Size)
	}
	t, err := data.Normalize(data.ToTensor(img), p.Mean, p.Std)
	if err != nil {
		return err
	}
	copy(dst, t.Data)
	return nil
}

// ExtractDataset runs the model over every image of ds and returns the
// features [ds.Len(), dim].
func ExtractDataset(sess *Session, ds data.Dataset, opts ExtractOptions) ([]float32, int, error) {
	p, err := sess.Preprocess()
	if err != nil {
		return nil, 0, err
	}
	conv := p.Dataset(ds)
	load := func(i int, dst []float32) error {
		img, err := conv.Image(i)
		if err != nil {
			return fmt.Errorf("%s: %w", ds.Source(i), err)
		}
		return p.Fill(img, dst)
	}
	return Extract(sess, ds.Len(), [3]int{p.Channels, p.Size, p.Size}, load, opts)
}
