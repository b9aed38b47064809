package report

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/eval/cluster"
)

// writeRun writes a synthetic run directory: config.json and a
// metrics.jsonl whose loss decays and whose pretext accuracy rises, as the
// trainer writes them, ending with the held-out accuracy line.
func writeRun(t *testing.T, dir, task string, steps int, rate float64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{"task": task, "arch": "resnet20c", "batch": 64}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(int64(steps)))
	var sb strings.Builder
	for s := 10; s <= steps; s += 10 {
		rec := map[string]any{"step": s, "epoch": float64(s*64) / 50000, "images_seen": s * 64, "loss": 1.4*math.Exp(-rate*float64(s)) + 0.3 + 0.05*rng.Float64(),
			"lr": 0.05, "elapsed_s": 0.2 * float64(s), "images_per_sec": 320.0, "pretext_acc": 0.25 + 0.6*(1-math.Exp(-rate*float64(s))) + 0.03*rng.Float64()}
		b, _ := json.Marshal(rec)
		sb.Write(b)
		sb.WriteByte('\n')
	}
	fmt.Fprintf(&sb, `{"step": %d, "val_pretext_acc": 0.8}`+"\n", steps)
	if err := os.WriteFile(filepath.Join(dir, "metrics.jsonl"), []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestElapsedAtInterpolates(t *testing.T) {
	r := &Run{Records: []Record{{"step": 10, "elapsed_s": 4, "loss": 1}, {"step": 20, "elapsed_s": 6, "loss": 1}}}
	for _, tc := range []struct{ step, want float64 }{{0, 0}, {5, 2}, {10, 4}, {15, 5}, {20, 6}, {30, 6}} {
		if got, ok := r.ElapsedAt(tc.step); !ok || got != tc.want {
			t.Fatalf("ElapsedAt(%v) = %v, %v; want %v", tc.step, got, ok, tc.want)
		}
	}
	if _, ok := (&Run{}).ElapsedAt(3); ok {
		t.Fatal("a run without records has no time")
	}
}

func TestLoadRunHandlesResume(t *testing.T) {
	dir := t.TempDir()
	// Steps 10..40 logged, a crash, then a resume from the checkpoint at
	// step 20 whose clock restarts; then the held-out line.
	lines := []string{
		`{"step": 10, "images_seen": 640, "loss": 2.0, "elapsed_s": 5}`,
		`{"step": 20, "images_seen": 1280, "loss": 1.8, "elapsed_s": 10}`,
		`{"step": 30, "images_seen": 1920, "loss": 1.7, "elapsed_s": 15}`,
		`{"step": 40, "images_seen": 2560, "loss": 1.6, "elapsed_s": 20}`,
		``,
		`{"step": 30, "images_seen": 1920, "loss": 1.65, "elapsed_s": 4, "note": "text fields are ignored"}`,
		`{"step": 40, "images_seen": 2560, "loss": 1.55, "elapsed_s": 8}`,
		`{"step": 40, "val_pretext_acc": 0.5}`,
	}
	if err := os.WriteFile(filepath.Join(dir, "metrics.jsonl"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := LoadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	steps, losses := r.Series("step", "loss")
	_, elapsed := r.Series("step", "elapsed_s")
	wantSteps, wantLoss, wantElapsed := []float64{10, 20, 30, 40}, []float64{2.0, 1.8, 1.65, 1.55}, []float64{5, 10, 14, 18}
	for i := range wantSteps {
		if len(steps) != 4 || steps[i] != wantSteps[i] || losses[i] != wantLoss[i] || elapsed[i] != wantElapsed[i] {
			t.Fatalf("steps %v losses %v elapsed %v; want %v %v %v", steps, losses, elapsed, wantSteps, wantLoss, wantElapsed)
		}
	}
	if r.Final["val_pretext_acc"] != 0.5 || r.Final["val_pretext_acc_step"] != 40 || r.Task != "" {
		t.Fatalf("final %v, task %q", r.Final, r.Task)
	}
	if _, ok := r.Last()["note"]; ok {
		t.Fatal("text field kept")
	}

	os.WriteFile(filepath.Join(dir, "metrics.jsonl"), []byte("{\"step\": 1, \"loss\": 1}\n{\"step\": 2, \"loss\n"), 0o644)
	if _, err := LoadRun(dir); err == nil || !strings.Contains(err.Error(), "metrics.jsonl:2") {
		t.Fatalf("broken line: %v, want an error naming metrics.jsonl:2", err)
	}
	if _, err := LoadRun(filepath.Join(dir, "nope")); err == nil {
		t.Fatal("missing run accepted")
	}
}

// checkPNG decodes a PNG and checks that it is at least minW x minH pixels
// and not blank: it needs many colours (anti-aliased text, lines, images).
func checkPNG(t *testing.T, path string, minW, minH int) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := img.Bounds()
	if b.Dx() < minW || b.Dy() < minH {
		t.Fatalf("%s is %dx%d, want at least %dx%d", path, b.Dx(), b.Dy(), minW, minH)
	}
	colours := map[color.RGBA]bool{}
	nonWhite := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			colours[c] = true
			if c != (color.RGBA{255, 255, 255, 255}) {
				nonWhite++
			}
		}
	}
	if len(colours) < 20 || nonWhite < b.Dx()*b.Dy()/400 {
		t.Fatalf("%s looks blank: %d colours, %d non-white samples", path, len(colours), nonWhite)
	}
	return img
}

func TestWriteReportEndToEnd(t *testing.T) {
	root := t.TempDir()
	runA, runB := filepath.Join(root, "rotation-2m"), filepath.Join(root, "supervised-2m")
	writeRun(t, runA, "rotation", 400, 0.01)
	writeRun(t, runB, "supervised", 300, 0.02)
	var runs []*Run
	for _, d := range []string{runA, runB} {
		r, err := LoadRun(d)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	// kNN accuracy measured at a few checkpoints of the first run.
	for _, step := range []float64{0, 200, 400} {
		el, ok := runs[0].ElapsedAt(step)
		if !ok || math.Abs(el-0.2*step) > 1e-9 {
			t.Fatalf("ElapsedAt(%v) = %v, %v; want %v", step, el, ok, 0.2*step)
		}
		runs[0].AddPoint(Record{"step": step, "images_seen": 64 * step, "elapsed_s": el, "knn_top1": 0.2 + step/1000})
	}

	// A synthetic evaluation: three well-separated clusters.
	rng := rand.New(rand.NewSource(5))
	classes := []string{"airplane", "automobile", "bird"}
	n, d := 300, 8
	x := make([]float32, n*d)
	y := make([]int, n)
	for i := range y {
		y[i] = i % 3
		for j := 0; j < d; j++ {
			x[i*d+j] = float32(rng.NormFloat64())
			if j == y[i] {
				x[i*d+j] += 4
			}
		}
	}
	pr, err := eval.LinearProbe(x, y, x, y, d, 3, eval.DefaultProbeConfig())
	if err != nil {
		t.Fatal(err)
	}
	pred, err := pr.Model.Predict(x, n)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := eval.ConfusionMatrix(y, pred, 3)
	if err != nil {
		t.Fatal(err)
	}
	pca, err := cluster.FitPCA(x, n, d, 2)
	if err != nil {
		t.Fatal(err)
	}
	proj, err := pca.Project(x, n)
	if err != nil {
		t.Fatal(err)
	}
	tile := func(c int) image.Image {
		m := image.NewRGBA(image.Rect(0, 0, 8, 8))
		for i := range m.Pix {
			m.Pix[i] = uint8(60*c + 4*i%50)
		}
		return m
	}
	var rows []NeighbourRow
	for q := 0; q < 3; q++ {
		r := NeighbourRow{Query: tile(q), QueryLabel: classes[q]}
		for j := 0; j < 4; j++ {
			c := (q + j/3) % 3
			r.Neighbours = append(r.Neighbours, tile(c))
			r.Labels = append(r.Labels, classes[c])
			r.Same = append(r.Same, c == q)
			r.Similarity = append(r.Similarity, 0.9-0.1*float32(j))
		}
		rows = append(rows, r)
	}
	out := filepath.Join(root, "report")
	res, err := Write(out, Input{Runs: runs, Eval: &Evaluation{
		Model: "m.onnx", Data: "toy", Classes: classes, NTrain: n, NTest: n, Linear: &pr, Confusion: conf,
		Projection: proj, ProjectionLabels: y, ProjectionMethod: "PCA", ProjectionAxes: [2]string{"PC1", "PC2"}, Neighbours: rows,
	}, Notes: []string{"made by a test"}})
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(res.Markdown)
	if err != nil {
		t.Fatal(err)
	}
	for name, minSize := range map[string][2]int{"curves": {800, 900}, "confusion": {300, 300}, "projection": {600, 500}, "neighbours": {300, 200}} {
		path, ok := res.Figures[name]
		if !ok {
			t.Fatalf("no %s figure in %v", name, res.Figures)
		}
		checkPNG(t, path, minSize[0], minSize[1])
		if filepath.Dir(path) != out || !strings.Contains(string(md), "]("+filepath.Base(path)+")") {
			t.Fatalf("report.md does not link %s:\n%s", filepath.Base(path), md)
		}
	}
	for _, want := range []string{"rotation-2m", "supervised-2m", "| rotation | resnet20c | 400 | 25600 |", "0.8000", "linear probe (logreg)", "made by a test", "kNN top-1 accuracy"} {
		if !strings.Contains(string(md), want) {
			t.Fatalf("report.md lacks %q:\n%s", want, md)
		}
	}

	// Without runs, only the evaluation; without evaluation, only curves.
	res, err = Write(filepath.Join(root, "curves-only"), Input{Runs: runs})
	if err != nil || len(res.Figures) != 1 {
		t.Fatalf("curves only: %v, %v", res, err)
	}
	if _, err := TrainingCurves(nil, filepath.Join(root, "x.png")); err == nil {
		t.Fatal("curves without runs accepted")
	}
}

func TestConfusionMatrixPlotChecksShape(t *testing.T) {
	if err := ConfusionMatrix([][]int{{1, 2}, {3}}, nil, "x", filepath.Join(t.TempDir(), "c.png")); err == nil {
		t.Fatal("ragged matrix accepted")
	}
}

func TestCompactTicks(t *testing.T) {
	for _, tc := range []struct {
		v, scale float64
		want     string
	}{{2500, 12500, "2.5k"}, {12500, 12500, "12.5k"}, {2500, 7500, "2500"}, {0.25, 1, "0.25"}, {1.5e6, 2e6, "1.5M"}, {0, 2e6, "0"}, {20, 100, "20"}} {
		if got := compactNumber(tc.v, tc.scale); got != tc.want {
			t.Fatalf("compactNumber(%v, %v) = %q, want %q", tc.v, tc.scale, got, tc.want)
		}
	}
	for _, tk := range (compactTicks{}).Ticks(0, 13000) {
		if strings.Contains(tk.Label, ".00") {
			t.Fatalf("tick label %q", tk.Label)
		}
	}
}
