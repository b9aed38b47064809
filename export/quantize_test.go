package export

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/export/onnxpb"
	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/runtime"
)

// TestActivationParamsClosedForm checks uint8 scales and zero points
// against values worked out by hand: scale (max-min)/255 over the range
// widened to hold 0, zero point round(-min/scale) half to even.
func TestActivationParamsClosedForm(t *testing.T) {
	cases := []struct {
		r     Range
		scale float32
		zero  uint8
	}{
		{Range{0, 2.55}, float32(2.55 / 255.0), 0},
		{Range{-1, 1}, float32(2.0 / 255.0), 128}, // 127.5 rounds to even
		{Range{1, 3}, float32(3.0 / 255.0), 0},    // widened to [0, 3]
		{Range{-3, -1}, float32(3.0 / 255.0), 255},
		{Range{-0.5, 2}, float32(2.5 / 255.0), 51},
		{Range{0, 0}, 1, 0},
	}
	for _, c := range cases {
		s, z := ActivationParams(c.r)
		if math.Abs(float64(s-c.scale)) > 1e-7*float64(c.scale) || z != c.zero {
			t.Errorf("ActivationParams(%v) = %g, %d; want %g, %d", c.r, s, z, c.scale, c.zero)
		}
	}
	// Weights: max|w_c|/127, zero channels get 1.
	w := []float32{0.5, -1.27, 0.1, 0, 0, 0, 2.54, 1, -1}
	s, err := WeightScales(w, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1.27 / 127, 1, 2.54 / 127}
	for c := range want {
		if math.Abs(float64(s[c]-want[c])) > 1e-7 {
			t.Errorf("weight scale of channel %d = %g, want %g", c, s[c], want[c])
		}
	}
	if q := QuantizeWeights(w, s); fmt.Sprint(q) != "[50 -127 10 0 0 0 127 50 -50]" {
		t.Errorf("quantized weights %v", q)
	}
	if _, err := WeightScales(w, 4); err == nil {
		t.Error("9 weights split into 4 channels: no error")
	}
}

// TestQuantRoundTripWithinHalfScale quantizes and dequantizes values inside
// the calibrated range (activations) and weights (per channel): the error
// is at most half a step.
func TestQuantRoundTripWithinHalfScale(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, r := range []Range{{0, 6}, {-2.5, 7}, {-1, 1}, {0.3, 0.9}, {-4, -1}} {
		s, z := ActivationParams(r)
		lo, hi := min(r.Min, 0), max(r.Max, 0)
		for i := 0; i < 10000; i++ {
			x := lo + float32(rng.Float64())*(hi-lo)
			if i == 0 {
				x = lo
			} else if i == 1 {
				x = hi
			}
			back := DequantizeValue(QuantizeValue(x, s, z), s, z)
			if d := math.Abs(float64(back - x)); d > float64(s)/2*(1+1e-5) {
				t.Fatalf("range %v: %g -> %g, error %g > scale/2 = %g", r, x, back, d, s/2)
			}
		}
		if DequantizeValue(QuantizeValue(0, s, z), s, z) != 0 {
			t.Errorf("range %v: 0 is not exact", r)
		}
	}
	w := make([]float32, 8*27)
	for i := range w {
		w[i] = float32(rng.NormFloat64()) * float32(1+i/27)
	}
	scales, err := WeightScales(w, 8)
	if err != nil {
		t.Fatal(err)
	}
	q := QuantizeWeights(w, scales)
	for i, v := range w {
		s := scales[i/27]
		if d := math.Abs(float64(float32(q[i])*s - v)); d > float64(s)/2*(1+1e-5) {
			t.Fatalf("weight %d: %g -> %d * %g, error %g > scale/2", i, v, q[i], s, d)
		}
	}
}

// TestQuantParamsMatchNumpy compares per-channel weight scales, int8
// weights, int32 biases and activation parameters with a NumPy
// reference of ONNX Runtime's conventions (testdata/quant_ref.py).
func TestQuantParamsMatchNumpy(t *testing.T) {
	py := testenv.Python(t, "numpy")
	rng := rand.New(rand.NewSource(7))
	const outC, per = 6, 3 * 3 * 4
	w := make([]float32, outC*per)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.1 * float64(1+i/per))
	}
	for i := 2 * per; i < 3*per; i++ {
		w[i] = 0 // an all-zero channel
	}
	w[4*per+5] = 3 // an outlier
	w[5*per] = -0.127 * 6 * 1.5
	bias := []float32{0.5, -1.25, 3e-3, 0, 17, -0.75}
	const xScale = float32(0.0213)
	ranges := [][2]float32{{0, 6.1}, {-2.3, 4.7}, {-1, 1}, {0.2, 0.5}, {-3, -0.1}, {0, 0}, {-1e-3, 250}}
	req, _ := json.Marshal(map[string]any{"weights": w, "out_c": outC, "bias": bias, "x_scale": xScale, "ranges": ranges})
	cmd := exec.Command(py, filepath.Join("testdata", "quant_ref.py"))
	cmd.Stdin = strings.NewReader(string(req))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("quant_ref.py: %v\n%s", err, stderr.String())
	}
	var ref struct {
		WScales []float32    `json:"w_scales"`
		WQ      []int8       `json:"w_q"`
		BQ      []int32      `json:"b_q"`
		BScales []float32    `json:"b_scales"`
		Act     [][2]float64 `json:"act"`
	}
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatalf("quant_ref.py output: %v\n%s", err, out)
	}
	scales, err := WeightScales(w, outC)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(scales) != fmt.Sprint(ref.WScales) {
		t.Errorf("weight scales %v, numpy %v", scales, ref.WScales)
	}
	if q := QuantizeWeights(w, scales); fmt.Sprint(q) != fmt.Sprint(ref.WQ) {
		t.Errorf("int8 weights differ from numpy:\n%v\n%v", q, ref.WQ)
	}
	bq, bs := QuantizeBias(bias, xScale, scales)
	if fmt.Sprint(bq) != fmt.Sprint(ref.BQ) || fmt.Sprint(bs) != fmt.Sprint(ref.BScales) {
		t.Errorf("int32 bias %v scales %v, numpy %v scales %v", bq, bs, ref.BQ, ref.BScales)
	}
	for i, r := range ranges {
		s, z := ActivationParams(Range{r[0], r[1]})
		if float64(s) != ref.Act[i][0] || float64(z) != ref.Act[i][1] {
			t.Errorf("range %v: scale %g zero point %d, numpy %g %g", r, s, z, ref.Act[i][0], ref.Act[i][1])
		}
	}
}

// TestCalibratorMethods checks min/max (exact), percentile (against the
// sorted values, to one histogram bin) and entropy (clips a far outlier,
// keeps a range without one).
func TestCalibratorMethods(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	batches := make([][]float32, 4)
	var all []float64
	for b := range batches {
		batches[b] = make([]float32, 5000)
		for i := range batches[b] {
			v := float32(math.Max(0, rng.NormFloat64()*2+0.5)) // a ReLU output
			if b == 2 && i == 17 {
				v = 90 // one outlier
			}
			batches[b][i] = v
			all = append(all, float64(v))
		}
	}
	sort.Float64s(all)
	run := func(spec string) Range {
		m, err := ParseCalibMethod(spec)
		if err != nil {
			t.Fatal(err)
		}
		c := NewCalibrator(m)
		for p := 0; p < c.Passes(); p++ {
			for _, b := range batches {
				if err := c.Observe(p, "x", b); err != nil {
					t.Fatal(err)
				}
			}
		}
		r, err := c.Ranges()
		if err != nil {
			t.Fatal(err)
		}
		return r["x"]
	}
	if r := run("minmax"); float64(r.Min) != all[0] || float64(r.Max) != all[len(all)-1] {
		t.Errorf("minmax range %v, want [%g, %g]", r, all[0], all[len(all)-1])
	}
	bin := (all[len(all)-1] - math.Min(0, all[0])) / CalibBins
	for _, p := range []float64{99.9, 99.99, 99} {
		r := run(fmt.Sprintf("percentile:%g", p))
		k := int((100 - p) / 200 * float64(len(all)))
		lo, hi := all[k], all[len(all)-1-k]
		if math.Abs(float64(r.Min)-lo) > bin+1e-6 || math.Abs(float64(r.Max)-hi) > bin+1e-6 {
			t.Errorf("percentile %g: range %v, sorted values give [%g, %g] (bin %g)", p, r, lo, hi, bin)
		}
	}
	if r := run("entropy"); r.Min != 0 || !(r.Max > 4 && r.Max < 30) {
		t.Errorf("entropy range %v: expected the outlier 90 clipped, the bulk (up to about 8) kept", r)
	}
	for _, bad := range []string{"", "max", "percentile:40", "percentile:x", "minmax:3"} {
		if _, err := ParseCalibMethod(bad); err == nil {
			t.Errorf("ParseCalibMethod(%q): no error", bad)
		}
	}
	c := NewCalibrator(CalibMethod{Kind: CalibMinMax})
	if err := c.Observe(0, "y", []float32{1, float32(math.NaN())}); err == nil {
		t.Error("a NaN activation was accepted")
	}
}

// refActivations computes, with models.Reference (plain Go, batch norm
// unfolded, float64), every tensor CalibrationTensors names, flattened:
// the input itself, layer outputs (a folded Conv writes its batch norm's
// name), "<layer>.gap" (the global pool before Flatten) and
// "<out>.avgpool" of a pooled stage output.
func refActivations(t *testing.T, spec *models.Spec, w models.Weights, x []float32, n, size int, tensors []string) map[string][]float32 {
	t.Helper()
	var layers []string
	for _, name := range tensors {
		switch {
		case name == InputName:
		case strings.HasSuffix(name, ".avgpool"):
			st, ok := IsPooledOutput(spec, strings.TrimSuffix(name, ".avgpool"))
			if !ok {
				t.Fatalf("%s: not a pooled output", name)
			}
			layers = append(layers, spec.Outputs[st])
		default:
			layers = append(layers, strings.TrimSuffix(name, ".gap"))
		}
	}
	ref, err := models.Reference(spec, w, x, n, size, size, dedupe(layers))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for _, name := range tensors {
		switch {
		case name == InputName:
			out[name] = x
		case strings.HasSuffix(name, ".avgpool"):
			st, _ := IsPooledOutput(spec, strings.TrimSuffix(name, ".avgpool"))
			m := ref[spec.Outputs[st]]
			out[name] = avgPoolRef(m)
		default:
			out[name] = ref[strings.TrimSuffix(name, ".gap")].Data
		}
	}
	return out
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// avgPoolRef is the pooled-output AveragePool (PoolWindow) of a map
// [N, C, H, W].
func avgPoolRef(m models.Tensor) []float32 {
	N, C, H, W := m.Shape[0], m.Shape[1], m.Shape[2], m.Shape[3]
	gh, kh, sh := PoolWindow(H)
	gw, kw, sw := PoolWindow(W)
	var out []float32
	for bc := 0; bc < N*C; bc++ {
		for i := 0; i < gh; i++ {
			for j := 0; j < gw; j++ {
				var s float64
				for y := i * sh; y < i*sh+kh; y++ {
					for x := j * sw; x < j*sw+kw; x++ {
						s += float64(m.Data[(bc*H+y)*W+x])
					}
				}
				out = append(out, float32(s/float64(kh*kw)))
			}
		}
	}
	return out
}

// TestQuantizeGraph checks the QDQ graph of resnet20c and resnet18c with
// every output: int8 per-channel weights behind DequantizeLinear(axis 0),
// every Conv and Add input dequantized, no Relu left, float outputs kept
// by name, the metadata; and the pure-Go parts against each other.
func TestQuantizeGraph(t *testing.T) {
	for _, arch := range []string{"resnet20c", "resnet18c"} {
		t.Run(arch, func(t *testing.T) {
			spec, w := newNet(t, arch, 3)
			m, err := Build(spec, w, Options{Outputs: AllOutputs(spec, false), FoldBN: true,
				Metadata: Metadata(arch, "rotation", spec.InputSize, []float32{0.5, 0.5, 0.5}, []float32{0.25, 0.25, 0.25}, "h", "test")})
			if err != nil {
				t.Fatal(err)
			}
			tensors, err := CalibrationTensors(m)
			if err != nil {
				t.Fatal(err)
			}
			ranges := map[string]Range{}
			for i, name := range tensors {
				ranges[name] = Range{-float32(i % 3), 1 + float32(i)}
			}
			q, err := Quantize(m, ranges, map[string]string{KeyQuantCalibration: "minmax"})
			if err != nil {
				t.Fatal(err)
			}
			checkQDQ(t, m, q)
			info := Describe(q)
			if info.Metadata[KeyQuantization] != QuantInt8 || info.Metadata[KeyQuantCalibration] != "minmax" || info.Metadata[KeyArch] != arch ||
				info.Metadata[KeyMean] != "0.5,0.5,0.5" || info.Metadata[KeyQuantScheme] == "" {
				t.Errorf("metadata %v", info.Metadata)
			}
			delete(ranges, tensors[len(tensors)-1])
			if _, err := Quantize(m, ranges, nil); err == nil || !strings.Contains(err.Error(), tensors[len(tensors)-1]) {
				t.Errorf("a missing range: %v", err)
			}
			ranges[tensors[len(tensors)-1]] = Range{1, float32(math.NaN())}
			if _, err := Quantize(m, ranges, nil); err == nil {
				t.Error("a NaN range was accepted")
			}
			if _, err := Quantize(q, ranges, nil); err == nil || !strings.Contains(err.Error(), "already quantized") {
				t.Errorf("quantizing twice: %v", err)
			}
			unfolded, err := Build(spec, w, Options{Outputs: []string{FeaturesOutput}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := CalibrationTensors(unfolded); err == nil || !strings.Contains(err.Error(), "fold") {
				t.Errorf("unfolded batch norms: %v", err)
			}
		})
	}
}

// checkQDQ checks the structure of the QDQ model q made from the float
// model m.
func checkQDQ(t *testing.T, m, q *onnxpb.ModelProto) {
	t.Helper()
	producer := map[string]*onnxpb.NodeProto{}
	for _, n := range q.GetGraph().GetNode() {
		for _, o := range n.GetOutput() {
			producer[o] = n
		}
	}
	inits := map[string]*onnxpb.TensorProto{}
	for _, in := range q.GetGraph().GetInitializer() {
		inits[in.GetName()] = in
	}
	count := func(g *onnxpb.GraphProto, op string) int {
		k := 0
		for _, n := range g.GetNode() {
			if n.GetOpType() == op {
				k++
			}
		}
		return k
	}
	if count(q.GetGraph(), "Relu") != 0 {
		t.Errorf("%d Relu left: each should merge into the Conv or Add before it", count(q.GetGraph(), "Relu"))
	}
	for _, op := range []string{"Conv", "Add", "AveragePool", "GlobalAveragePool", "Flatten"} {
		if count(q.GetGraph(), op) != count(m.GetGraph(), op) {
			t.Errorf("%s: %d nodes, the float model has %d", op, count(q.GetGraph(), op), count(m.GetGraph(), op))
		}
	}
	dqOf := func(name string) *onnxpb.NodeProto {
		p := producer[name]
		if p == nil || p.GetOpType() != "DequantizeLinear" {
			return nil
		}
		return p
	}
	for _, n := range q.GetGraph().GetNode() {
		switch n.GetOpType() {
		case "Conv":
			x, wd := dqOf(n.GetInput()[0]), dqOf(n.GetInput()[1])
			if x == nil || wd == nil {
				t.Fatalf("Conv %q: input or weight not read through DequantizeLinear", n.GetName())
			}
			wq := inits[wd.GetInput()[0]]
			ws := inits[wd.GetInput()[1]]
			if wq.GetDataType() != int32(onnxpb.TensorProto_INT8) || len(ws.GetDims()) != 1 || ws.GetDims()[0] != wq.GetDims()[0] {
				t.Errorf("Conv %q: weight %s %v with scales %v: want int8 with one scale per output channel", n.GetName(), elemTypeName(wq.GetDataType()), wq.GetDims(), ws.GetDims())
			}
			if len(wd.GetAttribute()) != 1 || wd.GetAttribute()[0].GetName() != "axis" || wd.GetAttribute()[0].GetI() != 0 {
				t.Errorf("Conv %q: weight DequantizeLinear attributes %v, want axis 0", n.GetName(), wd.GetAttribute())
			}
			if len(n.GetInput()) > 2 {
				bd := dqOf(n.GetInput()[2])
				if bd == nil || inits[bd.GetInput()[0]].GetDataType() != int32(onnxpb.TensorProto_INT32) {
					t.Errorf("Conv %q: bias not int32 behind DequantizeLinear", n.GetName())
				} else {
					// bias scale = input scale * weight scale
					xs := f32s(inits[x.GetInput()[1]])[0]
					bs, wsv := f32s(inits[bd.GetInput()[1]]), f32s(ws)
					for c := range bs {
						if bs[c] != xs*wsv[c] {
							t.Fatalf("Conv %q channel %d: bias scale %g != input scale %g * weight scale %g", n.GetName(), c, bs[c], xs, wsv[c])
						}
					}
				}
			}
			if len(n.GetOutput()) != 1 {
				t.Fatalf("Conv %q outputs %v", n.GetName(), n.GetOutput())
			}
		case "Add", "AveragePool", "GlobalAveragePool", "MaxPool":
			for _, in := range n.GetInput() {
				if dqOf(in) == nil {
					t.Errorf("%s %q: input %q not read through DequantizeLinear", n.GetOpType(), n.GetName(), in)
				}
			}
		}
	}
	// Every Conv/Add/pool output feeds a QuantizeLinear.
	quantized := map[string]bool{}
	for _, n := range q.GetGraph().GetNode() {
		if n.GetOpType() == "QuantizeLinear" {
			quantized[n.GetInput()[0]] = true
			zp := inits[n.GetInput()[2]]
			if zp.GetDataType() != int32(onnxpb.TensorProto_UINT8) || len(zp.GetDims()) != 0 {
				t.Errorf("QuantizeLinear %q: zero point %s %v, want a uint8 scalar", n.GetName(), elemTypeName(zp.GetDataType()), zp.GetDims())
			}
		}
	}
	for _, n := range q.GetGraph().GetNode() {
		switch n.GetOpType() {
		case "Conv", "Add", "AveragePool", "GlobalAveragePool":
			if !quantized[n.GetOutput()[0]] {
				t.Errorf("%s %q: output %q is not quantized", n.GetOpType(), n.GetName(), n.GetOutput()[0])
			}
		}
	}
	var mo, qo []string
	for _, o := range m.GetGraph().GetOutput() {
		mo = append(mo, o.GetName()+":"+elemTypeName(o.GetType().GetTensorType().GetElemType()))
	}
	for _, o := range q.GetGraph().GetOutput() {
		qo = append(qo, o.GetName()+":"+elemTypeName(o.GetType().GetTensorType().GetElemType()))
	}
	if fmt.Sprint(mo) != fmt.Sprint(qo) {
		t.Errorf("outputs %v, float model %v", qo, mo)
	}
}

func f32s(t *onnxpb.TensorProto) []float32 {
	raw := t.GetRawData()
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

// TestQuantizePythonCheck quantizes resnet20c, resnet18c and resnet50
// (every output), with ranges the min/max of models.Reference's
// activations, and runs the QDQ model through the real onnx checker (full
// check, strict shape inference) and Python's onnxruntime
// (testdata/check_onnx.py): its outputs must agree with the float
// reference on the same input (cosine similarity per image and output).
func TestQuantizePythonCheck(t *testing.T) {
	py := checkPython(t)
	script := filepath.Join(testenv.RepoRoot(t), "export", "testdata", "check_onnx.py")
	for _, c := range []struct {
		arch string
		size int
		long bool
	}{{"resnet20c", 32, false}, {"resnet18c", 32, false}, {"resnet50", 64, true}} {
		t.Run(c.arch, func(t *testing.T) {
			if c.long {
				testenv.Short(t, "slow float64 reference pass of resnet50")
			}
			const n = 2
			spec, w := newNet(t, c.arch, 9)
			outs := AllOutputs(spec, false)
			m, err := Build(spec, w, Options{Outputs: outs, FoldBN: true, InputSize: c.size,
				Metadata: Metadata(c.arch, "rotation", c.size, []float32{0.5, 0.5, 0.5}, []float32{0.25, 0.25, 0.25}, "h", "test")})
			if err != nil {
				t.Fatal(err)
			}
			tensors, err := CalibrationTensors(m)
			if err != nil {
				t.Fatal(err)
			}
			x := randomInput(rand.New(rand.NewSource(4)), n*3*c.size*c.size)
			acts := refActivations(t, spec, w, x, n, c.size, tensors)
			cal := NewCalibrator(CalibMethod{Kind: CalibMinMax})
			for _, name := range tensors {
				if err := cal.Observe(0, name, acts[name]); err != nil {
					t.Fatal(err)
				}
			}
			ranges, err := cal.Ranges()
			if err != nil {
				t.Fatal(err)
			}
			q, err := Quantize(m, ranges, nil)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "int8.onnx")
			if err := Write(path, q); err != nil {
				t.Fatal(err)
			}
			in := filepath.Join(dir, "x.f32")
			if err := writeF32(in, x); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(py, script, path, in, fmt.Sprintf("%d,3,%d,%d", n, c.size, c.size), filepath.Join(dir, "out"))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			stdout, err := cmd.Output()
			if err != nil {
				t.Fatalf("check_onnx.py on the int8 model: %v\n%s", err, stderr.String())
			}
			var rep pyReport
			if err := json.Unmarshal(stdout, &rep); err != nil {
				t.Fatalf("check_onnx.py: %v\n%s", err, stdout)
			}
			if rep.Metadata[KeyQuantization] != QuantInt8 {
				t.Errorf("Python sees metadata %v", rep.Metadata)
			}
			ref, err := models.Reference(spec, w, x, n, c.size, c.size, dedupe(append(stageLayers(spec, outs), FeaturesOutput)))
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range outs {
				got, err := readF32(filepath.Join(dir, "out", o+".f32"))
				if err != nil {
					t.Fatal(err)
				}
				var want []float32
				if st, ok := IsPooledOutput(spec, o); ok {
					want = avgPoolRef(ref[st])
				} else {
					want = ref[o].Data
				}
				if len(got) != len(want) {
					t.Fatalf("%s: %d values, reference %d", o, len(got), len(want))
				}
				d := len(want) / n
				worst := 1.0
				// Random weights and inputs, min/max ranges: measured 0.9985
				// and above (resnet50's deepest maps the lowest). A bias
				// scale 1.5 times too large gives 0.97 to 0.98 on the stage
				// maps and 0.991 to 0.995 on the pooled ones.
				const bound = 0.997
				for i := 0; i < n; i++ {
					cos := runtime.Cosine(got[i*d:(i+1)*d], want[i*d:(i+1)*d])
					worst = math.Min(worst, cos)
					if cos < bound {
						t.Errorf("%s image %d: cosine(int8, float reference) = %.5f < %g", o, i, cos, bound)
					}
				}
				t.Logf("%s: lowest cosine(int8, float reference) %.5f", o, worst)
			}
		})
	}
}

// stageLayers lists the stage outputs the outputs need (a pooled output
// needs its stage).
func stageLayers(spec *models.Spec, outs []string) []string {
	var l []string
	for _, o := range outs {
		if st, ok := IsPooledOutput(spec, o); ok {
			l = append(l, st)
		} else if o != FeaturesOutput {
			l = append(l, o)
		}
	}
	return l
}
