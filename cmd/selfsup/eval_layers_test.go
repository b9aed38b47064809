package main

import (
	"github.com/selfsup/selfsup/internal/testenv"
	"path/filepath"
	"strings"
	"testing"
)

// TestEvalLayersCLI exports an untrained resnet20c at 16 px with
// --outputs all, runs `eval linear --layers all` and `eval knn --layers
// all` on a small two-class tar, and checks the JSON: every pooled stage
// and features with their dimensions, and a best layer that is the one
// with the highest validation top-1 (the first of equals) carrying that
// layer's test figures. Misuses give one clear error.
func TestEvalLayersCLI(t *testing.T) {
	testenv.ORT(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	ds := filepath.Join(dir, "data.tar")
	writeTar(t, ds, 60, 30, false)
	model := filepath.Join(dir, "r.onnx")
	lastJSON(t, runCmd(t, nil, bin, "export", "--arch", "resnet20c", "--random-init", "--size", "16", "--outputs", "all", "--out", model, "--json"), &struct{}{})

	type layersJSON struct {
		Method string `json:"method"`
		Layers []struct {
			Layer   string  `json:"layer"`
			Dim     int     `json:"dim"`
			ValTop1 float64 `json:"val_top1"`
			Top1    float64 `json:"top1"`
			Top5    float64 `json:"top5"`
		} `json:"layers"`
		Best struct {
			Layer   string  `json:"layer"`
			Top1    float64 `json:"top1"`
			ValTop1 float64 `json:"val_top1"`
		} `json:"best"`
		NTrain int `json:"n_train"`
		NVal   int `json:"n_val"`
		NTest  int `json:"n_test"`
	}
	for _, method := range []string{"linear", "knn"} {
		args := []string{"eval", method, "--model", model, "--data", ds, "--layers", "all", "--json"}
		if method == "knn" {
			args = append(args, "--k", "5")
		}
		var r layersJSON
		lastJSON(t, runCmd(t, nil, bin, args...), &r)
		var got []string
		best := 0
		for i, l := range r.Layers {
			got = append(got, l.Layer)
			if l.ValTop1 > r.Layers[best].ValTop1 {
				best = i
			}
			t.Logf("%s %s dim %d: val %.3f test %.3f", method, l.Layer, l.Dim, l.ValTop1, l.Top1)
		}
		// 16 px: stage maps 16, 8, 4 -> 4x4 grids of 16, 32, 64 channels.
		if strings.Join(got, ",") != "stage1_pool,stage2_pool,stage3_pool,features" || r.Layers[0].Dim != 256 || r.Layers[1].Dim != 512 ||
			r.Layers[2].Dim != 1024 || r.Layers[3].Dim != 64 {
			t.Fatalf("%s: layers %+v", method, r.Layers)
		}
		b := r.Layers[best]
		if r.Method != method || r.Best.Layer != b.Layer || r.Best.Top1 != b.Top1 || r.Best.ValTop1 != b.ValTop1 {
			t.Errorf("%s: best %+v, expected %s (val %.3f, test %.3f)", method, r.Best, b.Layer, b.ValTop1, b.Top1)
		}
		if r.NTrain != 60 || r.NVal != 6 || r.NTest != 30 {
			t.Errorf("%s: %d train, %d val, %d test; expected 60, 6, 30", method, r.NTrain, r.NVal, r.NTest)
		}
	}

	features := filepath.Join(dir, "f.npy")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"eval", "linear", "--layers", "all", "--train-features", features, "--test-features", features},
			"--layers needs --model and --data (precomputed features and raw pixels are one layer"},
		{[]string{"eval", "knn", "--model", tinyModelPath, "--data", ds, "--layers", "all"}, "has no pooled stage outputs"},
		{[]string{"eval", "linear", "--model", model, "--data", ds, "--layers", "features,stage9_pool"}, `has no output "stage9_pool"`},
	} {
		r := runCmd(t, nil, bin, c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; expected a failure saying %q", c.args, r.code, r.stderr, c.want)
		}
	}
}
