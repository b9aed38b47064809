package export

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/models"
)

// checkPython returns a Python with onnx, onnxruntime and numpy (see
// testenv.Python).
func checkPython(t *testing.T) string { return testenv.Python(t, "onnx", "onnxruntime", "numpy") }

type pyReport struct {
	ONNX        string                   `json:"onnx"`
	ORT         string                   `json:"onnxruntime"`
	IRVersion   int                      `json:"ir_version"`
	Opsets      map[string]int           `json:"opsets"`
	Metadata    map[string]string        `json:"metadata"`
	Declared    map[string][]interface{} `json:"declared"`
	Inferred    map[string][]interface{} `json:"inferred"`
	OutputShape map[string][]int         `json:"outputs"`
}

// WriteF32 and ReadF32 give the external test package (export_test) the
// raw little-endian float32 files the Python scripts read and write.
var WriteF32, ReadF32 = writeF32, readF32

func writeF32(path string, x []float32) error {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return os.WriteFile(path, b, 0o644)
}

func readF32(path string) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%s: %d bytes is not a whole number of float32", path, len(b))
	}
	x := make([]float32, len(b)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x, nil
}

// TestPythonONNXCheck runs exported models through onnx.checker (full
// check), strict shape inference and Python's onnxruntime, and compares
// onnxruntime's outputs with models.Reference.
func TestPythonONNXCheck(t *testing.T) {
	py := checkPython(t)
	script := filepath.Join(testenv.RepoRoot(t), "export", "testdata", "check_onnx.py")
	cases := []struct {
		arch    string
		fold    bool
		dynamic bool
		n, h, w int
		outputs []string
		long    bool
	}{
		{"resnet20c", true, false, 2, 32, 32, []string{"features", "stage1", "stage2", "stage3"}, false},
		{"resnet20c", false, true, 1, 40, 48, []string{"features", "stage2"}, false},
		{"resnet18c", true, false, 1, 32, 32, []string{"features", "stage4"}, false},
		{"resnet18", false, true, 1, 64, 64, []string{"features", "stage1"}, false},
		{"resnet50", true, false, 1, 64, 64, []string{"features", "stage3"}, true},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s/fold=%v/dynamic=%v/%dx%d", c.arch, c.fold, c.dynamic, c.h, c.w)
		t.Run(name, func(t *testing.T) {
			if c.long && testing.Short() {
				t.Skip("slow reference pass; skipped under -short")
			}
			spec, w := newNet(t, c.arch, 11)
			size := c.h
			if c.dynamic {
				size = spec.InputSize
			}
			meta := Metadata(c.arch, "rotation", size, []float32{0.485, 0.456, 0.406}, []float32{0.229, 0.224, 0.225}, "hash", "test")
			m, err := Build(spec, w, Options{Outputs: c.outputs, FoldBN: c.fold, DynamicHW: c.dynamic, InputSize: size, Metadata: meta})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			modelPath := filepath.Join(dir, "model.onnx")
			if err := Write(modelPath, m); err != nil {
				t.Fatal(err)
			}
			x := randomInput(rand.New(rand.NewSource(12)), c.n*3*c.h*c.w)
			inPath := filepath.Join(dir, "input.f32")
			if err := writeF32(inPath, x); err != nil {
				t.Fatal(err)
			}
			outDir := filepath.Join(dir, "out")
			cmd := exec.Command(py, script, modelPath, inPath, fmt.Sprintf("%d,3,%d,%d", c.n, c.h, c.w), outDir)
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
			t.Logf("onnx %s, onnxruntime %s: checker and strict shape inference passed", rep.ONNX, rep.ORT)
			if rep.IRVersion != IRVersion || len(rep.Opsets) != 1 || rep.Opsets[""] != OpsetVersion {
				t.Errorf("Python sees IR %d, opsets %v; expected IR %d, {\"\": %d}", rep.IRVersion, rep.Opsets, IRVersion, OpsetVersion)
			}
			for k, v := range meta {
				if rep.Metadata[k] != v {
					t.Errorf("Python sees metadata %s = %q, expected %q", k, rep.Metadata[k], v)
				}
			}
			for _, o := range c.outputs {
				if !c.dynamic && fmt.Sprint(rep.Inferred[o]) != fmt.Sprint(rep.Declared[o]) {
					t.Errorf("output %s: declared shape %v, onnx infers %v", o, rep.Declared[o], rep.Inferred[o])
				}
			}
			ref, err := models.Reference(spec, w, x, c.n, c.h, c.w, c.outputs)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.OutputShape) != len(c.outputs) {
				t.Errorf("onnxruntime produced outputs %v, expected %v", rep.OutputShape, c.outputs)
			}
			for _, o := range c.outputs {
				data, err := readF32(filepath.Join(outDir, o+".f32"))
				if err != nil {
					t.Fatal(err)
				}
				d := compare(t, "onnxruntime "+o, models.Tensor{Shape: rep.OutputShape[o], Data: data}, ref[o])
				t.Logf("%s %v: max |onnxruntime - reference| %.2g", o, rep.OutputShape[o], d)
			}
		})
	}
}
