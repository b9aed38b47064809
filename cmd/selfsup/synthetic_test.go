package main

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/runtime"
	"github.com/selfsup/selfsup/train"
)

// The synthetic task through the real binary: pretrain on rendered scenes
// with domain adaptation to the toy set's images (the resolved synthetic
// config and the adaptation set's size in config.json, the discriminator's
// accuracy in the metrics), eval pretext with the depth, normal and
// contour figures and the scene picture, export parity (ONNX Runtime's
// features of the exported backbone equal the plain-Go reference forward
// pass of the checkpoint), export with recalibrated batch norms and every
// pooled stage, extraction equal to running the model by hand, and the
// linear probe on every layer.
func TestSyntheticCLI(t *testing.T) {
	bin := buildBinary(t)
	dir, ds := toySet(t, 48, 16)
	run := filepath.Join(dir, "run")
	pre := pretrainToy(t, bin, run, "--task", "synthetic", "--data", ds, "--synthetic-adapt", ds)
	if pre.Steps != 5 || !(pre.FinalLoss > 0) || pre.ValPretext < 0 || pre.ValPretext > 1 {
		t.Fatalf("pretrain: %+v", pre)
	}
	var cfg struct {
		Pretext struct {
			Synthetic struct {
				Adapt       string  `json:"adapt"`
				AdaptImages int     `json:"adapt_images"`
				Width       int     `json:"width"`
				Lambda      float64 `json:"adapt_lambda"`
			} `json:"synthetic"`
		} `json:"pretext"`
	}
	readJSON(t, filepath.Join(run, "config.json"), &cfg)
	if s := cfg.Pretext.Synthetic; s.Adapt != ds || s.AdaptImages != 48 || s.Width != 32 || s.Lambda != 0.1 {
		t.Fatalf("config.json synthetic: %+v", s)
	}
	f, err := os.Open(filepath.Join(run, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var rec map[string]float64
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["loss"] > 0 {
			steps++
			if _, ok := rec["disc_acc"]; !ok || !(rec["depth_l1"] > 0) {
				t.Fatalf("metrics line without the discriminator or the loss terms: %s", sc.Text())
			}
		}
	}
	f.Close()
	if steps == 0 {
		t.Fatal("no step lines in metrics.jsonl")
	}

	pic := filepath.Join(dir, "scenes.png")
	var res struct {
		Task      string     `json:"task"`
		Acc       float64    `json:"pretext_acc"`
		DepthL1   *float64   `json:"depth_l1"`
		NormalDeg *float64   `json:"normal_deg"`
		Within    [3]float64 `json:"normal_within_11_22_30"`
		ContourF  *float64   `json:"contour_f"`
		ContourAP *float64   `json:"contour_ap"`
		Scenes    int        `json:"scenes"`
	}
	lastJSON(t, runCmd(t, nil, bin, "eval", "pretext", "--run", run, "--save-scenes", pic, "--json"), &res)
	if res.Task != "synthetic" || res.Acc != pre.ValPretext || res.Scenes != 1024 || res.DepthL1 == nil || !(*res.DepthL1 > 0) ||
		res.NormalDeg == nil || !(*res.NormalDeg > 0 && *res.NormalDeg < 180) || res.ContourF == nil || !(*res.ContourF > 0 && *res.ContourF <= 1) ||
		res.ContourAP == nil || !(*res.ContourAP > 0 && *res.ContourAP <= 1) || res.Within[0] > res.Within[1] || res.Within[1] > res.Within[2] {
		t.Fatalf("eval pretext: %+v (trainer: %v)", res, pre.ValPretext)
	}
	if b := pngBounds(t, pic, "--save-scenes"); b.Dx() != 7*(6*16+2)+2 || b.Dy() != 8*(6*16+2)+2 {
		t.Fatalf("picture %v: expected 7 columns and 8 rows of 16 px scenes drawn 6x", b)
	}

	testenv.ORT(t)
	// Export parity: the backbone as trained (no recalibration) run by
	// ONNX Runtime against the reference forward pass in Go.
	plain := filepath.Join(dir, "plain.onnx")
	if r := runCmd(t, nil, bin, "export", "--run", run, "--out", plain); r.code != 0 {
		t.Fatal(r.stderr)
	}
	ck, _, _, err := train.LatestCheckpoint(run)
	if err != nil {
		t.Fatal(err)
	}
	test, err := data.Open(ds, "test", data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := runtime.Open(plain, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := sess.Preprocess()
	if err != nil {
		t.Fatal(err)
	}
	per := p.Channels * p.Size * p.Size
	in := make([]float32, test.Len()*per)
	for i := 0; i < test.Len(); i++ {
		im, err := test.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Fill(im, in[i*per:(i+1)*per]); err != nil {
			t.Fatal(err)
		}
	}
	shape := []int64{int64(test.Len()), int64(p.Channels), int64(p.Size), int64(p.Size)}
	out, err := sess.Run(in, shape, "features")
	sess.Close()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := models.New(ck.Config.Arch, p.Channels)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := models.Reference(spec, ck.Backbone, in, test.Len(), p.Size, p.Size, []string{"features"})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range ref["features"].Data {
		if got := out["features"].Data[i]; math.Abs(float64(got-v)) > 1e-4*math.Max(1, math.Abs(float64(v))) {
			t.Fatalf("feature %d: ONNX Runtime %v, Go reference %v", i, got, v)
		}
	}

	model := filepath.Join(dir, "m.onnx")
	exportAll(t, bin, run, ds, model)
	if r := runCmd(t, nil, bin, "export", "--inspect", model); r.code != 0 || !strings.Contains(r.stdout, "synthetic") || !strings.Contains(r.stdout, "bn_recalibrated") {
		t.Fatalf("inspect:\n%s\n%s", r.stdout, r.stderr)
	}
	feats := filepath.Join(dir, "f.npy")
	got, fshape := extractFeatures(t, bin, model, ds, feats)
	sess, err = runtime.Open(model, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	want, err := sess.Run(in, shape, "features")
	if err != nil {
		t.Fatal(err)
	}
	if fshape[0] != test.Len() || len(got) != len(want["features"].Data) {
		t.Fatalf("extracted %v, %d test images", fshape, test.Len())
	}
	for i, v := range want["features"].Data {
		if math.Abs(float64(got[i]-v)) > 1e-5*math.Max(1, math.Abs(float64(v))) {
			t.Fatalf("feature %d: extracted %v, by hand %v", i, got[i], v)
		}
	}
	lin := evalLinearAll(t, bin, model, ds)
	if len(lin.Layers) < 2 {
		t.Fatalf("eval linear --layers all: %+v", lin)
	}
}
