package export

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/selfsup/selfsup/export/onnxpb"
)

// Int8 export: static quantisation in the QDQ form.
//
// Quantize rewrites a float model written by Build (batch norms folded)
// into an ONNX "QDQ" model: the float operators stay, and int8 tensors are
// fed to them through DequantizeLinear nodes, the form ONNX Runtime's
// graph optimiser recognises and fuses into int8 kernels (QLinearConv,
// QLinearAdd, QLinearAveragePool, QLinearGlobalAveragePool, an int8
// MaxPool), as its own quantisation tool (onnxruntime.quantization,
// quantize_static with QuantFormat.QDQ) writes it:
//
//   - Weights of every Conv: int8, symmetric, one scale per output channel
//     (s_c = max|W_c|/127, zero point 0, values in [-127, 127]), stored as
//     int8 initialisers and read through DequantizeLinear(axis 0). Biases:
//     int32 with scale s_x*s_c (the input's scale times the channel's weight
//     scale) and zero point 0, as QLinearConv wants them.
//   - Activations: uint8, asymmetric, one scale and zero point per tensor
//     (ActivationParams), from a calibrated range. Every activation input
//     of Conv, Add, AveragePool, GlobalAveragePool and MaxPool and every
//     output of those operators gets a QuantizeLinear/DequantizeLinear
//     pair, so that each fuses with the pairs around it; the output of a
//     MaxPool reuses its input's scale and zero point (ONNX Runtime then
//     drops the pair and runs MaxPool on uint8). Other operators (Flatten,
//     Identity) read dequantized float values.
//   - A Relu that is the only reader of a Conv or Add output is removed and
//     the Conv or Add output is quantized with the Relu output's range: its
//     minimum is 0, so the zero point is 0 and QuantizeLinear's clamp to
//     [0, 255] is the Relu (the tool's QDQRemovableActivation).
//   - Graph outputs stay float32 and keep their names: an output that is
//     quantized is written by its DequantizeLinear.
//
// Which tensors need a calibrated range: CalibrationTensors. How ranges
// are estimated from activations: Calibrator.

// Metadata keys of a quantized model.
const (
	// KeyQuantization is "int8" (QuantInt8) in a model Quantize wrote.
	KeyQuantization = "selfsup.quantization"
	// KeyQuantScheme describes the quantisation (QuantScheme).
	KeyQuantScheme = "selfsup.quant_scheme"
	// KeyQuantCalibration is the calibration method (CalibMethod.String,
	// e.g. "percentile:99.99").
	KeyQuantCalibration = "selfsup.quant_calibration"
	// KeyQuantCalibrationData says which images the ranges come from.
	KeyQuantCalibrationData = "selfsup.quant_calibration_data"
)

// float32Tiny is the smallest normal float32 (numpy's finfo(float32).tiny):
// ONNX Runtime's tool takes a smaller scale as 1.
const float32Tiny = 1.1754943508222875e-38

// QuantInt8 is the only quantisation mode: `export --quantize int8`.
const QuantInt8 = "int8"

// QuantScheme is the value of KeyQuantScheme.
const QuantScheme = "qdq static; weights int8 symmetric per output channel (axis 0); bias int32 (scale s_x*s_w); " +
	"activations uint8 asymmetric per tensor"

// Range is a calibrated range of an activation tensor.
type Range struct{ Min, Max float32 }

// ActivationParams is the uint8 scale and zero point of a tensor with
// range r, by ONNX Runtime's convention (quant_utils.compute_scale_zp,
// qmin 0, qmax 255): the range is widened to hold 0, scale =
// (max-min)/255, zero point = round(-min/scale) (half to even); a range of
// width 0 gives scale 1 and zero point 0.
func ActivationParams(r Range) (scale float32, zero uint8) {
	lo, hi := min(r.Min, 0), max(r.Max, 0)
	s := float64(hi-lo) / 255
	if s < float32Tiny {
		return 1, 0
	}
	z := math.RoundToEven(-float64(lo) / s)
	return float32(s), uint8(max(0, min(255, z)))
}

// WeightScales returns the per-output-channel scales of weights w laid out
// [outC, ...]: max|w_c|/127 (ONNX Runtime's symmetric int8: range
// [-127, 127], zero point 0), 1 for an all-zero channel.
func WeightScales(w []float32, outC int) ([]float32, error) {
	if outC <= 0 || len(w)%outC != 0 {
		return nil, fmt.Errorf("weights of %d values do not split into %d output channels", len(w), outC)
	}
	per := len(w) / outC
	scales := make([]float32, outC)
	for c := range scales {
		var absmax float32
		for _, v := range w[c*per : (c+1)*per] {
			absmax = max(absmax, float32(math.Abs(float64(v))))
		}
		s := float64(2*absmax) / 254
		if s < float32Tiny {
			scales[c] = 1
		} else {
			scales[c] = float32(s)
		}
	}
	return scales, nil
}

// QuantizeWeights quantizes w [outC, ...] with one scale per output
// channel: round(w/s_c) (float32 division, half to even), clipped to
// [-127, 127].
func QuantizeWeights(w, scales []float32) []int8 {
	per := len(w) / len(scales)
	q := make([]int8, len(w))
	for i, v := range w {
		r := math.RoundToEven(float64(v / scales[i/per]))
		q[i] = int8(max(-127, min(127, r)))
	}
	return q
}

// QuantizeBias quantizes a bias to int32 with scale xScale*wScales[c] per
// channel (a float32 product) and zero point 0, rounding half to even and clipping to the
// int32 range (ONNX Runtime's quantize_bias_static_impl). It returns the
// values and the scales.
func QuantizeBias(b []float32, xScale float32, wScales []float32) ([]int32, []float32) {
	q := make([]int32, len(b))
	scales := make([]float32, len(b))
	for c, v := range b {
		scales[c] = xScale * wScales[c] // float32, the scale DequantizeLinear reads
		r := math.RoundToEven(float64(v) / float64(scales[c]))
		q[c] = int32(max(math.MinInt32, min(math.MaxInt32, r)))
	}
	return q, scales
}

// QuantizeValue is ONNX QuantizeLinear for uint8: round(x/scale) + zero
// (half to even), saturated to [0, 255].
func QuantizeValue(x, scale float32, zero uint8) uint8 {
	r := math.RoundToEven(float64(x/scale)) + float64(zero)
	return uint8(max(0, min(255, r)))
}

// DequantizeValue is ONNX DequantizeLinear for uint8: (q - zero) * scale.
func DequantizeValue(q uint8, scale float32, zero uint8) float32 {
	return float32(int32(q)-int32(zero)) * scale
}

// quantOps are the operators whose activation inputs and outputs get a
// QuantizeLinear/DequantizeLinear pair.
var quantOps = map[string]bool{"Conv": true, "Add": true, "AveragePool": true, "GlobalAveragePool": true, "MaxPool": true}

// qdqPlan is what Quantize does to a float model.
type qdqPlan struct {
	nodes []*onnxpb.NodeProto // the float graph's nodes with removable Relus merged (copies)
	quant []string            // tensors that get a Q/DQ pair, in definition order
	isQ   map[string]bool
	share map[string]string // tensor -> tensor whose scale and zero point it reuses (MaxPool output -> input)
	inits map[string]*onnxpb.TensorProto
	outs  map[string]bool // graph outputs
}

// planQDQ analyses m (see the comment above KeyQuantization).
func planQDQ(m *onnxpb.ModelProto) (*qdqPlan, error) {
	g := m.GetGraph()
	if g == nil {
		return nil, errorf("quantize: no graph")
	}
	p := &qdqPlan{isQ: map[string]bool{}, share: map[string]string{}, inits: map[string]*onnxpb.TensorProto{}, outs: map[string]bool{}}
	for _, t := range g.GetInitializer() {
		p.inits[t.GetName()] = t
	}
	for _, o := range g.GetOutput() {
		p.outs[o.GetName()] = true
	}
	readers := map[string]int{}
	producer := map[string]*onnxpb.NodeProto{}
	for _, n := range g.GetNode() {
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			return nil, errorf("quantize: node %q: domain %q: only a float model of the default domain can be quantized", n.GetName(), d)
		}
		switch n.GetOpType() {
		case "QuantizeLinear", "DequantizeLinear":
			return nil, errorf("quantize: node %q is a %s: the model is already quantized", n.GetName(), n.GetOpType())
		case "BatchNormalization":
			return nil, errorf("quantize: node %q: batch norm not folded into its convolution (export with --fold-bn)", n.GetName())
		}
		for _, in := range n.GetInput() {
			readers[in]++
		}
		c := proto.Clone(n).(*onnxpb.NodeProto)
		for _, o := range c.GetOutput() {
			producer[o] = c
		}
		p.nodes = append(p.nodes, c)
	}
	// Merge removable Relus.
	kept := p.nodes[:0]
	for _, n := range p.nodes {
		if n.GetOpType() == "Relu" {
			x := n.GetInput()[0]
			if prev := producer[x]; prev != nil && (prev.GetOpType() == "Conv" || prev.GetOpType() == "Add") && readers[x] == 1 && !p.outs[x] {
				prev.Output[0] = n.GetOutput()[0]
				continue
			}
		}
		kept = append(kept, n)
	}
	p.nodes = kept
	mark := func(t string) error {
		if _, isInit := p.inits[t]; isInit {
			return fmt.Errorf("constant input %q is not supported", t)
		}
		p.isQ[t] = true
		return nil
	}
	for _, n := range p.nodes {
		op := n.GetOpType()
		if !quantOps[op] {
			continue
		}
		acts := n.GetInput()[:1]
		if op == "Add" {
			acts = n.GetInput()[:2]
		}
		if op == "Conv" {
			if len(n.GetInput()) < 2 || p.inits[n.GetInput()[1]] == nil {
				return nil, errorf("quantize: Conv %q: weight is not an initializer", n.GetName())
			}
			if len(n.GetInput()) > 2 && n.GetInput()[2] != "" && p.inits[n.GetInput()[2]] == nil {
				return nil, errorf("quantize: Conv %q: bias is not an initializer", n.GetName())
			}
		}
		for _, a := range acts {
			if err := mark(a); err != nil {
				return nil, errorf("quantize: %s %q: %w", op, n.GetName(), err)
			}
		}
		if len(n.GetOutput()) != 1 {
			return nil, errorf("quantize: %s %q has %d outputs, expected 1", op, n.GetName(), len(n.GetOutput()))
		}
		out := n.GetOutput()[0]
		p.isQ[out] = true
		if op == "MaxPool" {
			src := n.GetInput()[0]
			if s, ok := p.share[src]; ok {
				src = s
			}
			p.share[out] = src
		}
	}
	// Definition order: graph inputs, then node outputs.
	for _, in := range g.GetInput() {
		if p.isQ[in.GetName()] {
			p.quant = append(p.quant, in.GetName())
		}
	}
	for _, n := range p.nodes {
		for _, o := range n.GetOutput() {
			if p.isQ[o] {
				p.quant = append(p.quant, o)
			}
		}
	}
	return p, nil
}

// CalibrationTensors lists the tensors of the float model m (from Build,
// batch norms folded) whose ranges Quantize needs, in definition order:
// the graph input, the outputs of Relus, Convs, Adds and pools.
func CalibrationTensors(m *onnxpb.ModelProto) ([]string, error) {
	p, err := planQDQ(m)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range p.quant {
		if _, shared := p.share[t]; !shared {
			out = append(out, t)
		}
	}
	return out, nil
}

// CalibrationModel returns a copy of m that also outputs each of tensors
// (float32, shape left to the runtime), for collecting activation
// statistics with ONNX Runtime, and the name of the output that carries
// each tensor: the tensor's own name, or name+".calib" (an Identity) for a
// graph input.
func CalibrationModel(m *onnxpb.ModelProto, tensors []string) (*onnxpb.ModelProto, map[string]string, error) {
	c := proto.Clone(m).(*onnxpb.ModelProto)
	g := c.GetGraph()
	inputs, outputs := map[string]bool{}, map[string]bool{}
	for _, in := range g.GetInput() {
		inputs[in.GetName()] = true
	}
	for _, o := range g.GetOutput() {
		outputs[o.GetName()] = true
	}
	defined := map[string]bool{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			defined[o] = true
		}
	}
	where := map[string]string{}
	for _, t := range tensors {
		name := t
		switch {
		case inputs[t]:
			name = t + ".calib"
			g.Node = append([]*onnxpb.NodeProto{node("Identity", name, []string{t}, []string{name})}, g.Node...)
		case !defined[t]:
			return nil, nil, errorf("calibration model: %q is no node output or graph input", t)
		}
		where[t] = name
		if !outputs[name] {
			outputs[name] = true
			vi := valueInfo(name, nil)
			vi.GetType().GetTensorType().Shape = nil // unknown rank: left to the runtime
			g.Output = append(g.Output, vi)
		}
	}
	return c, where, nil
}

// Quantize returns the int8 QDQ form of the float model m (see the
// comment above KeyQuantization) with the activation ranges of
// CalibrationTensors(m) and meta merged into the metadata (KeyQuantization
// and KeyQuantScheme are set here).
func Quantize(m *onnxpb.ModelProto, ranges map[string]Range, meta map[string]string) (*onnxpb.ModelProto, error) {
	p, err := planQDQ(m)
	if err != nil {
		return nil, err
	}
	g := m.GetGraph()
	params := map[string][2]string{} // tensor -> scale, zero point initializer names
	scales := map[string]float32{}
	b := &graphBuilder{values: map[string]string{}, nodes: map[string]bool{}}
	for _, in := range g.GetInput() {
		if err := b.claim(in.GetName(), "graph input"); err != nil {
			return nil, errorf("quantize: %w", err)
		}
	}
	for _, t := range p.quant {
		if _, shared := p.share[t]; shared {
			continue
		}
		r, ok := ranges[t]
		if !ok {
			return nil, errorf("quantize: no calibrated range for %q", t)
		}
		if math.IsNaN(float64(r.Min)) || math.IsNaN(float64(r.Max)) || math.IsInf(float64(r.Min), 0) || math.IsInf(float64(r.Max), 0) || r.Min > r.Max {
			return nil, errorf("quantize: range of %q is [%g, %g], not a finite interval", t, r.Min, r.Max)
		}
		s, z := ActivationParams(r)
		sn, zn := t+"_scale", t+"_zero_point"
		if err := b.init(sn, nil, []float32{s}); err != nil {
			return nil, errorf("quantize: %w", err)
		}
		if err := b.initRaw(sn, zn, onnxpb.TensorProto_UINT8, nil, []byte{z}); err != nil {
			return nil, errorf("quantize: %w", err)
		}
		params[t], scales[t] = [2]string{sn, zn}, s
	}
	for t, src := range p.share {
		params[t], scales[t] = params[src], scales[src]
	}
	// dq is the name consumers read for a quantized tensor.
	dq := func(t string) string {
		if p.outs[t] {
			return t
		}
		return t + "_dequantized"
	}
	qdq := func(t, src string) error {
		pr := params[t]
		if err := b.add(node("QuantizeLinear", t+"_QuantizeLinear", []string{src, pr[0], pr[1]}, []string{t + "_quantized"})); err != nil {
			return err
		}
		return b.add(node("DequantizeLinear", t+"_DequantizeLinear", []string{t + "_quantized", pr[0], pr[1]}, []string{dq(t)}))
	}
	// Weights and biases first, then the graph input's pair.
	done := map[string]bool{}
	for _, n := range p.nodes {
		if n.GetOpType() != "Conv" {
			continue
		}
		x := n.GetInput()[0]
		if err := b.quantizeConv(n, p.inits, scales[x], done); err != nil {
			return nil, errorf("quantize: Conv %q: %w", n.GetName(), err)
		}
	}
	for _, in := range g.GetInput() {
		if p.isQ[in.GetName()] {
			if err := qdq(in.GetName(), in.GetName()); err != nil {
				return nil, errorf("quantize: %w", err)
			}
		}
	}
	usedInit := map[string]bool{}
	for _, n := range p.nodes {
		for i, in := range n.Input {
			if p.isQ[in] {
				n.Input[i] = dq(in)
			} else if _, ok := p.inits[in]; ok {
				if n.GetOpType() == "Conv" && i > 0 {
					n.Input[i] = in + "_dequantized"
				} else {
					usedInit[in] = true
				}
			}
		}
		var pairs [][2]string
		for i, o := range n.Output {
			if p.isQ[o] {
				src := o
				if p.outs[o] {
					src = o + "_prequant"
					n.Output[i] = src
				}
				pairs = append(pairs, [2]string{o, src})
			}
		}
		if err := b.add(n); err != nil {
			return nil, errorf("quantize: %w", err)
		}
		for _, pr := range pairs {
			if err := qdq(pr[0], pr[1]); err != nil {
				return nil, errorf("quantize: %w", err)
			}
		}
	}
	for _, t := range g.GetInitializer() {
		if usedInit[t.GetName()] {
			if err := b.claim(t.GetName(), "initializer"); err != nil {
				return nil, errorf("quantize: %w", err)
			}
			b.g.Initializer = append(b.g.Initializer, t)
		}
	}
	q := proto.Clone(m).(*onnxpb.ModelProto)
	qg := q.GetGraph()
	qg.Node, qg.Initializer = b.g.Node, b.g.Initializer
	md := map[string]string{}
	for _, e := range q.GetMetadataProps() {
		md[e.GetKey()] = e.GetValue()
	}
	for k, v := range meta {
		md[k] = v
	}
	md[KeyQuantization], md[KeyQuantScheme] = QuantInt8, QuantScheme
	q.MetadataProps = nil
	for _, k := range sortedKeys(md) {
		if !isBuiltKey(k) {
			q.MetadataProps = append(q.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(md[k])})
		}
	}
	for _, k := range builtKeys {
		if v, ok := md[k]; ok {
			q.MetadataProps = append(q.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(v)})
		}
	}
	if err := checkModel(q); err != nil {
		return nil, errorf("quantize: produced an invalid model (a bug): %w", err)
	}
	return q, nil
}

func isBuiltKey(k string) bool {
	for _, b := range builtKeys {
		if k == b {
			return true
		}
	}
	return false
}

// quantizeConv writes the int8 weight and int32 bias of Conv n (input
// scale xScale) with their DequantizeLinear nodes.
func (b *graphBuilder) quantizeConv(n *onnxpb.NodeProto, inits map[string]*onnxpb.TensorProto, xScale float32, done map[string]bool) error {
	wName := n.GetInput()[1]
	if done[wName] {
		return fmt.Errorf("weight %q is shared with another Conv", wName)
	}
	done[wName] = true
	wt, err := decodeTensor(inits[wName])
	if err != nil {
		return err
	}
	if len(wt.shape) != 4 {
		return fmt.Errorf("weight %q has shape %v, expected [outC, inC, kh, kw]", wName, wt.shape)
	}
	outC := wt.shape[0]
	w := make([]float32, len(wt.data))
	for i, v := range wt.data {
		w[i] = float32(v)
	}
	ws, err := WeightScales(w, outC)
	if err != nil {
		return err
	}
	var bias []float32
	bName := ""
	if len(n.GetInput()) > 2 && n.GetInput()[2] != "" {
		bName = n.GetInput()[2]
		bt, err := decodeTensor(inits[bName])
		if err != nil {
			return err
		}
		if len(bt.data) != outC {
			return fmt.Errorf("bias %q has %d values for %d output channels", bName, len(bt.data), outC)
		}
		bias = make([]float32, outC)
		for c, v := range bt.data {
			bias[c] = float32(v)
			// An int32 bias must hold b/(s_x*s_w): raise the weight scale of
			// a channel whose weights are tiny next to its bias.
			if need := math.Abs(float64(v)) / (float64(xScale) * (math.MaxInt32 - 1)); float64(ws[c]) < need {
				ws[c] = float32(need * (1 + 1e-6))
			}
		}
	}
	qw := QuantizeWeights(w, ws)
	raw := make([]byte, len(qw))
	for i, v := range qw {
		raw[i] = byte(v)
	}
	if err := b.initRaw(wName, wName+"_quantized", onnxpb.TensorProto_INT8, wt.shape, raw); err != nil {
		return err
	}
	if err := b.init(wName+"_scale", []int{outC}, ws); err != nil {
		return err
	}
	if err := b.initRaw(wName, wName+"_zero_point", onnxpb.TensorProto_INT8, []int{outC}, make([]byte, outC)); err != nil {
		return err
	}
	d := node("DequantizeLinear", wName+"_DequantizeLinear", []string{wName + "_quantized", wName + "_scale", wName + "_zero_point"}, []string{wName + "_dequantized"})
	d.Attribute = []*onnxpb.AttributeProto{attrInt("axis", 0)}
	if err := b.add(d); err != nil {
		return err
	}
	if bName == "" {
		return nil
	}
	qb, bs := QuantizeBias(bias, xScale, ws)
	braw := make([]byte, 4*len(qb))
	for i, v := range qb {
		binary.LittleEndian.PutUint32(braw[4*i:], uint32(v))
	}
	if err := b.initRaw(bName, bName+"_quantized", onnxpb.TensorProto_INT32, []int{outC}, braw); err != nil {
		return err
	}
	if err := b.init(bName+"_scale", []int{outC}, bs); err != nil {
		return err
	}
	if err := b.initRaw(bName, bName+"_zero_point", onnxpb.TensorProto_INT32, []int{outC}, make([]byte, 4*outC)); err != nil {
		return err
	}
	d = node("DequantizeLinear", bName+"_DequantizeLinear", []string{bName + "_quantized", bName + "_scale", bName + "_zero_point"}, []string{bName + "_dequantized"})
	d.Attribute = []*onnxpb.AttributeProto{attrInt("axis", 0)}
	return b.add(d)
}

// initRaw adds an initializer of type dt with little-endian raw data (of
// is the tensor it belongs to, for error messages).
func (b *graphBuilder) initRaw(of, name string, dt onnxpb.TensorProto_DataType, shape []int, raw []byte) error {
	if err := b.claim(name, "initializer of "+of); err != nil {
		return err
	}
	t := &onnxpb.TensorProto{Name: proto.String(name), DataType: proto.Int32(int32(dt)), RawData: raw}
	for _, d := range shape {
		t.Dims = append(t.Dims, int64(d))
	}
	b.g.Initializer = append(b.g.Initializer, t)
	return nil
}

// OpCounts reads the ONNX model at path without Load's checks (it may
// be an optimised model ONNX Runtime wrote, with operators of its own
// domains) and counts its nodes by op type, the domain prefixed for those
// outside the default one ("com.microsoft.QLinearConv").
func OpCounts(path string) (map[string]int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, errorf("op counts: %w", err)
	}
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(raw, m); err != nil {
		return nil, errorf("op counts: %s: %w", path, err)
	}
	counts := map[string]int{}
	for _, n := range m.GetGraph().GetNode() {
		op := n.GetOpType()
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			op = d + "." + op
		}
		counts[op]++
	}
	return counts, nil
}

// FusionSummary renders op counts of an optimised int8 model: the int8
// kernels ONNX Runtime fused and the float convolutions it left (which
// should be none).
func FusionSummary(counts map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(counts) {
		if strings.Contains(k, "QLinear") || strings.HasSuffix(k, "MaxPool") || k == "Conv" || strings.HasSuffix(k, ".Conv") || strings.HasSuffix(k, "FusedConv") {
			parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
		}
	}
	return strings.Join(parts, ", ")
}
