package models

import (
	"fmt"
	"sort"
)

// LayerOp names the kind of one layer in a Spec. The set is deliberately
// small: it is what ResNet backbones need, and each kind maps to one ONNX
// operator (BatchNorm may be folded into the Conv before it on export).
type LayerOp string

const (
	// OpConv is a 2-D convolution without bias unless Layer.Bias is set.
	// Parameters: "<name>.weight" [OutC, InC, K, K], "<name>.bias" [OutC].
	OpConv LayerOp = "Conv"
	// OpBatchNorm is batch normalisation over channels of an NCHW tensor.
	// Parameters: "<name>.weight" (gamma) [C], "<name>.bias" (beta) [C],
	// "<name>.running_mean" [C], "<name>.running_var" [C].
	OpBatchNorm LayerOp = "BatchNorm"
	// OpRelu is max(x, 0).
	OpRelu LayerOp = "Relu"
	// OpAdd adds its two inputs element-wise (the residual connection).
	OpAdd LayerOp = "Add"
	// OpMaxPool is max pooling with Kernel, Stride and Pad (padding is -inf).
	OpMaxPool LayerOp = "MaxPool"
	// OpGlobalAvgPool averages each channel over height and width and
	// flattens: [N, C, H, W] -> [N, C].
	OpGlobalAvgPool LayerOp = "GlobalAvgPool"
	// OpSlice keeps channels [From, To) of its input: [N, C, H, W] ->
	// [N, To-From, H, W] (ONNX Slice on axis 1).
	OpSlice LayerOp = "Slice"
	// OpConcat concatenates its inputs (two or more) along channels, in
	// order: NCHW maps of one height and width, or [N, C] vectors (ONNX
	// Concat on axis 1).
	OpConcat LayerOp = "Concat"
)

// Layer is one node of a backbone's layer graph. Inputs name the outputs of
// earlier layers (a layer's output has the layer's Name), or InputName for
// the image tensor [N, InC, H, W].
type Layer struct {
	Name   string
	Op     LayerOp
	Inputs []string

	// Conv and MaxPool attributes.
	Kernel, Stride, Pad int
	// Conv: channels in and out; BatchNorm: C in both.
	InC, OutC int
	// Bias is true when a Conv has a bias parameter.
	Bias bool
	// Eps is the BatchNorm variance epsilon.
	Eps float64
	// From and To are the channels [From, To) a Slice keeps.
	From, To int
}

// InputName is the name layers use to refer to the input image tensor.
const InputName = "images"

// Spec describes a backbone as a directed acyclic graph of layers in
// topological order, plus which layer outputs are exposed. It is the one
// description that both the Gorgonia builder and the ONNX exporter read, so
// the trained graph and the exported one cannot drift apart.
type Spec struct {
	// Arch is the registered architecture name, e.g. "resnet18c".
	Arch string
	// InC is the number of input channels (3 for RGB, 1 for grayscale).
	InC int
	// InputSize is the default square input size in pixels.
	InputSize int
	// Layers in topological order.
	Layers []Layer
	// Outputs maps an exposed output name ("features", "stage1".."stage4")
	// to the layer that produces it. "features" is always present and is
	// [N, FeatureDim].
	Outputs map[string]string
	// FeatureDim is the width of the "features" output.
	FeatureDim int
	// Taps maps names to layers that Backbone.Forward and Reference
	// return besides Outputs, and that exports do not offer: the halves
	// of a split backbone ("l.stage3", "ab.features", ...; see Split).
	Taps map[string]string
}

// layerOf is the layer that output or tap name refers to.
func (s *Spec) layerOf(name string) (string, bool) {
	if l, ok := s.Outputs[name]; ok {
		return l, true
	}
	l, ok := s.Taps[name]
	return l, ok
}

// Tensor is a named parameter or buffer: row-major float32 data and shape.
type Tensor struct {
	Shape []int
	Data  []float32
}

// Size is the number of elements the shape holds.
func (t Tensor) Size() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Weights maps parameter names ("<layer>.weight", ...) to values.
type Weights map[string]Tensor

// Names returns the weight names sorted, for deterministic iteration.
func (w Weights) Names() []string {
	names := make([]string, 0, len(w))
	for k := range w {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// ParamShapes lists every parameter and buffer a layer owns, with shapes.
// Learnable reports whether the optimiser updates it (running statistics
// are buffers, not learnable).
type ParamInfo struct {
	Name      string
	Shape     []int
	Learnable bool
}

// Params lists the parameters of every layer in the spec in layer order.
func (s *Spec) Params() []ParamInfo {
	var out []ParamInfo
	for _, l := range s.Layers {
		switch l.Op {
		case OpConv:
			out = append(out, ParamInfo{l.Name + ".weight", []int{l.OutC, l.InC, l.Kernel, l.Kernel}, true})
			if l.Bias {
				out = append(out, ParamInfo{l.Name + ".bias", []int{l.OutC}, true})
			}
		case OpBatchNorm:
			out = append(out,
				ParamInfo{l.Name + ".weight", []int{l.OutC}, true},
				ParamInfo{l.Name + ".bias", []int{l.OutC}, true},
				ParamInfo{l.Name + ".running_mean", []int{l.OutC}, false},
				ParamInfo{l.Name + ".running_var", []int{l.OutC}, false},
			)
		}
	}
	return out
}

// Validate checks that the spec is well formed: unique names, inputs
// defined before use, parameters present with the right shapes in w (when w
// is not nil).
func (s *Spec) Validate(w Weights) error {
	seen := map[string]bool{InputName: true}
	for i, l := range s.Layers {
		if seen[l.Name] {
			return fmt.Errorf("models: spec %s: layer %d: duplicate name %q", s.Arch, i, l.Name)
		}
		want := 1
		switch l.Op {
		case OpAdd:
			want = 2
		case OpConcat:
			want = max(2, len(l.Inputs))
		}
		if len(l.Inputs) != want {
			return fmt.Errorf("models: spec %s: layer %q (%s): %d inputs, expected %d", s.Arch, l.Name, l.Op, len(l.Inputs), want)
		}
		if l.Op == OpSlice && (l.From < 0 || l.To <= l.From || l.Inputs[0] == InputName && l.To > s.InC) {
			return fmt.Errorf("models: spec %s: layer %q (%s): channels [%d, %d) of %s (%d input channels)", s.Arch, l.Name, l.Op, l.From, l.To, l.Inputs[0], s.InC)
		}
		for _, in := range l.Inputs {
			if !seen[in] {
				return fmt.Errorf("models: spec %s: layer %q: input %q is not defined before it", s.Arch, l.Name, in)
			}
		}
		seen[l.Name] = true
	}
	if _, ok := s.Outputs["features"]; !ok {
		return fmt.Errorf("models: spec %s: no \"features\" output", s.Arch)
	}
	for name, l := range s.Outputs {
		if !seen[l] {
			return fmt.Errorf("models: spec %s: output %q refers to unknown layer %q", s.Arch, name, l)
		}
	}
	for name, l := range s.Taps {
		if !seen[l] {
			return fmt.Errorf("models: spec %s: tap %q refers to unknown layer %q", s.Arch, name, l)
		}
		if _, dup := s.Outputs[name]; dup {
			return fmt.Errorf("models: spec %s: %q is both an output and a tap", s.Arch, name)
		}
	}
	if w == nil {
		return nil
	}
	for _, p := range s.Params() {
		t, ok := w[p.Name]
		if !ok {
			return fmt.Errorf("models: spec %s: weight %q missing", s.Arch, p.Name)
		}
		if !sameShape(t.Shape, p.Shape) {
			return fmt.Errorf("models: spec %s: weight %q has shape %v, expected %v", s.Arch, p.Name, t.Shape, p.Shape)
		}
		if len(t.Data) != t.Size() {
			return fmt.Errorf("models: spec %s: weight %q has %d values for shape %v", s.Arch, p.Name, len(t.Data), t.Shape)
		}
	}
	return nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
