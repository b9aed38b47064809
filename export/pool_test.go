package export

import (
	"encoding/json"
	"fmt"
	"github.com/selfsup/selfsup/internal/testenv"
	"math"
	"math/rand"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/models"
)

// TestPoolWindow checks the grid, kernel and stride against values worked
// out by hand, and for every size up to 300 that the windows are equal,
// exactly g of them fit (ONNX floor mode, no padding), they start at 0, the
// last ends at n (every position is covered) and they tile exactly when g
// divides n.
func TestPoolWindow(t *testing.T) {
	for _, c := range []struct{ n, g, k, s int }{
		{1, 1, 1, 1}, {2, 2, 1, 1}, {3, 3, 1, 1}, {4, 4, 1, 1}, {5, 4, 2, 1},
		{7, 4, 4, 1}, {8, 4, 2, 2}, {14, 4, 5, 3}, {16, 4, 4, 4}, {28, 4, 7, 7},
		{32, 4, 8, 8}, {56, 4, 14, 14}, {9, 4, 3, 2},
	} {
		g, k, s := PoolWindow(c.n)
		if g != c.g || k != c.k || s != c.s {
			t.Errorf("PoolWindow(%d) = grid %d, kernel %d, stride %d; expected %d, %d, %d", c.n, g, k, s, c.g, c.k, c.s)
		}
	}
	for n := 1; n <= 300; n++ {
		g, k, s := PoolWindow(n)
		if g != min(PoolGrid, n) || k < s || s < 1 {
			t.Fatalf("n %d: grid %d, kernel %d, stride %d", n, g, k, s)
		}
		if out := (n-k)/s + 1; out != g {
			t.Fatalf("n %d: kernel %d stride %d give %d windows, expected %d", n, k, s, out, g)
		}
		if last := (g-1)*s + k; last != n {
			t.Fatalf("n %d: last window ends at %d", n, last)
		}
		if n%g == 0 && (k != n/g || s != n/g) {
			t.Fatalf("n %d divisible by %d: kernel %d stride %d, expected %d", n, g, k, s, n/g)
		}
	}
}

// poolMap averages a stage map [N, C, H, W] over the documented windows
// (cell i of an axis covers [i*s, i*s+k)) with plain loops, independently of
// the interpreter's AveragePool, and returns [N, C*gh*gw] in C order.
func poolMap(t *testing.T, m models.Tensor) models.Tensor {
	t.Helper()
	if len(m.Shape) != 4 {
		t.Fatalf("stage map shape %v, expected [N, C, H, W]", m.Shape)
	}
	N, C, H, W := m.Shape[0], m.Shape[1], m.Shape[2], m.Shape[3]
	gh, kh, sh := PoolWindow(H)
	gw, kw, sw := PoolWindow(W)
	out := models.Tensor{Shape: []int{N, C * gh * gw}, Data: make([]float32, N*C*gh*gw)}
	for b := 0; b < N; b++ {
		for c := 0; c < C; c++ {
			plane := m.Data[(b*C+c)*H*W : (b*C+c+1)*H*W]
			for i := 0; i < gh; i++ {
				for j := 0; j < gw; j++ {
					var sum float64
					for y := i * sh; y < i*sh+kh; y++ {
						for x := j * sw; x < j*sw+kw; x++ {
							sum += float64(plane[y*W+x])
						}
					}
					out.Data[((b*C+c)*gh+i)*gw+j] = float32(sum / float64(kh*kw))
				}
			}
		}
	}
	return out
}

// absDiff returns max |a - b| and max |b|, failing on a shape mismatch.
func absDiff(t *testing.T, what string, a, b models.Tensor) (diff, scale float64) {
	t.Helper()
	if !equalInts(a.Shape, b.Shape) {
		t.Fatalf("%s: shape %v, expected %v", what, a.Shape, b.Shape)
	}
	for i := range b.Data {
		d := math.Abs(float64(a.Data[i]) - float64(b.Data[i]))
		if math.IsNaN(d) {
			t.Fatalf("%s: value %d is NaN (%v vs %v)", what, i, a.Data[i], b.Data[i])
		}
		diff = math.Max(diff, d)
		scale = math.Max(scale, math.Abs(float64(b.Data[i])))
	}
	return diff, scale
}

// TestPooledOutputsMatchReference exports every stage with its pooled form
// and checks, with the interpreter, that each pooled output equals the
// pooling of the stage map computed by models.Reference (max |diff| <= 1e-5
// without batch-norm folding, where both sides compute in float64; the
// usual 1e-4 relative tolerance with folding, whose weights are rounded to
// float32) and the pooling of the graph's own stage map (<= 1e-5 always).
// resnet20c at 32 px has maps 32/16/8 (the grid tiles them); at 28 px
// 28/14/7 (overlapping windows for 14 and 7); the tiny graph has 5x5 maps
// and a pooled conv output that must not be folded.
func TestPooledOutputsMatchReference(t *testing.T) {
	type net struct {
		name       string
		spec       *models.Spec
		w          models.Weights
		n, size    int
		wantShapes map[string][]int
	}
	spec20, w20 := newNet(t, "resnet20c", 3)
	tspec, tw := tinyNet(t)
	nets := []net{
		{"resnet20c/32px", spec20, w20, 2, 32, map[string][]int{"stage1_pool": {2, 256}, "stage2_pool": {2, 512}, "stage3_pool": {2, 1024}}},
		{"resnet20c/28px", spec20, w20, 1, 28, map[string][]int{"stage1_pool": {1, 256}, "stage2_pool": {1, 512}, "stage3_pool": {1, 1024}}},
		{"tiny/9px", tspec, tw, 3, 9, map[string][]int{"stage1_pool": {3, 64}, "stage2_pool": {3, 64}, "stage4_pool": {3, 64}}},
	}
	for _, nt := range nets {
		t.Run(nt.name, func(t *testing.T) {
			var stages, pools []string
			for _, k := range sortedKeys(nt.spec.Outputs) {
				if k != FeaturesOutput {
					stages = append(stages, k)
					pools = append(pools, k+PoolSuffix)
				}
			}
			x := randomInput(rand.New(rand.NewSource(5)), nt.n*nt.spec.InC*nt.size*nt.size)
			ref, err := models.Reference(nt.spec, nt.w, x, nt.n, nt.size, nt.size, stages)
			if err != nil {
				t.Fatal(err)
			}
			shape := []int{nt.n, nt.spec.InC, nt.size, nt.size}
			for _, fold := range []bool{false, true} {
				// Pooled outputs alone (the stage maps are then inner
				// values), and beside their stage maps.
				for _, outs := range [][]string{pools, append(append([]string{FeaturesOutput}, stages...), pools...)} {
					what := fmt.Sprintf("fold=%v outputs=%d", fold, len(outs))
					m, err := Build(nt.spec, nt.w, Options{Outputs: outs, FoldBN: fold, InputSize: nt.size})
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					got, err := Run(m, x, shape)
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					for _, st := range stages {
						o := st + PoolSuffix
						want := poolMap(t, ref[st])
						if ws, ok := nt.wantShapes[o]; ok && !equalInts(got[o].Shape, ws) {
							t.Errorf("%s %s: shape %v, expected %v", what, o, got[o].Shape, ws)
						}
						d, scale := absDiff(t, what+" "+o+" vs pooled reference", got[o], want)
						tol := 1e-5
						if fold {
							tol = 1e-4 * math.Max(1, scale)
						}
						if d > tol || scale == 0 {
							t.Errorf("%s %s: max |pooled - pool(reference %s)| %.3g exceeds %.3g (scale %.3g)", what, o, st, d, tol, scale)
						}
						if own, ok := got[st]; ok {
							d, _ := absDiff(t, what+" "+o+" vs pooled graph map", got[o], poolMap(t, own))
							if d > 1e-5 {
								t.Errorf("%s %s: max |pooled - pool(graph's %s)| %.3g exceeds 1e-5", what, o, st, d)
							}
						}
						t.Logf("%s %s %v: max |diff| vs pooled reference %.2g (scale %.3g)", what, o, got[o].Shape, d, scale)
					}
				}
			}
		})
	}
}

// TestPooledOutputStructure checks the declared shapes, the nodes written,
// AllOutputs and the errors for pooled outputs.
func TestPooledOutputStructure(t *testing.T) {
	spec, w := newNet(t, "resnet20c", 1)
	all := AllOutputs(spec, false)
	wantAll := []string{"features", "stage1", "stage2", "stage3", "stage1_pool", "stage2_pool", "stage3_pool"}
	if strings.Join(all, ",") != strings.Join(wantAll, ",") {
		t.Errorf("AllOutputs = %v, expected %v", all, wantAll)
	}
	if dyn := AllOutputs(spec, true); strings.Join(dyn, ",") != "features,stage1,stage2,stage3" {
		t.Errorf("AllOutputs(dynamic) = %v, expected no pooled outputs", dyn)
	}
	m, err := Build(spec, w, Options{Outputs: all, FoldBN: true})
	if err != nil {
		t.Fatal(err)
	}
	info := Describe(m)
	want := map[string]string{"stage1_pool": "[N, 256]", "stage2_pool": "[N, 512]", "stage3_pool": "[N, 1024]", "stage3": "[N, 64, 8, 8]"}
	for _, o := range info.Outputs {
		if s, ok := want[o.Name]; ok && o.Shape() != s {
			t.Errorf("output %s declared %s, expected %s", o.Name, o.Shape(), s)
		}
		delete(want, o.Name)
	}
	if len(want) != 0 {
		t.Errorf("outputs missing: %v", want)
	}
	if got := info.OpCounts["AveragePool"]; got != 3 {
		t.Errorf("%d AveragePool nodes, expected 3", got)
	}
	for _, n := range m.Graph.Node {
		if n.GetOpType() == "AveragePool" && n.GetName() == "stage2_pool.avgpool" {
			a := newAttrs(n)
			if k, s := a.ints("kernel_shape", nil), a.ints("strides", nil); !equalInts(k, []int{4, 4}) || !equalInts(s, []int{4, 4}) {
				t.Errorf("stage2_pool (16x16 map): kernel %v, strides %v; expected [4 4] and [4 4]", k, s)
			}
		}
	}
	// Every graph output is written by a node nobody reads.
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

	for _, c := range []struct {
		name string
		opts Options
		want string
	}{
		{"dynamic hw", Options{Outputs: []string{"features", "stage2_pool"}, DynamicHW: true}, `output "stage2_pool" pools stage2 on a grid fixed at export, which needs a fixed input size`},
		{"unknown stage", Options{Outputs: []string{"stage9_pool"}}, `unknown output "stage9_pool" (known: [features stage1 stage2 stage3 stage1_pool stage2_pool stage3_pool])`},
		{"features pooled", Options{Outputs: []string{"features_pool"}}, `unknown output "features_pool"`},
		{"duplicate", Options{Outputs: []string{"stage1_pool", "stage1_pool"}}, `output "stage1_pool" requested twice`},
	} {
		_, err := Build(spec, w, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, expected one containing %q", c.name, err, c.want)
		}
	}
}

// TestRunAveragePool checks the interpreter's AveragePool on values worked
// out by hand: overlapping windows, padding excluded from the count by
// default and included with count_include_pad = 1.
func TestRunAveragePool(t *testing.T) {
	x := &t64{shape: []int{1, 1, 3, 3}, data: []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}}
	for _, c := range []struct {
		name  string
		attrs func() attrs
		shape []int
		want  []float64
	}{
		{"k2 s1", func() attrs {
			n := node("AveragePool", "p", nil, nil)
			n.Attribute = append(n.Attribute, attrInts("kernel_shape", 2, 2), attrInts("strides", 1, 1))
			return newAttrs(n)
		}, []int{1, 1, 2, 2}, []float64{3, 4, 6, 7}},
		{"k2 s2 pad1 excluded", func() attrs {
			n := node("AveragePool", "p", nil, nil)
			n.Attribute = append(n.Attribute, attrInts("kernel_shape", 2, 2), attrInts("strides", 2, 2), attrInts("pads", 1, 1, 1, 1))
			return newAttrs(n)
		}, []int{1, 1, 2, 2}, []float64{1, 2.5, 5.5, 7}},
		{"k2 s2 pad1 included", func() attrs {
			n := node("AveragePool", "p", nil, nil)
			n.Attribute = append(n.Attribute, attrInts("kernel_shape", 2, 2), attrInts("strides", 2, 2), attrInts("pads", 1, 1, 1, 1), attrInt("count_include_pad", 1))
			return newAttrs(n)
		}, []int{1, 1, 2, 2}, []float64{0.25, 1.25, 2.75, 7}},
	} {
		got, err := avgPool(x, c.attrs())
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !equalInts(got.shape, c.shape) {
			t.Fatalf("%s: shape %v, expected %v", c.name, got.shape, c.shape)
		}
		for i := range c.want {
			if math.Abs(got.data[i]-c.want[i]) > 1e-12 {
				t.Errorf("%s: value %d = %v, expected %v (all %v)", c.name, i, got.data[i], c.want[i], got.data)
			}
		}
	}
	n := node("AveragePool", "p", nil, nil)
	n.Attribute = append(n.Attribute, attrInts("kernel_shape", 2, 2), attrInt("ceil_mode", 1))
	if _, err := avgPool(x, newAttrs(n)); err == nil {
		t.Errorf("ceil_mode 1 accepted")
	}
}

// TestPythonONNXCheckPooled runs a model with pooled outputs through
// onnx.checker (full check) and strict shape inference, which must infer
// exactly the declared [N, C*g*g] for every pooled output, and Python's
// onnxruntime, whose pooled outputs must equal the pooling of the
// models.Reference stage maps. resnet20c at 28 px exercises both tiling
// (28 -> 4x4) and overlapping windows (14, 7).
func TestPythonONNXCheckPooled(t *testing.T) {
	py := checkPython(t)
	script := filepath.Join(testenv.RepoRoot(t), "export", "testdata", "check_onnx.py")
	spec, w := newNet(t, "resnet20c", 17)
	const n, size = 2, 28
	outs := AllOutputs(spec, false)
	m, err := Build(spec, w, Options{Outputs: outs, FoldBN: true, InputSize: size})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	modelPath := filepath.Join(dir, "model.onnx")
	if err := Write(modelPath, m); err != nil {
		t.Fatal(err)
	}
	x := randomInput(rand.New(rand.NewSource(12)), n*3*size*size)
	inPath := filepath.Join(dir, "input.f32")
	if err := writeF32(inPath, x); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(dir, "out")
	cmd := exec.Command(py, script, modelPath, inPath, fmt.Sprintf("%d,3,%d,%d", n, size, size), outDir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("check_onnx.py failed: %v\n%s", err, stderr.String())
	}
	var rep pyReport
	if err := json.Unmarshal(stdout, &rep); err != nil {
		t.Fatalf("check_onnx.py printed no JSON: %v\n%s", err, stdout)
	}
	ref, err := models.Reference(spec, w, x, n, size, size, []string{"stage1", "stage2", "stage3"})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"stage1", "stage2", "stage3"} {
		o := st + PoolSuffix
		if fmt.Sprint(rep.Inferred[o]) != fmt.Sprint(rep.Declared[o]) {
			t.Errorf("output %s: declared shape %v, onnx infers %v", o, rep.Declared[o], rep.Inferred[o])
		}
		data, err := readF32(filepath.Join(outDir, o+".f32"))
		if err != nil {
			t.Fatal(err)
		}
		d := compare(t, "onnxruntime "+o, models.Tensor{Shape: rep.OutputShape[o], Data: data}, poolMap(t, ref[st]))
		t.Logf("%s %v (declared %v, inferred %v): max |onnxruntime - pool(reference)| %.2g", o, rep.OutputShape[o], rep.Declared[o], rep.Inferred[o], d)
	}
}
