// Package export turns a backbone (a models.Spec and its models.Weights)
// into an ONNX model: IR version 8, opset 17, one float32 input "images"
// [N, C, H, W] with a dynamic batch dimension, named outputs ("features"
// [N, D], optionally "stage1".."stage4" [N, C, H, W]) and metadata props that
// describe preprocessing. Each stage output also has a pooled form,
// "stage1_pool".. [N, C*g*g] (see PoolSuffix and PoolWindow). Batch norms
// that follow a convolution are folded into it by default. A split
// backbone (models.Split) is one graph: Slice nodes (int64 starts, ends
// and axes initializers) give each half its input channels, and Concat
// nodes join the halves' outputs.
//
// Quantize rewrites such a model into its static int8 form (ONNX QDQ, see
// quantize.go), with activation ranges that a Calibrator reduces from
// activations the caller computes (calibrate.go).
//
// The package also reads models back (Load, Inspect) and runs them with a
// small pure-Go interpreter (Run) for the operator subset it writes, which
// tests use as an oracle. It does not import the ONNX Runtime wrapper.
package export

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/selfsup/selfsup/export/onnxpb"
	"github.com/selfsup/selfsup/models"
)

// Format constants of every exported model.
const (
	// IRVersion is the ONNX IR version written (ONNX 1.12 era).
	IRVersion = 8
	// OpsetVersion is the version of the default ("ai.onnx") operator set.
	OpsetVersion = 17
	// ProducerName is ModelProto.producer_name.
	ProducerName = "selfsup"
	// InputName is the graph input: float32 images [N, C, H, W].
	InputName = models.InputName
	// BatchDim, HeightDim and WidthDim are the dim_param names of the
	// dynamic dimensions (height and width only with Options.DynamicHW).
	BatchDim  = "N"
	HeightDim = "H"
	WidthDim  = "W"
)

// FeaturesOutput is the name of the pooled feature output [N, D].
const FeaturesOutput = "features"

// Options controls Build.
type Options struct {
	// Outputs lists the spec outputs to expose, in order ("features",
	// "stage1".."stage4", and the pooled forms "stage1_pool".. of the
	// stages, see PoolSuffix; AllOutputs lists them all). Nil or empty
	// means ["features"]. Layers that no requested output depends on are
	// left out of the graph.
	Outputs []string
	// FoldBN folds every batch norm that directly follows a convolution
	// (and is that convolution's only reader) into the convolution's weight
	// and bias. Default (DefaultOptions) true; the zero Options has it off.
	FoldBN bool
	// DynamicHW makes height and width of the input symbolic ("H", "W"),
	// so one model serves any image size; otherwise they are fixed to
	// InputSize.
	DynamicHW bool
	// Metadata is merged into the model's metadata props (see Metadata and
	// the Key constants). Build always writes KeyArch, KeyInputSize and
	// KeyLayout itself; repeating one of them with another value is an
	// error.
	Metadata map[string]string
	// InputSize is the square input size in pixels; 0 means the spec's
	// InputSize.
	InputSize int
}

// DefaultOptions returns the options the CLI uses: ["features"] only,
// batch norms folded, fixed input size.
func DefaultOptions() Options {
	return Options{Outputs: []string{FeaturesOutput}, FoldBN: true}
}

func errorf(format string, a ...any) error {
	return fmt.Errorf("export: "+format, a...)
}

// shape of one value inside the graph for a fixed input size: [C, H, W], or
// [C] after global pooling. The batch dimension is implicit.
type vshape []int

// Build converts spec and w into an ONNX model (see the package comment
// for its form). Weights are checked against the spec first. With
// opts.FoldBN, a Conv followed by BatchNorm becomes one Conv with
//
//	W' = W * gamma/sqrt(var+eps),  b' = beta + (b - mean) * gamma/sqrt(var+eps)
//
// computed in float64 and rounded to float32 once (b = 0 for a conv
// without bias). Every graph output is produced by a node that no other
// node reads (an Identity is added where needed), which some importers
// (onnx-go) require.
func Build(spec *models.Spec, w models.Weights, opts Options) (*onnxpb.ModelProto, error) {
	if spec == nil {
		return nil, errorf("build: nil spec")
	}
	if err := spec.Validate(w); err != nil {
		return nil, errorf("build: %w", err)
	}
	if err := models.CheckFinite(w); err != nil { // NaN weights export silently otherwise (issue 16)
		return nil, errorf("build: %w", err)
	}
	outputs := opts.Outputs
	if len(outputs) == 0 {
		outputs = []string{FeaturesOutput}
	}
	seenOut := map[string]bool{}
	pooledOf := map[string]string{} // pooled output -> its stage output
	for _, o := range outputs {
		if st, ok := IsPooledOutput(spec, o); ok {
			if opts.DynamicHW {
				return nil, errorf("build %s: output %q pools %s on a grid fixed at export, which needs a fixed input size; "+
					"export without dynamic height and width, or export %q and pool it yourself", spec.Arch, o, st, st)
			}
			pooledOf[o] = st
		} else if _, ok := spec.Outputs[o]; !ok {
			return nil, errorf("build %s: unknown output %q (known: %v)", spec.Arch, o, knownOutputs(spec))
		}
		if seenOut[o] {
			return nil, errorf("build %s: output %q requested twice", spec.Arch, o)
		}
		seenOut[o] = true
	}
	size := opts.InputSize
	if size == 0 {
		size = spec.InputSize
	}
	if size <= 0 {
		return nil, errorf("build %s: input size must be positive, got %d", spec.Arch, size)
	}

	shapes, err := inferShapes(spec, size)
	if err != nil {
		return nil, err
	}

	// Liveness: walk back from the requested outputs.
	byName := map[string]*models.Layer{}
	for i := range spec.Layers {
		byName[spec.Layers[i].Name] = &spec.Layers[i]
	}
	live := map[string]bool{}
	var mark func(string)
	mark = func(v string) {
		if live[v] {
			return
		}
		live[v] = true
		if l, ok := byName[v]; ok {
			for _, in := range l.Inputs {
				mark(in)
			}
		}
	}
	outLayer := map[string]bool{} // layers an output refers to directly
	readers := map[string]int{}
	for _, o := range outputs {
		if st, ok := pooledOf[o]; ok {
			// The pooling nodes read the stage map: it stays live and
			// counts that reader, so a conv writing it is not folded into
			// a batch norm after it and its value keeps its name.
			mark(spec.Outputs[st])
			readers[spec.Outputs[st]]++
			continue
		}
		mark(spec.Outputs[o])
		outLayer[spec.Outputs[o]] = true
	}
	for _, l := range spec.Layers {
		if !live[l.Name] {
			continue
		}
		for _, in := range l.Inputs {
			readers[in]++
		}
	}

	// Which convolutions fold into the batch norm after them.
	foldInto := map[string]string{} // conv name -> bn name
	if opts.FoldBN {
		for _, l := range spec.Layers {
			if !live[l.Name] || l.Op != models.OpBatchNorm {
				continue
			}
			c, ok := byName[l.Inputs[0]]
			if ok && c.Op == models.OpConv && readers[c.Name] == 1 && !outLayer[c.Name] {
				foldInto[c.Name] = l.Name
			}
		}
	}

	b := &graphBuilder{values: map[string]string{}, nodes: map[string]bool{}}
	if err := b.claim(InputName, "graph input"); err != nil {
		return nil, errorf("build %s: %w", spec.Arch, err)
	}
	for _, l := range spec.Layers {
		if !live[l.Name] {
			continue
		}
		if err := b.layer(spec, w, l, byName, foldInto); err != nil {
			return nil, err
		}
	}
	for _, o := range outputs {
		if st, ok := pooledOf[o]; ok {
			src := spec.Outputs[st]
			if err := b.pool(o, src, shapes[src]); err != nil {
				return nil, errorf("build %s: %w", spec.Arch, err)
			}
		}
	}

	// Graph outputs: rename the producing node's output when nothing else
	// reads it, else add an Identity.
	g := &b.g
	producer := map[string]*onnxpb.NodeProto{}
	for _, n := range g.Node {
		for _, o := range n.Output {
			producer[o] = n
		}
	}
	current := map[string]string{} // layer -> the value name it now has
	for _, o := range outputs {
		if _, ok := pooledOf[o]; ok {
			continue // written by its Flatten node, which nothing reads
		}
		src := spec.Outputs[o]
		p := producer[src]
		if _, done := current[src]; !done && p != nil && readers[src] == 0 {
			// Nothing reads src: its producer may write the output itself.
			if src != o {
				if err := b.claim(o, "graph output"); err != nil {
					return nil, errorf("build %s: %w", spec.Arch, err)
				}
				for i := range p.Output {
					if p.Output[i] == src {
						p.Output[i] = o
					}
				}
			}
			current[src] = o
			continue
		}
		in := src
		if cur, ok := current[src]; ok {
			in = cur
		}
		if err := b.add(node("Identity", o+".identity", []string{in}, []string{o})); err != nil {
			return nil, errorf("build %s: %w", spec.Arch, err)
		}
	}

	inDims := []*onnxpb.TensorShapeProto_Dimension{dimParam(BatchDim), dimValue(spec.InC)}
	if opts.DynamicHW {
		inDims = append(inDims, dimParam(HeightDim), dimParam(WidthDim))
	} else {
		inDims = append(inDims, dimValue(size), dimValue(size))
	}
	g.Input = []*onnxpb.ValueInfoProto{valueInfo(InputName, inDims)}
	for _, o := range outputs {
		var s vshape
		if st, ok := pooledOf[o]; ok {
			if s, err = pooledShape(shapes[spec.Outputs[st]]); err != nil {
				return nil, errorf("build %s: output %q: %w", spec.Arch, o, err)
			}
		} else {
			s = shapes[spec.Outputs[o]]
		}
		dims := []*onnxpb.TensorShapeProto_Dimension{dimParam(BatchDim), dimValue(s[0])}
		if len(s) == 3 {
			if opts.DynamicHW {
				dims = append(dims, &onnxpb.TensorShapeProto_Dimension{}, &onnxpb.TensorShapeProto_Dimension{})
			} else {
				dims = append(dims, dimValue(s[1]), dimValue(s[2]))
			}
		}
		g.Output = append(g.Output, valueInfo(o, dims))
	}
	g.Name = proto.String(spec.Arch)

	meta, err := mergeMetadata(spec, size, opts.Metadata)
	if err != nil {
		return nil, err
	}
	m := &onnxpb.ModelProto{
		IrVersion:     proto.Int64(IRVersion),
		OpsetImport:   []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(OpsetVersion)}},
		ProducerName:  proto.String(ProducerName),
		Graph:         g,
		MetadataProps: meta,
	}
	if v := opts.Metadata[KeyVersion]; v != "" {
		m.ProducerVersion = proto.String(v)
	}
	if err := checkModel(m); err != nil {
		return nil, errorf("build %s: produced an invalid model (a bug): %w", spec.Arch, err)
	}
	return m, nil
}

// mergeMetadata returns the metadata props: the caller's entries sorted by
// key, then the entries Build owns (KeyArch, KeyInputSize, KeyLayout). The
// owned entries go last so that a file cut short inside the metadata lacks
// one of them, which Load reports.
func mergeMetadata(spec *models.Spec, size int, user map[string]string) ([]*onnxpb.StringStringEntryProto, error) {
	owned := map[string]string{
		KeyArch:      spec.Arch,
		KeyInputSize: strconv.Itoa(size),
		KeyLayout:    Layout,
	}
	var out []*onnxpb.StringStringEntryProto
	for _, k := range sortedKeys(user) {
		v := user[k]
		if k == "" {
			return nil, errorf("build %s: metadata: empty key (value %q)", spec.Arch, v)
		}
		if ov, ok := owned[k]; ok {
			if v != ov {
				return nil, errorf("build %s: metadata %s = %q contradicts the model (%q)", spec.Arch, k, v, ov)
			}
			continue
		}
		out = append(out, &onnxpb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(v)})
	}
	for _, k := range builtKeys {
		out = append(out, &onnxpb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(owned[k])})
	}
	return out, nil
}

// inferShapes computes [C, H, W] (or [C] after global pooling) of every
// layer output for a size x size input, checking channel counts and that
// every spatial size stays positive.
func inferShapes(spec *models.Spec, size int) (map[string]vshape, error) {
	shapes := map[string]vshape{InputName: {spec.InC, size, size}}
	for _, l := range spec.Layers {
		in := shapes[l.Inputs[0]]
		fail := func(format string, a ...any) error {
			return errorf("build %s: layer %q (%s) at input size %d: %s", spec.Arch, l.Name, l.Op, size, fmt.Sprintf(format, a...))
		}
		if l.Op != models.OpAdd && l.Op != models.OpConcat && len(in) != 3 {
			return nil, fail("input %q has shape %v, expected [C, H, W]", l.Inputs[0], in)
		}
		var out vshape
		switch l.Op {
		case models.OpConv, models.OpMaxPool:
			if l.Kernel <= 0 || l.Stride <= 0 || l.Pad < 0 {
				return nil, fail("kernel %d, stride %d, pad %d: need kernel, stride > 0 and pad >= 0", l.Kernel, l.Stride, l.Pad)
			}
			c := in[0]
			if l.Op == models.OpConv {
				if in[0] != l.InC {
					return nil, fail("input has %d channels, expected %d", in[0], l.InC)
				}
				c = l.OutC
			}
			oh := (in[1]+2*l.Pad-l.Kernel)/l.Stride + 1
			ow := (in[2]+2*l.Pad-l.Kernel)/l.Stride + 1
			if in[1]+2*l.Pad < l.Kernel || in[2]+2*l.Pad < l.Kernel {
				return nil, fail("input %dx%d is smaller than the kernel %d (pad %d)", in[1], in[2], l.Kernel, l.Pad)
			}
			if l.Op == models.OpMaxPool && l.Pad >= l.Kernel {
				return nil, fail("pad %d must be smaller than the kernel %d", l.Pad, l.Kernel)
			}
			out = vshape{c, oh, ow}
		case models.OpBatchNorm:
			if in[0] != l.OutC {
				return nil, fail("input has %d channels, expected %d", in[0], l.OutC)
			}
			out = in
		case models.OpRelu:
			out = in
		case models.OpAdd:
			other := shapes[l.Inputs[1]]
			if !equalInts(in, other) {
				return nil, fail("adding shapes %v and %v", in, other)
			}
			out = in
		case models.OpGlobalAvgPool:
			out = vshape{in[0]}
		case models.OpSlice:
			if l.From < 0 || l.To <= l.From || l.To > in[0] {
				return nil, fail("channels [%d, %d) of an input with %d", l.From, l.To, in[0])
			}
			out = vshape{l.To - l.From, in[1], in[2]}
		case models.OpConcat:
			out = append(vshape(nil), in...)
			for _, x := range l.Inputs[1:] {
				other := shapes[x]
				if len(other) != len(in) || len(in) == 3 && (other[1] != in[1] || other[2] != in[2]) || len(in) != 1 && len(in) != 3 {
					return nil, fail("concatenating shapes %v and %v", in, other)
				}
				out[0] += other[0]
			}
		default:
			return nil, fail("unsupported op")
		}
		shapes[l.Name] = out
	}
	return shapes, nil
}

// graphBuilder accumulates nodes and initializers and keeps names unique:
// value names (graph inputs and outputs, initializers, node outputs) in one
// namespace, node names in another, as ONNX scopes them.
type graphBuilder struct {
	g      onnxpb.GraphProto
	values map[string]string // value name -> what claimed it
	nodes  map[string]bool
}

func (b *graphBuilder) claim(name, what string) error {
	if name == "" {
		return fmt.Errorf("empty %s name", what)
	}
	if prev, ok := b.values[name]; ok {
		return fmt.Errorf("value name %q used for both a %s and a %s", name, prev, what)
	}
	b.values[name] = what
	return nil
}

func (b *graphBuilder) init(name string, shape []int, data []float32) error {
	if err := b.claim(name, "initializer"); err != nil {
		return err
	}
	b.g.Initializer = append(b.g.Initializer, floatTensor(name, shape, data))
	return nil
}

// initInt64 adds an int64 initializer (Slice's starts, ends and axes).
func (b *graphBuilder) initInt64(name string, data ...int) error {
	if err := b.claim(name, "initializer"); err != nil {
		return err
	}
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(int64(v)))
	}
	b.g.Initializer = append(b.g.Initializer, &onnxpb.TensorProto{
		Name: proto.String(name), DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Dims: []int64{int64(len(data))}, RawData: raw,
	})
	return nil
}

func (b *graphBuilder) add(n *onnxpb.NodeProto) error {
	if n.GetName() == "" || b.nodes[n.GetName()] {
		return fmt.Errorf("node name %q empty or used twice", n.GetName())
	}
	b.nodes[n.GetName()] = true
	for _, o := range n.Output {
		if err := b.claim(o, n.GetOpType()+" output"); err != nil {
			return err
		}
	}
	b.g.Node = append(b.g.Node, n)
	return nil
}

// layer emits the nodes of one live layer.
func (b *graphBuilder) layer(spec *models.Spec, w models.Weights, l models.Layer, byName map[string]*models.Layer, foldInto map[string]string) error {
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		return errorf("build %s: layer %q (%s): %w", spec.Arch, l.Name, l.Op, err)
	}
	switch l.Op {
	case models.OpConv:
		if _, folded := foldInto[l.Name]; folded {
			return nil // emitted with its batch norm
		}
		inputs := []string{l.Inputs[0], l.Name + ".weight"}
		wt := w[l.Name+".weight"]
		if err := b.init(l.Name+".weight", wt.Shape, wt.Data); err != nil {
			return wrap(err)
		}
		if l.Bias {
			bt := w[l.Name+".bias"]
			if err := b.init(l.Name+".bias", bt.Shape, bt.Data); err != nil {
				return wrap(err)
			}
			inputs = append(inputs, l.Name+".bias")
		}
		return wrap(b.add(convNode(l.Name, inputs, l.Name, l)))
	case models.OpBatchNorm:
		if c, ok := byName[l.Inputs[0]]; ok && foldInto[c.Name] == l.Name {
			wt, bias, err := foldBN(w, *c, l)
			if err != nil {
				return wrap(err)
			}
			if err := b.init(c.Name+".weight", w[c.Name+".weight"].Shape, wt); err != nil {
				return wrap(err)
			}
			if err := b.init(c.Name+".bias", []int{c.OutC}, bias); err != nil {
				return wrap(err)
			}
			return wrap(b.add(convNode(c.Name, []string{c.Inputs[0], c.Name + ".weight", c.Name + ".bias"}, l.Name, *c)))
		}
		if err := checkVariance(w, l); err != nil {
			return wrap(err)
		}
		inputs := []string{l.Inputs[0]}
		for _, p := range []string{".weight", ".bias", ".running_mean", ".running_var"} {
			t := w[l.Name+p]
			if err := b.init(l.Name+p, t.Shape, t.Data); err != nil {
				return wrap(err)
			}
			inputs = append(inputs, l.Name+p)
		}
		n := node("BatchNormalization", l.Name, inputs, []string{l.Name})
		n.Attribute = []*onnxpb.AttributeProto{attrFloat("epsilon", float32(l.Eps))}
		return wrap(b.add(n))
	case models.OpRelu:
		return wrap(b.add(node("Relu", l.Name, l.Inputs[:1], []string{l.Name})))
	case models.OpAdd:
		return wrap(b.add(node("Add", l.Name, l.Inputs[:2], []string{l.Name})))
	case models.OpMaxPool:
		n := node("MaxPool", l.Name, l.Inputs[:1], []string{l.Name})
		n.Attribute = []*onnxpb.AttributeProto{
			attrInts("kernel_shape", l.Kernel, l.Kernel),
			attrInts("pads", l.Pad, l.Pad, l.Pad, l.Pad),
			attrInts("strides", l.Stride, l.Stride),
		}
		return wrap(b.add(n))
	case models.OpGlobalAvgPool:
		pooled := l.Name + ".gap"
		if err := b.add(node("GlobalAveragePool", pooled, l.Inputs[:1], []string{pooled})); err != nil {
			return wrap(err)
		}
		n := node("Flatten", l.Name, []string{pooled}, []string{l.Name})
		n.Attribute = []*onnxpb.AttributeProto{attrInt("axis", 1)}
		return wrap(b.add(n))
	case models.OpSlice:
		inputs := []string{l.Inputs[0]}
		for _, p := range []struct {
			suffix string
			v      int
		}{{".starts", l.From}, {".ends", l.To}, {".axes", 1}} {
			if err := b.initInt64(l.Name+p.suffix, p.v); err != nil {
				return wrap(err)
			}
			inputs = append(inputs, l.Name+p.suffix)
		}
		return wrap(b.add(node("Slice", l.Name, inputs, []string{l.Name})))
	case models.OpConcat:
		n := node("Concat", l.Name, l.Inputs, []string{l.Name})
		n.Attribute = []*onnxpb.AttributeProto{attrInt("axis", 1)}
		return wrap(b.add(n))
	}
	return wrap(fmt.Errorf("unsupported op"))
}

// convNode makes a Conv node named name reading inputs and writing out,
// with l's kernel, stride and padding (dilation 1, one group).
func convNode(name string, inputs []string, out string, l models.Layer) *onnxpb.NodeProto {
	n := node("Conv", name, inputs, []string{out})
	n.Attribute = []*onnxpb.AttributeProto{
		attrInts("dilations", 1, 1),
		attrInt("group", 1),
		attrInts("kernel_shape", l.Kernel, l.Kernel),
		attrInts("pads", l.Pad, l.Pad, l.Pad, l.Pad),
		attrInts("strides", l.Stride, l.Stride),
	}
	return n
}

// checkVariance reports a batch norm whose var+eps is not positive, which
// would turn its channel into NaN.
func checkVariance(w models.Weights, bn models.Layer) error {
	for c, v := range w[bn.Name+".running_var"].Data {
		if !(float64(v)+bn.Eps > 0) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("channel %d: running_var %g + eps %g is not a positive finite number", c, v, bn.Eps)
		}
	}
	return nil
}

// foldBN returns the weight and bias of conv c with batch norm bn folded
// in, computed in float64 and rounded once.
func foldBN(w models.Weights, c, bn models.Layer) ([]float32, []float32, error) {
	if err := checkVariance(w, bn); err != nil {
		return nil, nil, err
	}
	wt := w[c.Name+".weight"].Data
	gamma, beta := w[bn.Name+".weight"].Data, w[bn.Name+".bias"].Data
	mean, variance := w[bn.Name+".running_mean"].Data, w[bn.Name+".running_var"].Data
	var convBias []float32
	if c.Bias {
		convBias = w[c.Name+".bias"].Data
	}
	per := len(wt) / c.OutC
	outW := make([]float32, len(wt))
	outB := make([]float32, c.OutC)
	for oc := 0; oc < c.OutC; oc++ {
		scale := float64(gamma[oc]) / math.Sqrt(float64(variance[oc])+bn.Eps)
		for i := oc * per; i < (oc+1)*per; i++ {
			outW[i] = float32(float64(wt[i]) * scale)
		}
		var cb float64
		if convBias != nil {
			cb = float64(convBias[oc])
		}
		bias := float64(beta[oc]) + (cb-float64(mean[oc]))*scale
		if math.IsNaN(bias) || math.IsInf(bias, 0) || math.IsInf(float64(float32(bias)), 0) {
			return nil, nil, fmt.Errorf("folding into %q: channel %d: bias %g is not a finite float32", c.Name, oc, bias)
		}
		outB[oc] = float32(bias)
	}
	return outW, outB, nil
}

func node(op, name string, inputs, outputs []string) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{
		OpType: proto.String(op),
		Name:   proto.String(name),
		Input:  append([]string(nil), inputs...),
		Output: append([]string(nil), outputs...),
	}
}

func attrInt(name string, v int) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(int64(v))}
}

func attrInts(name string, v ...int) *onnxpb.AttributeProto {
	a := &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum()}
	for _, x := range v {
		a.Ints = append(a.Ints, int64(x))
	}
	return a
}

func attrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// floatTensor makes a float32 initializer with little-endian raw_data.
func floatTensor(name string, shape []int, data []float32) *onnxpb.TensorProto {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	t := &onnxpb.TensorProto{
		Name:     proto.String(name),
		DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
		RawData:  raw,
	}
	for _, d := range shape {
		t.Dims = append(t.Dims, int64(d))
	}
	return t
}

func dimValue(v int) *onnxpb.TensorShapeProto_Dimension {
	return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(v)}}
}

func dimParam(p string) *onnxpb.TensorShapeProto_Dimension {
	return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: p}}
}

// valueInfo describes a float32 tensor with the given dimensions.
func valueInfo(name string, dims []*onnxpb.TensorShapeProto_Dimension) *onnxpb.ValueInfoProto {
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
			Shape:    &onnxpb.TensorShapeProto{Dim: dims},
		}}},
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func equalInts(a, b []int) bool {
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
