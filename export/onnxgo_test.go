package export

import (
	"math/rand"
	"testing"

	onnxgo "github.com/owulveryck/onnx-go"
	"github.com/owulveryck/onnx-go/backend/x/gorgonnx"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/models"
)

// TestOnnxGoImport loads an exported backbone with onnx-go (its own
// protobuf types, a separate decoder) and runs it on the gorgonnx backend
// (Gorgonia); "features" must match models.Reference. It also proves that
// the generated onnxpb types and onnx-go's can live in one binary.
func TestOnnxGoImport(t *testing.T) {
	for _, fold := range []bool{true, false} {
		spec, w := newNet(t, "resnet20c", 21)
		m, err := Build(spec, w, Options{Outputs: []string{"features", "stage2"}, FoldBN: fold})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		n := 2
		x := randomInput(rand.New(rand.NewSource(22)), n*3*32*32)
		ref, err := models.Reference(spec, w, x, n, 32, 32, []string{"features", "stage2"})
		if err != nil {
			t.Fatal(err)
		}

		backend := gorgonnx.NewGraph()
		model := onnxgo.NewModel(backend)
		if err := model.UnmarshalBinary(b); err != nil {
			t.Fatalf("fold=%v: onnx-go cannot import the model: %v", fold, err)
		}
		in := tensor.New(tensor.WithShape(n, 3, 32, 32), tensor.WithBacking(append([]float32(nil), x...)))
		if err := model.SetInput(0, in); err != nil {
			t.Fatal(err)
		}
		if err := backend.Run(); err != nil {
			t.Fatalf("fold=%v: gorgonnx run: %v", fold, err)
		}
		outs, err := model.GetOutputTensors()
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) != 2 {
			t.Fatalf("onnx-go returned %d outputs, expected 2", len(outs))
		}
		for i, name := range []string{"features", "stage2"} {
			data, ok := outs[i].Data().([]float32)
			if !ok {
				t.Fatalf("%s: onnx-go output holds %T, expected []float32", name, outs[i].Data())
			}
			got := models.Tensor{Shape: []int(outs[i].Shape().Clone()), Data: data}
			d := compare(t, "onnx-go fold="+map[bool]string{true: "true", false: "false"}[fold]+" "+name, got, ref[name])
			t.Logf("fold=%v %s %v: max |onnx-go - reference| %.2g", fold, name, got.Shape, d)
		}
	}
}
