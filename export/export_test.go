package export

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/selfsup/selfsup/export/onnxpb"
	"github.com/selfsup/selfsup/models"
)

// randomBN replaces the freshly initialised batch-norm parameters (gamma 1,
// beta 0, mean 0, var 1, which make folding a no-op) with random ones:
// gamma of either sign, non-zero beta and mean, positive variance.
func randomBN(spec *models.Spec, w models.Weights, rng *rand.Rand) {
	for _, l := range spec.Layers {
		if l.Op != models.OpBatchNorm {
			continue
		}
		g, b := w[l.Name+".weight"].Data, w[l.Name+".bias"].Data
		m, v := w[l.Name+".running_mean"].Data, w[l.Name+".running_var"].Data
		for c := range g {
			g[c] = float32((0.5 + rng.Float64()))
			if rng.Intn(5) == 0 {
				g[c] = -g[c]
			}
			b[c] = float32(rng.NormFloat64() * 0.2)
			m[c] = float32(rng.NormFloat64() * 0.2)
			v[c] = float32(0.25 + 2*rng.Float64())
		}
	}
}

func randomInput(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// newNet makes a registered architecture with random weights and random
// batch-norm statistics.
func newNet(t testing.TB, arch string, seed int64) (*models.Spec, models.Weights) {
	t.Helper()
	spec, err := models.New(arch, 3)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(seed))
	w := models.InitWeights(spec, rng)
	randomBN(spec, w, rng)
	return spec, w
}

// compare checks got against the reference with tolerance
// 1e-4 * max(1, max|ref|) and returns the largest difference.
func compare(t *testing.T, what string, got, ref models.Tensor) float64 {
	t.Helper()
	if !equalInts(got.Shape, ref.Shape) {
		t.Fatalf("%s: shape %v, reference %v", what, got.Shape, ref.Shape)
	}
	var maxRef, maxDiff float64
	for i := range ref.Data {
		maxRef = math.Max(maxRef, math.Abs(float64(ref.Data[i])))
		d := math.Abs(float64(got.Data[i]) - float64(ref.Data[i]))
		if math.IsNaN(d) {
			t.Fatalf("%s: value %d is NaN (got %v, reference %v)", what, i, got.Data[i], ref.Data[i])
		}
		maxDiff = math.Max(maxDiff, d)
	}
	if tol := 1e-4 * math.Max(1, maxRef); maxDiff > tol {
		t.Errorf("%s: max |diff| %.3g exceeds %.3g (max |ref| %.3g)", what, maxDiff, tol, maxRef)
	}
	if maxRef == 0 {
		t.Errorf("%s: reference output is all zeros; the comparison proves nothing", what)
	}
	return maxDiff
}

// TestRunMatchesReference builds every registered architecture and the
// split form of resnet20c (Slice and Concat nodes) with and without
// batch-norm folding and checks the interpreter's outputs (features and
// all four stages) against models.Reference.
func TestRunMatchesReference(t *testing.T) {
	for _, arch := range append(models.Names(), "resnet20c-split") {
		t.Run(arch, func(t *testing.T) {
			spec, w := newNet(t, arch, 1)
			// 32x32 keeps the float64 reference fast; the ImageNet stem
			// still reaches 1x1 at stage 4. A batch of 2 on the smallest
			// net checks batch indexing.
			n, size := 1, 32
			if arch == "resnet20c" {
				n = 2
			}
			x := randomInput(rand.New(rand.NewSource(2)), n*3*size*size)
			outs := []string{"features"}
			for _, k := range sortedKeys(spec.Outputs) {
				if k != "features" {
					outs = append(outs, k)
				}
			}
			start := time.Now()
			ref, err := models.Reference(spec, w, x, n, size, size, outs)
			if err != nil {
				t.Fatal(err)
			}
			tRef := time.Since(start)
			for _, fold := range []bool{true, false} {
				m, err := Build(spec, w, Options{Outputs: outs, FoldBN: fold, InputSize: size})
				if err != nil {
					t.Fatal(err)
				}
				info := Describe(m)
				if fold && info.OpCounts["BatchNormalization"] != 0 {
					t.Errorf("folded model still has %d BatchNormalization nodes", info.OpCounts["BatchNormalization"])
				}
				if !fold && info.OpCounts["BatchNormalization"] == 0 {
					t.Errorf("unfolded model has no BatchNormalization node")
				}
				start := time.Now()
				got, err := Run(m, x, []int{n, 3, size, size})
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range outs {
					d := compare(t, fmt.Sprintf("fold=%v %s", fold, o), got[o], ref[o])
					if o == "features" {
						t.Logf("fold=%v: features %v max|diff| %.2g (reference %v, run %v)", fold, got[o].Shape, d, tRef.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
					}
				}
			}
		})
	}
}

// tinySpec is a hand-made graph that exercises the exporter's corner cases:
// a conv with bias folded into a batch norm, a batch norm after a non-conv
// layer (never folded), a conv whose output is itself a graph output (not
// folded), two outputs naming the same layer, an output read by later
// layers, max pooling with padding, and an ImageNet-style stride.
func tinySpec() *models.Spec {
	L := func(l models.Layer) models.Layer { return l }
	return &models.Spec{
		Arch: "tiny", InC: 2, InputSize: 9, FeatureDim: 4,
		Layers: []models.Layer{
			L(models.Layer{Name: "c1", Op: models.OpConv, Inputs: []string{"images"}, Kernel: 3, Stride: 2, Pad: 1, InC: 2, OutC: 4, Bias: true}),
			L(models.Layer{Name: "bn1", Op: models.OpBatchNorm, Inputs: []string{"c1"}, InC: 4, OutC: 4, Eps: 1e-3}),
			L(models.Layer{Name: "r1", Op: models.OpRelu, Inputs: []string{"bn1"}}),
			L(models.Layer{Name: "p1", Op: models.OpMaxPool, Inputs: []string{"r1"}, Kernel: 3, Stride: 1, Pad: 1}),
			L(models.Layer{Name: "bn2", Op: models.OpBatchNorm, Inputs: []string{"p1"}, InC: 4, OutC: 4, Eps: 1e-5}),
			L(models.Layer{Name: "c2", Op: models.OpConv, Inputs: []string{"bn2"}, Kernel: 1, Stride: 1, Pad: 0, InC: 4, OutC: 4}),
			L(models.Layer{Name: "bn3", Op: models.OpBatchNorm, Inputs: []string{"c2"}, InC: 4, OutC: 4, Eps: 1e-5}),
			L(models.Layer{Name: "add", Op: models.OpAdd, Inputs: []string{"bn3", "p1"}}),
			L(models.Layer{Name: "pool", Op: models.OpGlobalAvgPool, Inputs: []string{"add"}}),
		},
		Outputs: map[string]string{"features": "pool", "stage1": "p1", "stage2": "c2", "stage3": "add", "stage4": "add"},
	}
}

func tinyNet(t testing.TB) (*models.Spec, models.Weights) {
	spec := tinySpec()
	rng := rand.New(rand.NewSource(7))
	w := models.InitWeights(spec, rng)
	for _, name := range w.Names() {
		if strings.HasSuffix(name, ".bias") && strings.HasPrefix(name, "c") {
			for i := range w[name].Data {
				w[name].Data[i] = float32(rng.NormFloat64())
			}
		}
	}
	randomBN(spec, w, rng)
	if err := spec.Validate(w); err != nil {
		t.Fatal(err)
	}
	return spec, w
}

func TestTinyCornerCases(t *testing.T) {
	spec, w := tinyNet(t)
	outs := []string{"features", "stage1", "stage2", "stage3", "stage4"}
	x := randomInput(rand.New(rand.NewSource(3)), 3*2*9*9)
	ref, err := models.Reference(spec, w, x, 3, 9, 9, outs)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Build(spec, w, Options{Outputs: outs, FoldBN: true})
	if err != nil {
		t.Fatal(err)
	}
	info := Describe(m)
	// bn1 folds into c1; bn2 follows a pool; bn3 follows c2, which is an
	// output itself, so neither of those folds.
	if got := info.OpCounts["BatchNormalization"]; got != 2 {
		t.Errorf("%d BatchNormalization nodes, expected 2 (bn2, bn3)", got)
	}
	if got := info.OpCounts["Conv"]; got != 2 {
		t.Errorf("%d Conv nodes, expected 2", got)
	}
	// Every graph output is written by a node nobody else reads.
	readers := map[string]int{}
	for _, n := range m.Graph.Node {
		for _, in := range n.Input {
			readers[in]++
		}
	}
	for _, o := range m.Graph.Output {
		if readers[o.GetName()] != 0 {
			t.Errorf("graph output %q is read by %d nodes", o.GetName(), readers[o.GetName()])
		}
	}
	got, err := Run(m, x, []int{3, 2, 9, 9})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		compare(t, o, got[o], ref[o])
	}
	if !equalInts(got["stage4"].Shape, []int{3, 4, 5, 5}) {
		t.Errorf("stage4 shape %v, expected [3 4 5 5]", got["stage4"].Shape)
	}
}

// TestFoldArithmetic checks folded parameters against the closed form on
// one channel computed by hand.
func TestFoldArithmetic(t *testing.T) {
	spec := &models.Spec{
		Arch: "one", InC: 1, InputSize: 1, FeatureDim: 1,
		Layers: []models.Layer{
			{Name: "c", Op: models.OpConv, Inputs: []string{"images"}, Kernel: 1, Stride: 1, InC: 1, OutC: 1, Bias: true},
			{Name: "bn", Op: models.OpBatchNorm, Inputs: []string{"c"}, InC: 1, OutC: 1, Eps: 0.25},
			{Name: "pool", Op: models.OpGlobalAvgPool, Inputs: []string{"bn"}},
		},
		Outputs: map[string]string{"features": "pool"},
	}
	w := models.Weights{
		"c.weight":        {Shape: []int{1, 1, 1, 1}, Data: []float32{2}},
		"c.bias":          {Shape: []int{1}, Data: []float32{1}},
		"bn.weight":       {Shape: []int{1}, Data: []float32{3}},
		"bn.bias":         {Shape: []int{1}, Data: []float32{0.5}},
		"bn.running_mean": {Shape: []int{1}, Data: []float32{4}},
		"bn.running_var":  {Shape: []int{1}, Data: []float32{2}},
	}
	m, err := Build(spec, w, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	// scale = 3/sqrt(2.25) = 2; W' = 4; b' = 0.5 + (1-4)*2 = -5.5.
	want := map[string]float32{"c.weight": 4, "c.bias": -5.5}
	for _, init := range m.Graph.Initializer {
		tt, err := decodeTensor(init)
		if err != nil {
			t.Fatal(err)
		}
		if w, ok := want[init.GetName()]; !ok || len(tt.data) != 1 || float32(tt.data[0]) != w {
			t.Errorf("initializer %s = %v, expected %v", init.GetName(), tt.data, want[init.GetName()])
		}
		delete(want, init.GetName())
	}
	if len(want) != 0 {
		t.Errorf("initializers missing: %v", want)
	}
	got, err := Run(m, []float32{1.5}, []int{1, 1, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	// BN(2*1.5+1) = (4-4)/1.5*3+0.5 = 0.5.
	if f := got["features"]; !equalInts(f.Shape, []int{1, 1}) || f.Data[0] != 0.5 {
		t.Errorf("features %v %v, expected [1 1] [0.5]", f.Shape, f.Data)
	}
}

func TestBuildStructure(t *testing.T) {
	spec, w := newNet(t, "resnet20c", 1)
	meta := Metadata("resnet20c", "rotation", 32, []float32{0.4914, 0.4822, 0.4465}, []float32{0.247, 0.243, 0.261}, "abc123", "0.1.0")
	m, err := Build(spec, w, Options{Outputs: []string{"features", "stage2"}, FoldBN: true, Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	if m.GetIrVersion() != 8 || len(m.OpsetImport) != 1 || m.OpsetImport[0].GetDomain() != "" || m.OpsetImport[0].GetVersion() != 17 {
		t.Errorf("IR %d, opsets %v; expected IR 8, ai.onnx 17", m.GetIrVersion(), m.OpsetImport)
	}
	if m.GetProducerName() != "selfsup" || m.GetProducerVersion() != "0.1.0" {
		t.Errorf("producer %q %q", m.GetProducerName(), m.GetProducerVersion())
	}
	info := Describe(m)
	if len(info.Inputs) != 1 || info.Inputs[0].Name != "images" || info.Inputs[0].Shape() != "[N, 3, 32, 32]" || info.Inputs[0].ElemType != "float32" {
		t.Errorf("inputs %+v", info.Inputs)
	}
	if len(info.Outputs) != 2 || info.Outputs[0].Name != "features" || info.Outputs[0].Shape() != "[N, 64]" ||
		info.Outputs[1].Name != "stage2" || info.Outputs[1].Shape() != "[N, 32, 16, 16]" {
		t.Errorf("outputs %+v", info.Outputs)
	}
	// resnet20c: 19 convs + 2 projection shortcuts, all folded; stage3's
	// layers are needed for features; stage2 needs an Identity because
	// layer3.0 reads it.
	wantOps := map[string]int{"Conv": 21, "Relu": 19, "Add": 9, "GlobalAveragePool": 1, "Flatten": 1, "Identity": 1}
	for op, n := range wantOps {
		if info.OpCounts[op] != n {
			t.Errorf("%d %s nodes, expected %d (all: %v)", info.OpCounts[op], op, n, info.OpCounts)
		}
	}
	if len(info.OpCounts) != len(wantOps) {
		t.Errorf("op types %v, expected exactly %v", info.OpCounts, wantOps)
	}
	var params int64
	for _, p := range spec.Params() {
		if strings.HasSuffix(p.Name, ".weight") && len(p.Shape) == 4 {
			params += int64(p.Shape[0] * p.Shape[1] * p.Shape[2] * p.Shape[3])
			params += int64(p.Shape[0]) // folded bias
		}
	}
	if info.Parameters != params {
		t.Errorf("%d parameters, expected %d (conv weights + folded biases)", info.Parameters, params)
	}
	for k, v := range meta {
		if info.Metadata[k] != v {
			t.Errorf("metadata %s = %q, expected %q", k, info.Metadata[k], v)
		}
	}
	if info.Metadata[KeyMean] != "0.4914,0.4822,0.4465" {
		t.Errorf("mean %q", info.Metadata[KeyMean])
	}
	mean, err := ParseFloats(info.Metadata[KeyMean])
	if err != nil || len(mean) != 3 || mean[1] != 0.4822 {
		t.Errorf("ParseFloats(mean) = %v, %v", mean, err)
	}

	// Only the layers the requested outputs need: stage1 alone stops
	// after layer1.
	m1, err := Build(spec, w, Options{Outputs: []string{"stage1"}, FoldBN: true})
	if err != nil {
		t.Fatal(err)
	}
	i1 := Describe(m1)
	if i1.OpCounts["Conv"] != 7 || i1.OpCounts["Identity"] != 0 || i1.OpCounts["GlobalAveragePool"] != 0 {
		t.Errorf("stage1-only model ops %v, expected 7 Conv, no Identity, no pooling", i1.OpCounts)
	}

	// Dynamic height and width.
	md, err := Build(spec, w, Options{Outputs: []string{"features", "stage3"}, FoldBN: true, DynamicHW: true})
	if err != nil {
		t.Fatal(err)
	}
	id := Describe(md)
	if id.Inputs[0].Shape() != "[N, 3, H, W]" || id.Outputs[1].Shape() != "[N, 64, ?, ?]" {
		t.Errorf("dynamic model: input %s, stage3 %s", id.Inputs[0].Shape(), id.Outputs[1].Shape())
	}
	if id.Metadata[KeyInputSize] != "32" {
		t.Errorf("dynamic model: input size metadata %q", id.Metadata[KeyInputSize])
	}
	x := randomInput(rand.New(rand.NewSource(5)), 1*3*20*24)
	ref, err := models.Reference(spec, w, x, 1, 20, 24, []string{"features", "stage3"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Run(md, x, []int{1, 3, 20, 24})
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "dynamic features", got["features"], ref["features"])
	compare(t, "dynamic stage3", got["stage3"], ref["stage3"])
	if _, err := Run(m, x, []int{1, 3, 20, 24}); err == nil {
		t.Errorf("fixed-size model accepted a 20x24 input")
	}
}

func TestBuildErrors(t *testing.T) {
	spec, w := newNet(t, "resnet20c", 1)
	cases := []struct {
		name string
		opts Options
		edit func(models.Weights)
		want string
	}{
		{"unknown output", Options{Outputs: []string{"stage7"}}, nil, `unknown output "stage7"`},
		{"duplicate output", Options{Outputs: []string{"features", "features"}}, nil, "requested twice"},
		{"bad metadata", Options{Metadata: map[string]string{KeyArch: "resnet50"}}, nil, "contradicts"},
		{"empty metadata key", Options{Metadata: map[string]string{"": "x"}}, nil, "empty key"},
		{"negative input size", Options{InputSize: -3}, nil, "must be positive"},
		{"missing weight", Options{}, func(w models.Weights) { delete(w, "stem.bn.running_var") }, "missing"},
		{"negative variance", DefaultOptions(), func(w models.Weights) { w["layer1.0.1.bn.running_var"].Data[3] = -1 }, "channel 3"},
		{"negative variance unfolded", Options{}, func(w models.Weights) { w["layer1.0.1.bn.running_var"].Data[3] = -1 }, "channel 3"},
	}
	// A kernel larger than the padded input.
	big := &models.Spec{Arch: "big", InC: 1, InputSize: 3, FeatureDim: 1, Outputs: map[string]string{"features": "pool"},
		Layers: []models.Layer{
			{Name: "c", Op: models.OpConv, Inputs: []string{"images"}, Kernel: 5, Stride: 1, InC: 1, OutC: 1},
			{Name: "pool", Op: models.OpGlobalAvgPool, Inputs: []string{"c"}},
		}}
	bw := models.InitWeights(big, rand.New(rand.NewSource(1)))
	if _, err := Build(big, bw, DefaultOptions()); err == nil || !strings.Contains(err.Error(), "smaller than the kernel") {
		t.Errorf("5x5 kernel on a 3x3 input: error %v", err)
	}
	if _, err := Build(big, bw, Options{InputSize: 5}); err != nil {
		t.Errorf("5x5 kernel on a 5x5 input: %v", err)
	}
	for _, c := range cases {
		ww := models.Weights{}
		for k, v := range w {
			ww[k] = models.Tensor{Shape: v.Shape, Data: append([]float32(nil), v.Data...)}
		}
		if c.edit != nil {
			c.edit(ww)
		}
		_, err := Build(spec, ww, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "export: ") {
			t.Errorf("%s: error %v, expected one containing %q", c.name, err, c.want)
		}
	}
}

func TestMarshalRoundTripAndInspect(t *testing.T) {
	spec, w := newNet(t, "resnet20c", 4)
	meta := Metadata("resnet20c", "jigsaw", 32, []float32{0.5, 0.5, 0.5}, []float32{0.25, 0.25, 0.25}, "cfg0", "1.2.3")
	m, err := Build(spec, w, Options{Outputs: []string{"features", "stage1"}, FoldBN: true, Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	b1, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(b1)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m, back) {
		t.Fatal("model changed in a marshal/unmarshal round trip")
	}
	b2, err := Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Error("marshalling is not deterministic")
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "backbone.onnx")
	if err := Write(path, m); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, m); err != nil { // overwrite in place
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after Write, expected only the model (no temp files)", len(entries))
	}
	info, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Bytes != int64(len(b1)) || info.IRVersion != 8 || info.Opsets[""] != 17 {
		t.Errorf("info: %d bytes (want %d), IR %d, opsets %v", info.Bytes, len(b1), info.IRVersion, info.Opsets)
	}
	s := info.String()
	for _, want := range []string{
		"images float32 [N, 3, 32, 32]", "features float32 [N, 64]", "stage1 float32 [N, 16, 32, 32]",
		"selfsup.arch = resnet20c", "selfsup.task = jigsaw", "selfsup.mean = 0.5,0.5,0.5", "selfsup.std = 0.25,0.25,0.25",
		"selfsup.layout = NCHW", "selfsup.input_size = 32", "selfsup.config_hash = cfg0", "selfsup.version = 1.2.3",
		"IR version 8", "ai.onnx 17", "Conv 21",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("Info.String() lacks %q:\n%s", want, s)
		}
	}
	t.Logf("\n%s", s)

	// The file read back computes the same as the model in memory.
	x := randomInput(rand.New(rand.NewSource(9)), 3*32*32)
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Run(m, x, []int{1, 3, 32, 32})
	if err != nil {
		t.Fatal(err)
	}
	bb, err := Run(loaded, x, []int{1, 3, 32, 32})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"features", "stage1"} {
		for i := range a[o].Data {
			if a[o].Data[i] != bb[o].Data[i] {
				t.Fatalf("%s[%d]: %v in memory, %v from file", o, i, a[o].Data[i], bb[o].Data[i])
			}
		}
	}
}

// TestTruncatedFiles cuts a small model at every byte and at the ends of
// its top-level fields: each cut must fail to load with an error that
// names the file, never load as a smaller model.
func TestTruncatedFiles(t *testing.T) {
	spec, w := tinyNet(t)
	m, err := Build(spec, w, Options{Outputs: []string{"features", "stage2"}, FoldBN: true,
		Metadata: Metadata("tiny", "rotation", 9, []float32{0.5, 0.5}, []float32{0.2, 0.2}, "h", "v")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "cut.onnx")
	for n := 0; n < len(b); n++ {
		if err := os.WriteFile(path, b[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Inspect(path)
		if err == nil {
			t.Fatalf("a file cut to %d of %d bytes loaded without error", n, len(b))
		}
		if !strings.Contains(err.Error(), path) || !strings.HasPrefix(err.Error(), "export: ") {
			t.Fatalf("cut to %d bytes: error %q does not start with export: and name the file", n, err)
		}
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(path); err != nil {
		t.Fatalf("the whole file fails: %v", err)
	}
	// Corrupt: the header overwritten with 0xff (an overlong varint).
	bad := append([]byte(nil), b...)
	for i := 0; i < 16; i++ {
		bad[i] = 0xff
	}
	if _, err := Unmarshal(bad); err == nil {
		t.Error("a model with its first 16 bytes set to 0xff loaded without error")
	}
	if _, err := Unmarshal([]byte("this is not an onnx model at all")); err == nil {
		t.Error("text loaded as a model")
	}
	if _, err := Inspect(filepath.Join(dir, "absent.onnx")); err == nil {
		t.Error("a missing file loaded")
	}
}

// TestRunRejectsUnsupported makes sure the oracle refuses what it does not
// implement instead of computing something else.
func TestRunRejectsUnsupported(t *testing.T) {
	spec, w := tinyNet(t)
	x := randomInput(rand.New(rand.NewSource(1)), 2*9*9)
	edits := map[string]func(m *onnxpb.ModelProto){
		"unknown op": func(m *onnxpb.ModelProto) { m.Graph.Node[1].OpType = proto.String("Sigmoid") },
		"group 2": func(m *onnxpb.ModelProto) {
			for _, a := range m.Graph.Node[0].Attribute {
				if a.GetName() == "group" {
					a.I = proto.Int64(2)
				}
			}
		},
		"unknown attribute": func(m *onnxpb.ModelProto) {
			m.Graph.Node[0].Attribute = append(m.Graph.Node[0].Attribute, attrInt("ceil_mode", 1))
		},
		"ceil mode": func(m *onnxpb.ModelProto) {
			for _, n := range m.Graph.Node {
				if n.GetOpType() == "MaxPool" {
					n.Attribute = append(n.Attribute, attrInt("ceil_mode", 1))
				}
			}
		},
		"undefined input": func(m *onnxpb.ModelProto) { m.Graph.Node[1].Input[0] = "nowhere" },
	}
	for name, edit := range edits {
		m, err := Build(spec, w, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		edit(m)
		if _, err := Run(m, x, []int{1, 2, 9, 9}); err == nil {
			t.Errorf("%s: Run did not fail", name)
		}
	}
}

// TestSplitStructure: a split backbone exports as one graph: two Slice
// nodes (channel 0, channels 1-2, with int64 starts/ends/axes that are no
// parameters) feeding two half-width branches, and a Concat node writing
// every output; the features output is the concatenation of the halves'
// pooled features. The interpreter rejects Slice steps other than 1.
func TestSplitStructure(t *testing.T) {
	spec, w := newNet(t, "resnet20c-split", 3)
	m, err := Build(spec, w, Options{Outputs: []string{"features", "stage2", "stage3_pool"}, FoldBN: true})
	if err != nil {
		t.Fatal(err)
	}
	info := Describe(m)
	if info.Inputs[0].Shape() != "[N, 3, 32, 32]" || info.Outputs[0].Shape() != "[N, 64]" || info.Outputs[1].Shape() != "[N, 32, 16, 16]" || info.Outputs[2].Shape() != "[N, 1024]" {
		t.Fatalf("inputs %+v, outputs %+v", info.Inputs, info.Outputs)
	}
	if info.OpCounts["Slice"] != 2 || info.OpCounts["Concat"] != 3 || info.OpCounts["Conv"] != 42 || info.OpCounts["GlobalAveragePool"] != 2 {
		t.Fatalf("ops %v: expected 2 Slice, 3 Concat (features, stage2, stage3), 2 x 21 Conv, 2 pools", info.OpCounts)
	}
	var params int64
	for _, p := range spec.Params() {
		if strings.HasSuffix(p.Name, ".weight") && len(p.Shape) == 4 {
			params += int64(p.Shape[0]*p.Shape[1]*p.Shape[2]*p.Shape[3]) + int64(p.Shape[0])
		}
	}
	if info.Parameters != params {
		t.Errorf("%d parameters, expected %d", info.Parameters, params)
	}
	slices := map[string][2]int64{}
	inits := map[string][]int64{}
	for _, in := range m.Graph.Initializer {
		if onnxpb.TensorProto_DataType(in.GetDataType()) == onnxpb.TensorProto_INT64 {
			raw := in.GetRawData()
			for i := 0; i+8 <= len(raw); i += 8 {
				inits[in.GetName()] = append(inits[in.GetName()], int64(binary.LittleEndian.Uint64(raw[i:])))
			}
		}
	}
	for _, n := range m.Graph.Node {
		switch n.GetOpType() {
		case "Slice":
			if n.Input[0] != InputName || len(n.Input) != 4 || inits[n.Input[3]][0] != 1 {
				t.Fatalf("slice %s reads %v", n.GetName(), n.Input)
			}
			slices[n.GetName()] = [2]int64{inits[n.Input[1]][0], inits[n.Input[2]][0]}
		case "Concat":
			if len(n.Input) != 2 || !strings.HasPrefix(n.Input[0], "l.") || !strings.HasPrefix(n.Input[1], "ab.") {
				t.Fatalf("concat %s reads %v", n.GetName(), n.Input)
			}
		}
	}
	if slices["l.input"] != [2]int64{0, 1} || slices["ab.input"] != [2]int64{1, 3} {
		t.Fatalf("slices %v", slices)
	}
	x := randomInput(rand.New(rand.NewSource(5)), 2*3*32*32)
	got, err := Run(m, x, []int{2, 3, 32, 32})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := models.Reference(spec, w, x, 2, 32, 32, []string{"features", "l.features", "ab.features"})
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "features", got["features"], ref["features"])
	for b := 0; b < 2; b++ {
		half := models.Tensor{Shape: []int{1, 32}, Data: got["features"].Data[b*64 : b*64+32]}
		compare(t, "l half", half, models.Tensor{Shape: []int{1, 32}, Data: ref["l.features"].Data[b*32 : (b+1)*32]})
		half.Data = got["features"].Data[b*64+32 : (b+1)*64]
		compare(t, "ab half", half, models.Tensor{Shape: []int{1, 32}, Data: ref["ab.features"].Data[b*32 : (b+1)*32]})
	}
	for _, n := range m.Graph.Node {
		if n.GetOpType() == "Slice" {
			n.Input = append(n.Input, n.Input[3]) // steps: the axes tensor, [1]
		}
	}
	if _, err := Run(m, x, []int{2, 3, 32, 32}); err != nil {
		t.Fatalf("steps of 1 refused: %v", err)
	}
	m.Graph.Initializer = append(m.Graph.Initializer, &onnxpb.TensorProto{Name: proto.String("two"), DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Dims: []int64{1}, Int64Data: []int64{2}})
	for _, n := range m.Graph.Node {
		if n.GetOpType() == "Slice" {
			n.Input[4] = "two"
		}
	}
	if _, err := Run(m, x, []int{2, 3, 32, 32}); err == nil {
		t.Fatal("Slice with steps 2 accepted")
	}
}
