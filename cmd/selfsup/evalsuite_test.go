package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
)

// TestEvalSuiteEndToEnd walks the evaluation commands through the real
// binary on a toy image tar: the SVM probe, low-shot, the raw-pixel
// baseline, `eval baselines` and `report`, checking the --json contract
// (one JSON object as the last stdout line) and the files written.
func TestEvalSuiteEndToEnd(t *testing.T) {
	testenv.ORT(t)
	bin := buildBinary(t)
	dir, ds := toySet(t, 64, 32)
	run := filepath.Join(dir, "rotation")
	var pre struct {
		Steps int `json:"steps"`
	}
	lastJSON(t, runCmd(t, nil, bin, "pretrain", "--task", "rotation", "--arch", "resnet20c", "--data", ds, "--out", run,
		"--epochs", "2", "--batch", "8", "--val-images", "0", "--checkpoint-every", "8", "--json"), &pre)
	model := filepath.Join(dir, "m.onnx")
	if r := runCmd(t, nil, bin, "export", "--run", run, "--out", model); r.code != 0 {
		t.Fatalf("export: %s", r.stderr)
	}

	var svm struct {
		Classifier string    `json:"classifier"`
		Top1       *float64  `json:"top1"`
		Top5       float64   `json:"top5"`
		C          float64   `json:"c"`
		CGrid      []float64 `json:"c_grid"`
		MAP        float64   `json:"map"`
		NTest      int       `json:"n_test"`
	}
	lastJSON(t, runCmd(t, nil, bin, "eval", "linear", "--svm", "--model", model, "--data", ds, "--json"), &svm)
	if svm.Classifier != "svm" || svm.Top1 == nil || *svm.Top1 < 0 || *svm.Top1 > 1 || svm.C <= 0 || len(svm.CGrid) == 0 || svm.NTest != 32 || svm.MAP <= 0 {
		t.Fatalf("eval linear --svm: %+v", svm)
	}

	var low struct {
		Fractions []struct {
			Fraction float64 `json:"fraction"`
			NTrain   int     `json:"n_train"`
			Top1Mean float64 `json:"top1_mean"`
			Top1Std  float64 `json:"top1_std"`
			Runs     []struct {
				MinPerClass int `json:"min_per_class"`
				MaxPerClass int `json:"max_per_class"`
			} `json:"runs"`
		} `json:"fractions"`
	}
	lastJSON(t, runCmd(t, nil, bin, "eval", "lowshot", "--model", model, "--data", ds, "--fractions", "0.25,0.5", "--seeds", "2", "--json"), &low)
	// 32 training images of each of two classes: 8 and 16 a class.
	if len(low.Fractions) != 2 || low.Fractions[0].NTrain != 16 || low.Fractions[1].NTrain != 32 || len(low.Fractions[0].Runs) != 2 ||
		low.Fractions[0].Runs[0].MinPerClass != 8 || low.Fractions[0].Runs[0].MaxPerClass != 8 {
		t.Fatalf("eval lowshot: %+v", low)
	}

	// Raw pixels: the toy classes are a bright square in opposite corners,
	// which a linear classifier on pixels separates.
	var raw struct {
		Top1 float64 `json:"top1"`
		Dim  int     `json:"dim"`
	}
	lastJSON(t, runCmd(t, nil, bin, "eval", "linear", "--raw-pixels", "--data", ds, "--json"), &raw)
	if raw.Dim != 3*16*16 || raw.Top1 < 0.95 {
		t.Fatalf("eval linear --raw-pixels: %+v", raw)
	}
	if r := runCmd(t, nil, bin, "eval", "knn", "--raw-pixels", "--model", model, "--data", ds); r.code == 0 || !strings.Contains(r.stderr, "exactly one of --model and --raw-pixels") {
		t.Fatalf("--raw-pixels with --model: exit %d, %s", r.code, r.stderr)
	}

	out := filepath.Join(dir, "baselines")
	var base struct {
		Rows []struct {
			Name    string `json:"name"`
			Kind    string `json:"kind"`
			Dim     int    `json:"dim"`
			Linear  *struct{ Top1 float64 }
			KNN     *struct{ Top1 float64 }
			LowShot *struct {
				Fractions []struct{ NTrain int } `json:"fractions"`
			} `json:"lowshot"`
		} `json:"rows"`
		Markdown string `json:"markdown"`
	}
	lastJSON(t, runCmd(t, nil, bin, "eval", "baselines", "--data", ds, "--budget", "3s", "--train-batch", "8", "--run", run, "--out", out, "--lowshot", "--json"), &base)
	kinds := []string{}
	for _, r := range base.Rows {
		kinds = append(kinds, r.Kind)
		if r.Linear == nil || r.KNN == nil || r.LowShot == nil || len(r.LowShot.Fractions) != 2 {
			t.Fatalf("baselines row %+v", r)
		}
	}
	if strings.Join(kinds, ",") != "pretrained,supervised,random-init,random-init,raw-pixels" || base.Rows[4].Dim != 768 {
		t.Fatalf("baselines rows: %v", kinds)
	}
	if b, err := os.ReadFile(base.Markdown); err != nil || !strings.Contains(string(b), "| raw pixels | 768 |") {
		t.Fatalf("baselines.md: %v\n%s", err, b)
	}

	rep := filepath.Join(dir, "report")
	var rr struct {
		Markdown   string                  `json:"markdown"`
		Figures    map[string]string       `json:"figures"`
		LinearTop1 *float64                `json:"linear_top1"`
		KNNCurve   map[string][][2]float64 `json:"knn_curve"` // [images seen, top-1] pairs
	}
	lastJSON(t, runCmd(t, nil, bin, "report", "--data", ds, "--out", rep, "--queries", "3", "--neighbours", "4", "--json", run, filepath.Join(out, "supervised")), &rr)
	if rr.LinearTop1 == nil || len(rr.Figures) != 4 {
		t.Fatalf("report: %+v", rr)
	}
	// Rotation run: initial weights and the checkpoints at steps 8 and 16.
	// (Decoded as float64: a [][]int would fail on any accuracy strictly
	// between 0 and 1.)
	if c := rr.KNNCurve["rotation"]; len(c) != 3 || c[0][0] != 0 || c[1][0] != 8*8 || c[2][0] != 16*8 {
		t.Fatalf("kNN curve %v", rr.KNNCurve)
	}
	for run, c := range rr.KNNCurve {
		for _, pt := range c {
			if !(pt[1] >= 0 && pt[1] <= 1) {
				t.Fatalf("kNN curve of %s: top-1 %v outside [0, 1]", run, pt[1])
			}
		}
	}
	if r := runCmd(t, nil, bin, "report", run, "--out", rep); r.code == 0 || !strings.Contains(r.stderr, "put options before them") {
		t.Fatalf("option after the runs: exit %d, %s", r.code, r.stderr)
	}
	md, err := os.ReadFile(rr.Markdown)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range rr.Figures {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width < 200 || cfg.Height < 150 {
			t.Fatalf("%s figure %s: %v %+v", name, p, err, cfg)
		}
		if !strings.Contains(string(md), "("+filepath.Base(p)+")") {
			t.Fatalf("report.md does not reference %s", filepath.Base(p))
		}
	}
}
