package models

import (
	"fmt"
	"sort"
	"strings"
)

// Split backbones: the network of a split-brain autoencoder (Zhang, Isola
// & Efros, "Split-Brain Autoencoders", CVPR 2017, arXiv 1611.09842,
// section 3): a registered architecture cut in two along channels, each
// half a copy of it at half width that sees its own input channels.

// SplitSuffix ends the name of the split form of a registered
// architecture: New("resnet20c-split", 3) builds Split of resnet20c.
// Names lists the base architectures only.
const SplitSuffix = "-split"

// SplitHalves names the halves of a split backbone in input-channel
// order: the first reads input channel 0 (the lightness L of a Lab
// image), the second the other channels (a and b).
var SplitHalves = [2]string{"l", "ab"}

// IsSplit reports whether arch names a split architecture.
func IsSplit(arch string) bool { return strings.HasSuffix(arch, SplitSuffix) }

// HalfWidth returns a copy of s with the channels of every convolution
// and batch norm halved, except the input channels of the convolutions
// that read the images: the same graph at half width ("-half" appended to
// its Arch). Every channel count must be even.
func HalfWidth(s *Spec) (*Spec, error) {
	h := &Spec{Arch: s.Arch + "-half", InC: s.InC, InputSize: s.InputSize, Outputs: map[string]string{}, FeatureDim: s.FeatureDim / 2}
	if s.FeatureDim%2 != 0 {
		return nil, fmt.Errorf("models: half width of %s: %d features", s.Arch, s.FeatureDim)
	}
	for _, l := range s.Layers {
		l.Inputs = append([]string(nil), l.Inputs...)
		switch l.Op {
		case OpConv, OpBatchNorm:
			if l.OutC%2 != 0 || l.Op == OpBatchNorm && l.InC%2 != 0 || l.Op == OpConv && l.Inputs[0] != InputName && l.InC%2 != 0 {
				return nil, fmt.Errorf("models: half width of %s: layer %q has %d -> %d channels", s.Arch, l.Name, l.InC, l.OutC)
			}
			if l.Op == OpBatchNorm || l.Inputs[0] != InputName {
				l.InC /= 2
			}
			l.OutC /= 2
		case OpSlice, OpConcat:
			return nil, fmt.Errorf("models: half width of %s: layer %q (%s) is not supported", s.Arch, l.Name, l.Op)
		}
		h.Layers = append(h.Layers, l)
	}
	for k, v := range s.Outputs {
		h.Outputs[k] = v
	}
	return h, nil
}

// Split returns the split form of architecture arch (built by b) for inC
// >= 2 input channels, named arch + SplitSuffix: two half-width copies of
// it (HalfWidth) side by side, the first (SplitHalves[0]) reading input
// channel 0, the second input channels 1 to inC-1, each through a Slice
// layer; every layer (and so every parameter) name of a half starts with
// its name and a dot ("l.stem.conv", "ab.layer3.2.relu"). Each output of
// the split backbone is the channel concatenation (a Concat layer, the
// first half's channels first) of the halves' outputs of that name: the
// stage maps, and "features", the concatenation of the halves' pooled
// features. Together the halves are as wide as arch. Taps "<half>.<output>"
// name each half's own outputs.
func Split(arch string, b Builder, inC int) (*Spec, error) {
	if inC < 2 {
		return nil, fmt.Errorf("models: %s%s: a split backbone needs at least 2 input channels (one for each half), got %d", arch, SplitSuffix, inC)
	}
	s := &Spec{Arch: arch + SplitSuffix, InC: inC, Outputs: map[string]string{}, Taps: map[string]string{}}
	ranges := [2][2]int{{0, 1}, {1, inC}}
	var outputs []string
	for i, half := range SplitHalves {
		h, err := HalfWidth(b(ranges[i][1] - ranges[i][0]))
		if err != nil {
			return nil, err
		}
		in := half + ".input"
		s.Layers = append(s.Layers, Layer{Name: in, Op: OpSlice, Inputs: []string{InputName}, From: ranges[i][0], To: ranges[i][1]})
		rename := func(name string) string {
			if name == InputName {
				return in
			}
			return half + "." + name
		}
		for _, l := range h.Layers {
			l.Name = rename(l.Name)
			for j, x := range l.Inputs {
				l.Inputs[j] = rename(x)
			}
			s.Layers = append(s.Layers, l)
		}
		outputs = outputs[:0]
		for o, l := range h.Outputs {
			s.Taps[half+"."+o] = rename(l)
			outputs = append(outputs, o)
		}
		s.InputSize = h.InputSize
		s.FeatureDim += h.FeatureDim
	}
	sort.Strings(outputs)
	for _, o := range outputs {
		name := "concat." + o
		if o == "features" {
			name = "pool"
		}
		var ins []string
		for _, half := range SplitHalves {
			ins = append(ins, s.Taps[half+"."+o])
		}
		s.Layers = append(s.Layers, Layer{Name: name, Op: OpConcat, Inputs: ins})
		s.Outputs[o] = name
	}
	return s, nil
}
