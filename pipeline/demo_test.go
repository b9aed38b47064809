package pipeline

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/internal/testenv"
)

// TestDemoSmall runs the demo chain on a toy set: both exported backbones
// carry re-estimated batch-norm statistics (the 0/1 one does not), every
// row names the layer chosen on validation, and the table shows the four
// rows.
func TestDemoSmall(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	ds := filepath.Join(dir, "toy.tar")
	testenv.ToyTar(t, ds, 64, 20, false)
	o := DefaultDemoConfig()
	o.Data, o.Out, o.Steps, o.Batch, o.ProbeTrain, o.BNImages = ds, filepath.Join(dir, "out"), 3, 8, 0, 32
	res, err := Demo(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pretrain.Steps != 3 || res.ProbeTrain != 64 || res.TestImages != 20 {
		t.Fatalf("pretrain %d steps, %d probe / %d test images", res.Pretrain.Steps, res.ProbeTrain, res.TestImages)
	}
	for name, row := range map[string]ProbeRow{"pretrained": res.Pretrained, "random": res.RandomInit, "bn01": res.RandomInitBN01} {
		if row.Layer != export.FeaturesOutput && !strings.HasSuffix(row.Layer, "_pool") || row.Top1 < 0 || row.Top1 > 1 || row.Dim <= 0 {
			t.Fatalf("%s row %+v", name, row)
		}
	}
	for file, want := range map[string]string{"rotation.onnx": "true", "random-init.onnx": "true", "random-init-bn01.onnx": ""} {
		info, err := export.Inspect(filepath.Join(res.Run, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Metadata[export.KeyBNRecalibrated]; got != want {
			t.Fatalf("%s: %s = %q, expected %q", file, export.KeyBNRecalibrated, got, want)
		}
		if !strings.Contains(strings.Join(outputNames(info), ","), "stage2_pool") {
			t.Fatalf("%s has outputs %v, expected the pooled stages", file, outputNames(info))
		}
	}
	var buf bytes.Buffer
	WriteDemoTable(&buf, res)
	for _, row := range []string{"rotation-pretrained", "random-init (BN recalibrated)", "random-init (BN 0/1)", "raw pixels"} {
		if !strings.Contains(buf.String(), "| "+row+" |") {
			t.Fatalf("table lacks %q:\n%s", row, buf.String())
		}
	}
	o.ProbeLayer = "stage9_pool"
	if _, err := Demo(context.Background(), o); err == nil || !strings.Contains(err.Error(), "stage9_pool") {
		t.Fatalf("unknown probe layer: %v", err)
	}
}

func outputNames(info *export.Info) []string {
	var out []string
	for _, o := range info.Outputs {
		out = append(out, o.Name)
	}
	return out
}
