package main

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/runtime"
)

// testExportAllOutputsDynamic exports an untrained backbone with
// --outputs all --dynamic-hw --fold-bn=false and checks, through
// --inspect --json and ONNX Runtime, that every stage is an output, that
// height and width are symbolic and that a non-square image runs.
func testExportAllOutputsDynamic(t *testing.T, bin string) {
	model := filepath.Join(t.TempDir(), "m.onnx")
	var ex struct {
		Outputs []string `json:"outputs"`
	}
	lastJSON(t, runCmd(t, nil, bin, "export", "--arch", "resnet20c", "--random-init", "--outputs", "all", "--dynamic-hw",
		"--fold-bn=false", "--out", model, "--json"), &ex)
	if fmt.Sprint(ex.Outputs) != "[features stage1 stage2 stage3]" {
		t.Errorf("--outputs all on resnet20c gave %v", ex.Outputs)
	}
	var info export.Info
	lastJSON(t, runCmd(t, nil, bin, "export", "--inspect", model, "--json"), &info)
	if len(info.Inputs) != 1 || info.Inputs[0].Shape() != "[N, 3, H, W]" {
		t.Errorf("inspect inputs %+v, want images [N, 3, H, W]", info.Inputs)
	}
	if len(info.Outputs) != 4 || info.OpCounts["BatchNormalization"] == 0 || info.Metadata[export.KeyArch] != "resnet20c" {
		t.Errorf("inspect: %d outputs, %d BatchNormalization nodes, arch %q", len(info.Outputs), info.OpCounts["BatchNormalization"], info.Metadata[export.KeyArch])
	}
	testenv.ORT(t)
	s, err := runtime.Open(model, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Run(make([]float32, 3*24*40), []int64{1, 3, 24, 40})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(res["stage3"].Shape, res["features"].Shape); got != "[1 64 6 10] [1 64]" {
		t.Errorf("stage3 and features shapes for a 24x40 image: %s", got)
	}
}
