package ops

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/export/onnxpb"
)

// ONNX's own operator conformance tests (Debian package libonnx-testdata,
// ONNX 1.12): each folder holds a one-node model and input/output
// TensorProtos. Every test of the families below is either run against
// the ops here (float32, tolerance 1e-4 relative) or skipped with the
// attribute that the ops do not support.
const onnxNodeTests = "/usr/share/libonnx-testdata/data/node"

var conformanceFamilies = []string{"test_conv_", "test_batchnorm_", "test_maxpool_", "test_globalaveragepool", "test_relu", "test_add", "test_gemm_", "test_softmax_", "test_logsoftmax_",
	"test_convtranspose", "test_upsample_", "test_resize_"}

type onnxCase struct {
	node    *onnxpb.NodeProto
	inputs  []*tensor.Dense
	outputs []*tensor.Dense
}

func loadTensor(path string) (*tensor.Dense, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tp onnxpb.TensorProto
	if err := proto.Unmarshal(b, &tp); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	shape := make([]int, len(tp.GetDims()))
	n := 1
	for i, d := range tp.GetDims() {
		shape[i] = int(d)
		n *= int(d)
	}
	var data []float32
	switch tp.GetDataType() {
	case int32(onnxpb.TensorProto_FLOAT):
		data = tp.GetFloatData()
		if raw := tp.GetRawData(); len(raw) > 0 {
			data = make([]float32, len(raw)/4)
			for i := range data {
				data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		}
	case int32(onnxpb.TensorProto_INT64):
		// Small integers such as Resize's sizes: exact in float32.
		for _, v := range tp.GetInt64Data() {
			data = append(data, float32(v))
		}
		if raw := tp.GetRawData(); len(raw) > 0 {
			data = make([]float32, len(raw)/8)
			for i := range data {
				data[i] = float32(int64(binary.LittleEndian.Uint64(raw[8*i:])))
			}
		}
	default:
		return nil, fmt.Errorf("dtype %d", tp.GetDataType())
	}
	if len(data) != n {
		return nil, fmt.Errorf("%s: %d values for shape %v", path, len(data), shape)
	}
	if len(shape) == 0 {
		shape = []int{1}
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float32(nil), data...))), nil
}

func loadCase(dir string) (*onnxCase, error) {
	b, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return nil, err
	}
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if len(m.GetGraph().GetNode()) != 1 {
		return nil, fmt.Errorf("%d nodes", len(m.GetGraph().GetNode()))
	}
	c := &onnxCase{node: m.GetGraph().GetNode()[0]}
	for _, kind := range []string{"input", "output"} {
		files, _ := filepath.Glob(filepath.Join(dir, "test_data_set_0", kind+"_*.pb"))
		sort.Strings(files)
		for _, f := range files {
			t, err := loadTensor(f)
			if err != nil {
				return nil, err
			}
			if kind == "input" {
				c.inputs = append(c.inputs, t)
			} else {
				c.outputs = append(c.outputs, t)
			}
		}
	}
	return c, nil
}

type attrs map[string]*onnxpb.AttributeProto

func (a attrs) ints(name string) []int {
	if p, ok := a[name]; ok {
		out := make([]int, len(p.GetInts()))
		for i, v := range p.GetInts() {
			out[i] = int(v)
		}
		return out
	}
	return nil
}

func (a attrs) int(name string, def int) int {
	if p, ok := a[name]; ok {
		return int(p.GetI())
	}
	return def
}

func (a attrs) float(name string, def float64) float64 {
	if p, ok := a[name]; ok {
		return float64(p.GetF())
	}
	return def
}

func allEqual(v []int, want int) bool {
	for _, x := range v {
		if x != want {
			return false
		}
	}
	return true
}

// square2 checks that a 2-D attribute (kernel, strides, pads) is one value
// repeated, returning it (def when absent).
func square2(v []int, def int) (int, bool) {
	if v == nil {
		return def, true
	}
	return v[0], allEqual(v, v[0])
}

func constNode(g *G.ExprGraph, t *tensor.Dense, name string) *G.Node {
	return G.NewTensor(g, tensor.Float32, t.Dims(), G.WithShape(t.Shape()...), G.WithValue(t), G.WithName(name))
}

func transpose2(t *tensor.Dense) *tensor.Dense {
	r, c := t.Shape()[0], t.Shape()[1]
	src := t.Float32s()
	out := make([]float32, r*c)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			out[j*r+i] = src[i*c+j]
		}
	}
	return tensor.New(tensor.WithShape(c, r), tensor.WithBacking(out))
}

func scaled(t *tensor.Dense, s float32) *tensor.Dense {
	out := make([]float32, len(t.Float32s()))
	for i, v := range t.Float32s() {
		out[i] = v * s
	}
	return tensor.New(tensor.WithShape(t.Shape()...), tensor.WithBacking(out))
}

// build maps an ONNX node onto the ops; skip is the reason when the node
// uses something the ops do not support. check returns extra comparisons
// made after the run (batch-norm running statistics).
func build(g *G.ExprGraph, c *onnxCase) (out *G.Node, check func() error, skip string, err error) {
	a := attrs{}
	for _, p := range c.node.GetAttribute() {
		a[p.GetName()] = p
	}
	in := c.inputs
	switch c.node.GetOpType() {
	case "Conv":
		if len(in) != 2 {
			return nil, nil, "conv bias input", nil
		}
		if _, ok := a["auto_pad"]; ok {
			return nil, nil, "auto_pad", nil
		}
		stride, ok1 := square2(a.ints("strides"), 1)
		pad, ok2 := square2(a.ints("pads"), 0)
		if !ok1 || !ok2 || !allEqual(append(a.ints("dilations"), 1), 1) || a.int("group", 1) != 1 {
			return nil, nil, "asymmetric strides/pads, dilation or groups", nil
		}
		out, err = Conv2D(constNode(g, in[0], "x"), constNode(g, in[1], "w"), stride, pad)
	case "BatchNormalization":
		C := in[1].Shape()[0]
		mode := &Mode{Training: a.int("training_mode", 0) == 1}
		mom := a.float("momentum", 0.9)
		st := &BNState{Mean: append([]float32(nil), in[3].Float32s()...), Var: append([]float32(nil), in[4].Float32s()...),
			Momentum: 1 - mom, Eps: a.float("epsilon", 1e-5), Mode: mode}
		out, err = BatchNorm(constNode(g, in[0], "x"), constNode(g, in[1], "s"), constNode(g, in[2], "b"), st)
		if mode.Training && len(c.outputs) == 3 {
			s := in[0].Shape()
			M := float64(s.TotalSize() / C)
			check = func() error {
				for ch := 0; ch < C; ch++ {
					if d := math.Abs(float64(st.Mean[ch] - c.outputs[1].Float32s()[ch])); d > 1e-4 {
						return fmt.Errorf("running mean[%d]: %v, expected %v", ch, st.Mean[ch], c.outputs[1].Float32s()[ch])
					}
					// ONNX updates the running variance with the biased batch
					// variance; selfsup (like PyTorch) with the unbiased one.
					old := float64(in[4].Float32s()[ch]) * mom
					ours := old + (float64(st.Var[ch])-old)*(M-1)/M
					if d := math.Abs(ours - float64(c.outputs[2].Float32s()[ch])); d > 1e-4 {
						return fmt.Errorf("running var[%d]: %v (biased-equivalent %v), expected %v", ch, st.Var[ch], ours, c.outputs[2].Float32s()[ch])
					}
				}
				return nil
			}
		}
	case "MaxPool":
		if _, ok := a["auto_pad"]; ok {
			return nil, nil, "auto_pad", nil
		}
		k := a.ints("kernel_shape")
		if len(k) != 2 || k[0] != k[1] {
			return nil, nil, "kernel not 2-D square", nil
		}
		stride, ok1 := square2(a.ints("strides"), 1)
		pad, ok2 := square2(a.ints("pads"), 0)
		if !ok1 || !ok2 || a.int("ceil_mode", 0) != 0 || a.ints("dilations") != nil || len(c.node.GetOutput()) != 1 {
			return nil, nil, "ceil_mode, dilations, asymmetric pads or indices output", nil
		}
		out, err = MaxPool2D(constNode(g, in[0], "x"), k[0], stride, pad)
	case "GlobalAveragePool":
		if in[0].Dims() != 4 {
			return nil, nil, "not 2-D", nil
		}
		out, err = GlobalAvgPool(constNode(g, in[0], "x"))
	case "Relu":
		out, err = ReLU(constNode(g, in[0], "x"))
	case "Add":
		if !in[0].Shape().Eq(in[1].Shape()) {
			return nil, nil, "broadcasting", nil
		}
		out, err = G.Add(constNode(g, in[0], "a"), constNode(g, in[1], "b"))
	case "Gemm":
		A, B := in[0], in[1]
		if a.int("transA", 0) == 1 {
			A = transpose2(A)
		}
		if a.int("transB", 0) == 0 { // Linear computes x*w^T
			B = transpose2(B)
		}
		A = scaled(A, float32(a.float("alpha", 1)))
		K := B.Shape()[0]
		bias := tensor.New(tensor.WithShape(K), tensor.Of(tensor.Float32))
		if len(in) == 3 {
			cb := scaled(in[2], float32(a.float("beta", 1)))
			switch cb.Shape().TotalSize() {
			case K:
				copy(bias.Float32s(), cb.Float32s())
			case 1:
				for i := range bias.Float32s() {
					bias.Float32s()[i] = cb.Float32s()[0]
				}
			default:
				return nil, nil, "matrix bias C", nil
			}
		}
		out, err = Linear(constNode(g, A, "a"), constNode(g, B, "b"), constNode(g, bias, "c"))
	case "Softmax", "LogSoftmax":
		axis := a.int("axis", -1)
		if c.node.GetOpType() == "Softmax" {
			out, err = Softmax(constNode(g, in[0], "x"), axis)
		} else {
			out, err = LogSoftmax(constNode(g, in[0], "x"), axis)
		}
	case "ConvTranspose":
		if in[0].Dims() != 4 {
			return nil, nil, "not 2-D", nil
		}
		if _, ok := a["auto_pad"]; ok {
			return nil, nil, "auto_pad", nil
		}
		if _, ok := a["output_shape"]; ok {
			return nil, nil, "output_shape", nil
		}
		k := in[1].Shape()
		stride, ok1 := square2(a.ints("strides"), 1)
		pad, ok2 := square2(a.ints("pads"), 0)
		outPad, ok3 := square2(a.ints("output_padding"), 0)
		if !ok1 || !ok2 || !ok3 || k[2] != k[3] {
			return nil, nil, "asymmetric strides/pads/output_padding or non-square kernel", nil
		}
		if !allEqual(append(a.ints("dilations"), 1), 1) || a.int("group", 1) != 1 {
			return nil, nil, "dilation or groups", nil
		}
		x, w := constNode(g, in[0], "x"), constNode(g, in[1], "w")
		if len(in) == 3 {
			out, err = ConvTranspose2DBias(x, w, constNode(g, in[2], "b"), stride, pad, outPad)
		} else {
			out, err = ConvTranspose2D(x, w, stride, pad, outPad)
		}
	case "Upsample", "Resize":
		return buildResize(g, c, a)
	default:
		return nil, nil, "operator " + c.node.GetOpType(), nil
	}
	return out, check, "", err
}

// buildResize maps Upsample (opset 9: X, scales) and Resize (opset 11+: X,
// roi, scales, sizes; absent inputs named "") onto Upsample2DHW. Only
// integer upsampling factors on height and width are supported, with the
// coordinate maps that equal Upsample2DHW's for integer factors f:
//   - nearest: asymmetric + floor reads floor(o/f); half_pixel with
//     round_prefer_floor or round_prefer_ceil reads round((o+0.5)/f - 0.5),
//     and with o = q*f + r that is q + (r - (f-1)/2)/f, whose offset lies
//     strictly inside (-1/2, 1/2), so it rounds to q = floor(o/f) too.
//   - linear: half_pixel (and pytorch_half_pixel, the same for outputs
//     longer than 1) is UpsampleBilinear.
func buildResize(g *G.ExprGraph, c *onnxCase, a attrs) (*G.Node, func() error, string, error) {
	var x, scales, sizes *tensor.Dense
	k := 0
	for i, name := range c.node.GetInput() {
		if name == "" {
			continue
		}
		if k >= len(c.inputs) {
			return nil, nil, "", fmt.Errorf("input %q has no test data", name)
		}
		switch {
		case i == 0:
			x = c.inputs[k]
		case c.node.GetOpType() == "Upsample" && i == 1, i == 2:
			scales = c.inputs[k]
		case i == 3:
			sizes = c.inputs[k]
		default:
			return nil, nil, "roi input", nil
		}
		k++
	}
	if x == nil || x.Dims() != 4 {
		return nil, nil, "not a 4-D input", nil
	}
	xs := x.Shape()
	var f [4]float64
	for d := 0; d < 4; d++ {
		switch {
		case scales != nil && scales.Shape().TotalSize() == 4:
			f[d] = float64(scales.Float32s()[d])
		case sizes != nil && sizes.Shape().TotalSize() == 4:
			f[d] = float64(sizes.Float32s()[d]) / float64(xs[d])
		default:
			return nil, nil, "neither 4 scales nor 4 sizes", nil
		}
	}
	if f[0] != 1 || f[1] != 1 {
		return nil, nil, fmt.Sprintf("scales %v on batch or channels", f), nil
	}
	if f[2] < 1 || f[3] < 1 || f[2] != math.Trunc(f[2]) || f[3] != math.Trunc(f[3]) {
		return nil, nil, fmt.Sprintf("non-integer or downsampling factors %gx%g", f[2], f[3]), nil
	}
	mode := "nearest"
	if p, ok := a["mode"]; ok {
		mode = string(p.GetS())
	}
	ctm, nm := "half_pixel", "round_prefer_floor"
	if c.node.GetOpType() == "Upsample" {
		ctm, nm = "asymmetric", "floor" // Upsample-9's fixed coordinate map
	}
	if p, ok := a["coordinate_transformation_mode"]; ok {
		ctm = string(p.GetS())
	}
	if p, ok := a["nearest_mode"]; ok {
		nm = string(p.GetS())
	}
	var ours string
	switch {
	case mode == "nearest" && (ctm == "asymmetric" && nm == "floor" ||
		ctm == "half_pixel" && (nm == "round_prefer_floor" || nm == "round_prefer_ceil")):
		ours = UpsampleNearest
	case mode == "linear" && (ctm == "half_pixel" || ctm == "pytorch_half_pixel"):
		ours = UpsampleBilinear
	default:
		return nil, nil, fmt.Sprintf("mode %s with %s/%s coordinates", mode, ctm, nm), nil
	}
	out, err := Upsample2DHW(constNode(g, x, "x"), int(f[2]), int(f[3]), ours)
	return out, nil, "", err
}

func TestONNXNodeConformance(t *testing.T) {
	if _, err := os.Stat(onnxNodeTests); err != nil {
		t.Skipf("ONNX operator tests not installed (apt-get install libonnx-testdata; scripts/setup.sh does): %v", err)
	}
	dirs, _ := filepath.Glob(filepath.Join(onnxNodeTests, "test_*"))
	var ran, skipped []string
	for _, dir := range dirs {
		name := filepath.Base(dir)
		fam := false
		for _, f := range conformanceFamilies {
			if strings.HasPrefix(name, f) {
				fam = true
			}
		}
		if !fam || strings.HasSuffix(name, "_expanded") {
			continue
		}
		c, err := loadCase(dir)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s (%v)", name, err))
			continue
		}
		g := G.NewGraph()
		out, check, skip, err := build(g, c)
		if err != nil {
			t.Errorf("%s: build: %v", name, err)
			continue
		}
		if skip != "" {
			skipped = append(skipped, fmt.Sprintf("%s (%s)", name, skip))
			continue
		}
		m := G.NewTapeMachine(g)
		if err := m.RunAll(); err != nil {
			t.Errorf("%s: run: %v", name, err)
			m.Close()
			continue
		}
		got := out.Value().Data().([]float32)
		want := c.outputs[0].Float32s()
		if len(got) != len(want) {
			t.Errorf("%s: %d values, expected %d", name, len(got), len(want))
		} else {
			var scale, maxd float64
			for i := range got {
				scale = math.Max(scale, math.Abs(float64(want[i])))
				maxd = math.Max(maxd, math.Abs(float64(got[i]-want[i])))
			}
			if maxd > 1e-4*math.Max(1, scale) {
				t.Errorf("%s: max abs difference %g (scale %g)", name, maxd, scale)
			}
		}
		if check != nil {
			if err := check(); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		m.Close()
		ran = append(ran, name)
	}
	t.Logf("ran %d ONNX node tests: %s", len(ran), strings.Join(ran, " "))
	t.Logf("skipped %d: %s", len(skipped), strings.Join(skipped, "; "))
	if len(ran) < 20 {
		t.Errorf("only %d node tests ran", len(ran))
	}
}
