package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/train"
)

// TestReproduceSmall runs the whole protocol on a toy set (two methods, a
// two-row Table 4, Table 5, two training steps a row) and checks the
// report, the floors, the orderings and that a rerun measures nothing
// again.
func TestReproduceSmall(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	ds := filepath.Join(dir, "toy.tar")
	testenv.ToyTar(t, ds, 64, 20, false)
	var log bytes.Buffer
	c := ReproduceConfig{Data: ds, Out: filepath.Join(dir, "out"), Steps: 2, Methods: []string{"rotation", "jigsaw"},
		Ablations: true, PermRows: "10:maxavg,6:maxavg", BNImages: 32, Seed: 1, Log: &log}
	res, err := Reproduce(context.Background(), c)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	want := []string{"random-init-bn01", "random-init", "raw-pixels", "rotation", "jigsaw"}
	if len(res.Rows) != len(want) {
		t.Fatalf("%d rows, expected %v", len(res.Rows), want)
	}
	for i, r := range res.Rows {
		if r.Name != want[i] || r.Linear == nil || r.KNN == nil || r.LowShot == nil {
			t.Fatalf("row %d: %+v", i, r)
		}
		if r.Linear.Best.Top1 < 0 || r.Linear.Best.Top1 > 1 || r.BNRecalibrated != (r.Name != "random-init-bn01" && r.Name != "raw-pixels") {
			t.Fatalf("row %s: best %+v, recalibrated %v", r.Name, r.Linear.Best, r.BNRecalibrated)
		}
	}
	if res.Rows[3].Steps != 2 || res.Perms == nil || len(res.Perms.Rows) != 2 || res.Shortcuts == nil || len(res.Shortcuts.Rows) != 4 {
		t.Fatalf("steps %d, table 4 %+v, table 5 %+v", res.Rows[3].Steps, res.Perms, res.Shortcuts)
	}
	status := map[string]string{}
	for _, o := range res.Orderings {
		status[o.Claim[:12]] = o.Status
	}
	if status["PIRL-jigsaw "] != "not measured" || status["Table 4: few"] == "not measured" || status["Table 5: wit"] == "not measured" {
		t.Fatalf("orderings %+v", res.Orderings)
	}
	md, err := os.ReadFile(res.Report)
	if err != nil {
		t.Fatal(err)
	}
	rot := res.Rows[3]
	if rot.ImagesSeen <= 0 {
		t.Fatalf("rotation row: %d images seen", rot.ImagesSeen)
	}
	stepsCell := fmt.Sprintf("| %d (%s) |", rot.Steps, countSI(rot.ImagesSeen))
	allOn := res.Shortcuts.Rows[3] // Table 5's rows give their steps too
	allOnCell := fmt.Sprintf("| yes | yes | yes | %.4f | %s (%s) | %d |", allOn.JigsawAcc, pct(allOn.LinearTop1), allOn.LinearLayer, allOn.Steps)
	for _, s := range []string{"random init (BN recalibrated)", "random init (BN 0/1)", "stage2_pool", "Table 4", "Table 5", "PIRL vs its pretext", "orderings", "linear.png", "steps (source images)", stepsCell, allOnCell} {
		if !strings.Contains(string(md), s) {
			t.Fatalf("report lacks %q:\n%s", s, md)
		}
	}
	for _, f := range []string{"results.json", "linear.png", "models/rotation.onnx", "runs/jigsaw/trained.json"} {
		if _, err := os.Stat(filepath.Join(c.Out, f)); err != nil {
			t.Fatal(err)
		}
	}
	// A rerun reads every result back and trains nothing.
	log.Reset()
	res2, err := Reproduce(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "calibration") || strings.Contains(log.String(), "starting afresh") || strings.Count(log.String(), "already evaluated") != 5 {
		t.Fatalf("the rerun measured again:\n%s", log.String())
	}
	for i := range res.Rows {
		if res2.Rows[i].Linear.Best != res.Rows[i].Linear.Best {
			t.Fatalf("row %s changed on the rerun: %+v vs %+v", res.Rows[i].Name, res2.Rows[i].Linear.Best, res.Rows[i].Linear.Best)
		}
	}
	if _, err := Reproduce(context.Background(), ReproduceConfig{Data: ds, Out: c.Out, Steps: 1, Methods: []string{"random-init"}}); err == nil {
		t.Fatal("random-init as a method was accepted")
	}
}

// --streams trains the rows on two streams; a task that cannot
// (deepcluster) falls back to one and says so.
func TestReproduceStreams(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	ds := filepath.Join(dir, "toy.tar")
	testenv.ToyTar(t, ds, 64, 20, false)
	var log bytes.Buffer
	c := ReproduceConfig{Data: ds, Out: filepath.Join(dir, "out"), Steps: 2, Methods: []string{"rotation", "deepcluster"},
		BNImages: 32, Seed: 1, Streams: 2, Log: &log}
	if _, err := Reproduce(context.Background(), c); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for task, want := range map[string]int{"rotation": 2, "deepcluster": 1} {
		var cfg train.Config
		b, err := os.ReadFile(filepath.Join(c.Out, "runs", task, "config.json"))
		if err == nil {
			err = json.Unmarshal(b, &cfg)
		}
		if err != nil {
			t.Fatal(err)
		}
		if max(cfg.Streams, 1) != want {
			t.Errorf("%s trained on %d streams, expected %d", task, cfg.Streams, want)
		}
	}
	if !strings.Contains(log.String(), "deepcluster: train: --streams") || !strings.Contains(log.String(), "training it on one stream") {
		t.Fatalf("no word of the fallback:\n%s", log.String())
	}
}

// countSI: the steps column's image counts.
func TestCountSI(t *testing.T) {
	for n, want := range map[int]string{0: "0", 950: "950", 1000: "1.0k", 9_949: "9.9k", 10_000: "10k", 237_376: "237k", 999_499: "999k", 999_500: "1.00M", 1_000_000: "1.00M", 1_315_584: "1.32M"} {
		if got := countSI(n); got != want {
			t.Errorf("countSI(%d) = %q, want %q", n, got, want)
		}
	}
}

// A Methods entry may carry its own budget.
func TestReproduceMethodBudget(t *testing.T) {
	c := ReproduceConfig{Budget: 45 * time.Minute}
	for _, tc := range []struct {
		in   string
		name string
		d    time.Duration
	}{{"rotation", "rotation", 45 * time.Minute}, {"relpos:15m", "relpos", 15 * time.Minute}, {"npid:1h30m", "npid", 90 * time.Minute}} {
		name, d, err := c.methodBudget(tc.in)
		if err != nil || name != tc.name || d != tc.d {
			t.Fatalf("%q: %q %v %v, expected %q %v", tc.in, name, d, err, tc.name, tc.d)
		}
	}
	for _, bad := range []string{"relpos:", "relpos:15", "relpos:-5m", "relpos:soon"} {
		if _, _, err := c.methodBudget(bad); err == nil || !strings.Contains(err.Error(), "TASK:DURATION") {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

// TestReproduceDense adds the frozen-feature dense probe to a tiny
// reproduction: every backbone and the two baselines get segmentation and
// detection heads, the report says so with the sanity gate, and a rerun
// trains no head again.
func TestReproduceDense(t *testing.T) {
	testenv.ORT(t)
	dense, _ := denseFixture(t)
	// A grayscale photograph among the colour ones, as COCO128 has: batch
	// norm is re-estimated on it converted to RGB.
	gray := image.NewGray(image.Rect(0, 0, 32, 32))
	for p := range gray.Pix {
		gray.Pix[p] = uint8(p)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, gray); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dense, "images", "train", "train03.png"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ds := filepath.Join(dir, "toy.tar")
	testenv.ToyTar(t, ds, 64, 20, false)
	var log bytes.Buffer
	c := ReproduceConfig{Data: ds, Out: filepath.Join(dir, "out"), Steps: 1, Methods: []string{"supervised", "rotation"}, BNImages: 16, Seed: 1,
		Dense: dense, DenseSize: 32, DenseTasks: []string{DenseSegment, DenseDetect}, DenseSplits: [2]string{"train", "val"}, Log: &log}
	res, err := Reproduce(context.Background(), c)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	want := []string{"random-init", "supervised", "rotation", LayerPixels, LayerPrior}
	if len(res.Dense) != len(want) {
		t.Fatalf("dense rows %d, want %v", len(res.Dense), want)
	}
	for i, r := range res.Dense {
		if r.Name != want[i] || r.Segment == nil || r.Detect == nil || r.Segment.NTest != 6 || r.Detect.NTest != 6 {
			t.Fatalf("dense row %d: %+v, want %s with both probes on 6 test images", i, r, want[i])
		}
	}
	// The baselines are the commands' own: colour alone separates the
	// fixture's classes, so raw pixels segment most pixels right, and the
	// prior-only head cannot beat them.
	pix, prior := res.Dense[3].Segment, res.Dense[4].Segment
	if pix.Layer != LayerPixels || prior.Layer != LayerPrior || pix.PixelAcc < 0.7 || prior.MIoU >= pix.MIoU {
		t.Errorf("baselines: pixels %v; prior %v", pix, prior)
	}
	measured := 0
	for _, o := range res.Orderings {
		if strings.HasPrefix(o.Claim, "dense probe") {
			if o.Status == "not measured" && !strings.Contains(o.Claim, "PIRL-jigsaw within") {
				t.Errorf("ordering %q not measured", o.Claim)
			}
			measured++
		}
	}
	md, err := os.ReadFile(res.Report)
	if err != nil {
		t.Fatal(err)
	}
	if measured != 6 || !strings.Contains(string(md), "Frozen-feature dense probe on ") || !strings.Contains(string(md), "| prior |") {
		t.Fatalf("%d dense orderings; report:\n%s", measured, md)
	}
	log.Reset()
	res2, err := Reproduce(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "dense probe") || res2.Dense[1].Segment.MIoU != res.Dense[1].Segment.MIoU {
		t.Fatalf("the rerun probed again:\n%s", log.String())
	}
}
