package main

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/testenv"
)

// Colorization through the real binary: pretrain on the toy set (RGB),
// the lightness space and the ab prior in config.json, eval pretext with
// the ab accuracy against grey and the picture, export with recalibrated
// batch norms and every pooled stage, extraction of the RGB test images
// equal to running the model on their lightness, and the linear probe on
// every layer.
func TestColorizationCLI(t *testing.T) {
	bin := buildBinary(t)
	dir, ds := toySet(t, 48, 16)
	run := filepath.Join(dir, "run")
	pre := pretrainToy(t, bin, run, "--task", "colorization", "--data", ds)
	if pre.Steps != 5 || !(pre.FinalLoss > 0) || pre.ValPretext < 0 || pre.ValPretext > 1 {
		t.Fatalf("pretrain: %+v", pre)
	}
	var cfg struct {
		Pretext struct {
			Channels     int       `json:"channels"`
			Input        string    `json:"input"`
			Mean         []float32 `json:"mean"`
			Colorization struct {
				Prior []float64 `json:"prior"`
			} `json:"colorization"`
		} `json:"pretext"`
	}
	readJSON(t, filepath.Join(run, "config.json"), &cfg)
	if p := cfg.Pretext; p.Channels != 3 || p.Input != data.SpaceLabL || len(p.Mean) != 1 || len(p.Colorization.Prior) != 261 {
		t.Fatalf("config.json pretext: %d channels, input %q, mean %v, prior of %d bins", p.Channels, p.Input, p.Mean, len(p.Colorization.Prior))
	}

	pic := filepath.Join(dir, "colorized.png")
	var res struct {
		Task    string   `json:"task"`
		Acc     float64  `json:"pretext_acc"`
		Images  int      `json:"images"`
		AuC     *float64 `json:"ab_auc"`
		GreyAuC *float64 `json:"ab_auc_grey"`
	}
	lastJSON(t, runCmd(t, nil, bin, "eval", "pretext", "--run", run, "--save-colorized", pic, "--json"), &res)
	if res.Task != "colorization" || res.Images != 8 || res.Acc != pre.ValPretext || res.AuC == nil || res.GreyAuC == nil ||
		!(*res.AuC > 0 && *res.AuC < 1) || !(*res.GreyAuC > 0 && *res.GreyAuC < 1) {
		t.Fatalf("eval pretext: %+v (trainer: %v)", res, pre.ValPretext)
	}
	if b := pngBounds(t, pic, "--save-colorized"); b.Dx() != 3*(6*16+2)+2 || b.Dy() != 8*(6*16+2)+2 {
		t.Fatalf("picture %v: expected 3 columns and 8 rows of 16 px images drawn 6x", b)
	}

	model := filepath.Join(dir, "m.onnx")
	exportAll(t, bin, run, ds, model)
	testenv.ORT(t)
	feats := filepath.Join(dir, "f.npy")
	got, shape := extractFeatures(t, bin, model, ds, feats)
	sess, p := openModel(t, model)
	if p.Space != data.SpaceLabL || p.Channels != 1 || len(p.Mean) != 1 || p.Mean[0] != cfg.Pretext.Mean[0] {
		t.Fatalf("model preprocessing %+v, expected lab-l with the run's mean %v", p, cfg.Pretext.Mean)
	}
	test, err := data.Open(ds, "test", data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if shape[0] != test.Len() {
		t.Fatalf("extracted %v rows, %d test images", shape, test.Len())
	}
	// The lightness of every RGB test image, normalised, fed by hand.
	s := p.Size
	in := make([]float32, 0, test.Len()*s*s)
	for i := 0; i < test.Len(); i++ {
		im, err := test.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		if im.C != 3 {
			t.Fatalf("test image %d has %d channels", i, im.C)
		}
		l, err := data.Normalize(data.ToLabL(data.ToTensor(im)), p.Mean, p.Std)
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, l.Data...)
	}
	out, err := sess.Run(in, []int64{int64(test.Len()), 1, int64(s), int64(s)}, "features")
	if err != nil {
		t.Fatal(err)
	}
	want := out["features"].Data
	if len(want) != len(got) {
		t.Fatalf("%d features extracted, %d by hand", len(got), len(want))
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-5*math.Max(1, math.Abs(float64(want[i]))) {
			t.Fatalf("feature %d: extracted %v, lightness by hand %v", i, got[i], want[i])
		}
	}
	lin := evalLinearAll(t, bin, model, ds)
	if len(lin.Layers) < 2 {
		t.Fatalf("eval linear --layers all: %+v", lin)
	}
}
