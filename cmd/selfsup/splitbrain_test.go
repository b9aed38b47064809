package main

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
	"github.com/selfsup/selfsup/pipeline"
)

// Split-brain through the real binary: pretrain resnet20c-split on the
// toy set (RGB), the lab space, its statistics and the ab prior in
// config.json; eval pretext with both halves' figures; export with
// recalibrated batch norms and every output (one graph: the input sliced
// into L and ab, two branches, concatenated); ONNX Runtime on that model
// equals the Go graph of the same recalibrated weights (features, every
// stage map and every pooled stage); extraction of the RGB test images
// equals running the model on their Lab values fed by hand; the linear
// probe on every layer.
func TestSplitBrainCLI(t *testing.T) {
	bin := buildBinary(t)
	dir, ds := toySet(t, 48, 16)
	run := filepath.Join(dir, "run")
	pre := pretrainToy(t, bin, run, "--task", "splitbrain", "--arch", "resnet20c-split", "--data", ds)
	if pre.Steps != 5 || !(pre.FinalLoss > 0) || pre.ValPretext < 0 || pre.ValPretext > 1 {
		t.Fatalf("pretrain: %+v", pre)
	}
	var cfg struct {
		Arch    string `json:"arch"`
		Pretext struct {
			Channels   int       `json:"channels"`
			Input      string    `json:"input"`
			Mean       []float32 `json:"mean"`
			SplitBrain struct {
				AB struct {
					Prior []float64 `json:"prior"`
				} `json:"ab"`
				LGrid float64 `json:"l_grid"`
			} `json:"splitbrain"`
		} `json:"pretext"`
	}
	readJSON(t, filepath.Join(run, "config.json"), &cfg)
	if p := cfg.Pretext; cfg.Arch != "resnet20c-split" || p.Channels != 3 || p.Input != data.SpaceLab || len(p.Mean) != 3 ||
		len(p.SplitBrain.AB.Prior) != 261 || p.SplitBrain.LGrid != 5 {
		t.Fatalf("config.json: arch %s, pretext %+v", cfg.Arch, p)
	}

	var res struct {
		Task       string   `json:"task"`
		Acc        float64  `json:"pretext_acc"`
		Images     int      `json:"images"`
		AuC        *float64 `json:"ab_auc"`
		GreyAuC    *float64 `json:"ab_auc_grey"`
		ABBinAcc   *float64 `json:"ab_bin_acc"`
		LBinAcc    *float64 `json:"l_bin_acc"`
		LError     *float64 `json:"l_error"`
		LErrorMean *float64 `json:"l_error_mean"`
	}
	pic := filepath.Join(dir, "splitbrain.png")
	lastJSON(t, runCmd(t, nil, bin, "eval", "pretext", "--run", run, "--save-colorized", pic, "--json"), &res)
	if res.Task != "splitbrain" || res.Images != 8 || res.Acc != pre.ValPretext || res.AuC == nil || res.GreyAuC == nil || res.ABBinAcc == nil ||
		res.LBinAcc == nil || res.LError == nil || res.LErrorMean == nil || !(*res.AuC > 0 && *res.AuC < 1) || !(*res.LError > 0) || !(*res.LErrorMean > 0) {
		t.Fatalf("eval pretext: %+v (trainer: %v)", res, pre.ValPretext)
	}

	if b := pngBounds(t, pic, "--save-colorized"); b.Dx() != 4*(6*16+2)+2 || b.Dy() != 8*(6*16+2)+2 {
		t.Fatalf("picture %v: expected 4 columns and 8 rows of 16 px images drawn 6x", b)
	}

	model := filepath.Join(dir, "m.onnx")
	exportAll(t, bin, run, ds, model)
	info, err := export.Inspect(model)
	if err != nil {
		t.Fatal(err)
	}
	if info.OpCounts["Slice"] != 2 || info.OpCounts["Concat"] != 4 || info.Metadata[export.KeyInputSpace] != data.SpaceLab {
		t.Fatalf("model ops %v, metadata %v", info.OpCounts, info.Metadata)
	}
	testenv.ORT(t)
	feats := filepath.Join(dir, "f.npy")
	got, shape := extractFeatures(t, bin, model, ds, feats)
	sess, p := openModel(t, model)
	if p.Space != data.SpaceLab || p.Channels != 3 || !slices.Equal(p.Mean, cfg.Pretext.Mean) {
		t.Fatalf("model preprocessing %+v, expected lab with the run's mean %v", p, cfg.Pretext.Mean)
	}
	test, err := data.Open(ds, "test", data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if shape[0] != test.Len() || shape[1] != 64 {
		t.Fatalf("extracted %v, %d test images, expected 64 features (32 of each half)", shape, test.Len())
	}
	// The Lab values of every RGB test image, normalised, fed by hand.
	s, n := p.Size, test.Len()
	in := make([]float32, 0, n*3*s*s)
	for i := 0; i < n; i++ {
		im, err := test.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		if im.C != 3 || im.H != s || im.W != s {
			t.Fatalf("test image %d is %dx%dx%d, the model takes %d px", i, im.C, im.H, im.W, s)
		}
		l, err := data.Normalize(data.ToLabSpace(data.ToTensor(im)), p.Mean, p.Std)
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, l.Data...)
	}
	outs := export.AllOutputs(mustSpec(t, "resnet20c-split"), false)
	ort, err := sess.Run(in, []int64{int64(n), 3, int64(s), int64(s)}, outs...)
	if err != nil {
		t.Fatal(err)
	}
	want := ort["features"].Data
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-5*math.Max(1, math.Abs(float64(want[i]))) {
			t.Fatalf("feature %d: extracted %v, Lab by hand %v", i, got[i], want[i])
		}
	}
	// ORT parity of the CLI path: the Go graph on the checkpoint's
	// weights recalibrated as `export --bn-data` does (seed 1).
	src, err := pipeline.OpenBackbone(pipeline.BackboneSource{Run: run}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.RecalibrateOn(ds, "train", 4096, 1, nil); err != nil {
		t.Fatal(err)
	}
	g := G.NewGraph()
	bb, err := models.NewBackbone(g, src.Spec, src.Weights, tensor.Float32, &ops.Mode{})
	if err != nil {
		t.Fatal(err)
	}
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(n, 3, s, s), G.WithName("x"), G.WithValue(tensor.New(tensor.WithShape(n, 3, s, s), tensor.WithBacking(in))))
	gout, err := bb.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		stage, pooled := strings.CutSuffix(o, export.PoolSuffix)
		ref := gout[stage].Value().Data().([]float32)
		if pooled {
			ref = avgPool4(ref, gout[stage].Shape())
		}
		var d, scale float64
		for i, v := range ort[o].Data {
			d = math.Max(d, math.Abs(float64(v-ref[i])))
			scale = math.Max(scale, math.Abs(float64(ref[i])))
		}
		if len(ort[o].Data) != len(ref) || scale == 0 || d > 1e-4*scale {
			t.Fatalf("%s: %d values by ORT, %d by Go; max |ORT - Go| %.3g, scale %.3g", o, len(ort[o].Data), len(ref), d, scale)
		}
	}
	lin := evalLinearAll(t, bin, model, ds)
	if len(lin.Layers) != 4 {
		t.Fatalf("eval linear --layers all: %+v", lin)
	}
}

func mustSpec(t *testing.T, arch string) *models.Spec {
	t.Helper()
	s, err := models.New(arch, 3)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// avgPool4 is a pooled stage output (export.PoolWindow's grid) of a map
// [N, C, H, W] whose sides the grid divides.
func avgPool4(x []float32, shape []int) []float32 {
	n, c, h, w := shape[0], shape[1], shape[2], shape[3]
	gh, kh, _ := export.PoolWindow(h)
	gw, kw, _ := export.PoolWindow(w)
	out := make([]float32, 0, n*c*gh*gw)
	for p := 0; p < n*c; p++ {
		for i := 0; i < gh; i++ {
			for j := 0; j < gw; j++ {
				var sum float64
				for y := i * kh; y < (i+1)*kh; y++ {
					for xx := j * kw; xx < (j+1)*kw; xx++ {
						sum += float64(x[(p*h+y)*w+xx])
					}
				}
				out = append(out, float32(sum/float64(kh*kw)))
			}
		}
	}
	return out
}
