package export_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/runtime"
)

// pythonTools returns a Python with onnx, onnxruntime and numpy (see
// testenv.Python).
func pythonTools(t *testing.T) string { return testenv.Python(t, "onnx", "onnxruntime", "numpy") }

// checkReport is what testdata/check_onnx.py prints.
type checkReport struct {
	ONNX     string                   `json:"onnx"`
	ORT      string                   `json:"onnxruntime"`
	Metadata map[string]string        `json:"metadata"`
	Declared map[string][]interface{} `json:"declared"`
	Inferred map[string][]interface{} `json:"inferred"`
	Outputs  map[string][]int64       `json:"outputs"`
}

// TestPythonChecksEveryArch is the independent check of every registered
// architecture (and the split form of resnet20c), with and without batch-norm folding (the unfolded model
// with dynamic height and width, fed a non-square input): the exported
// model with all its outputs passes onnx.checker.check_model(full_check=True)
// and onnx.shape_inference.infer_shapes(strict_mode=True), the inferred
// output shapes equal the declared ones (fixed-size models), and Python's
// onnxruntime gives the same outputs as Go's runtime.Session on the same
// input: max |Python - Go| <= 1e-5 (both load ONNX Runtime 1.24.3, so the
// outputs are in fact bit-identical).
func TestPythonChecksEveryArch(t *testing.T) {
	needORT(t)
	py := pythonTools(t)
	script, err := filepath.Abs(filepath.Join("testdata", "check_onnx.py"))
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range append(models.Names(), "resnet20c-split") {
		t.Run(arch, func(t *testing.T) {
			spec, w := parityNet(t, arch, 21)
			outs := allOutputs(spec)
			for _, c := range []struct {
				fold, dynamic bool
				n, h, w       int
			}{
				{fold: true, n: 2, h: 32, w: 32},
				{fold: false, dynamic: true, n: 1, h: 40, w: 32},
			} {
				name := fmt.Sprintf("fold=%v/dynamic=%v/%dx%dx%d", c.fold, c.dynamic, c.n, c.h, c.w)
				meta := export.Metadata(arch, "rotation", c.h, []float32{0.485, 0.456, 0.406}, []float32{0.229, 0.224, 0.225}, "cafe", "test")
				m, err := export.Build(spec, w, export.Options{Outputs: outs, FoldBN: c.fold, DynamicHW: c.dynamic, InputSize: c.h, Metadata: meta})
				if err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				modelPath := filepath.Join(dir, "model.onnx")
				if err := export.Write(modelPath, m); err != nil {
					t.Fatal(err)
				}
				shape := []int64{int64(c.n), int64(spec.InC), int64(c.h), int64(c.w)}
				x := normalInput(5, c.n*spec.InC*c.h*c.w)
				inPath := filepath.Join(dir, "input.f32")
				if err := export.WriteF32(inPath, x); err != nil {
					t.Fatal(err)
				}
				outDir := filepath.Join(dir, "out")
				cmd := exec.Command(py, script, modelPath, inPath, fmt.Sprintf("%d,%d,%d,%d", shape[0], shape[1], shape[2], shape[3]), outDir)
				var stderr strings.Builder
				cmd.Stderr = &stderr
				stdout, err := cmd.Output()
				if err != nil {
					t.Fatalf("%s: check_onnx.py (onnx.checker full_check, strict shape inference, onnxruntime) failed: %v\n%s", name, err, stderr.String())
				}
				var rep checkReport
				if err := json.Unmarshal(stdout, &rep); err != nil {
					t.Fatalf("%s: check_onnx.py printed no JSON: %v\n%s", name, err, stdout)
				}
				for k, v := range meta {
					if rep.Metadata[k] != v {
						t.Errorf("%s: Python sees metadata %s = %q, expected %q", name, k, rep.Metadata[k], v)
					}
				}

				sess, err := runtime.Open(modelPath, runtime.Options{})
				if err != nil {
					t.Fatal(err)
				}
				got, err := sess.Run(x, shape, outs...)
				if cerr := sess.Close(); cerr != nil {
					t.Error(cerr)
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(rep.Outputs) != len(outs) {
					t.Errorf("%s: Python onnxruntime produced outputs %v, expected %v", name, rep.Outputs, outs)
				}
				for _, o := range outs {
					if !c.dynamic && fmt.Sprint(rep.Inferred[o]) != fmt.Sprint(rep.Declared[o]) {
						t.Errorf("%s %s: declared shape %v, onnx shape inference gives %v", name, o, rep.Declared[o], rep.Inferred[o])
					}
					pyOut, err := export.ReadF32(filepath.Join(outDir, o+".f32"))
					if err != nil {
						t.Fatal(err)
					}
					if !equal64(rep.Outputs[o], got[o].Shape) {
						t.Fatalf("%s %s: Python onnxruntime shape %v, Go %v", name, o, rep.Outputs[o], got[o].Shape)
					}
					d, scale := maxDiff(t, name+" "+o, pyOut, got[o].Data)
					if scale == 0 {
						t.Errorf("%s %s: output is all zeros; the comparison proves nothing", name, o)
					}
					if d > 1e-5 {
						t.Errorf("%s %s %v: max |Python onnxruntime - Go runtime| %.3g exceeds 1e-5 (output scale %.3g)", name, o, got[o].Shape, d, scale)
					}
					t.Logf("%s %s %v: max |Python - Go| %.2g (scale %.3g)", name, o, got[o].Shape, d, scale)
				}
			}
			t.Logf("onnx checker (full_check) and strict shape inference passed")
		})
	}
}
