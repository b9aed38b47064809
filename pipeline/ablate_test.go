package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/pretext"
)

func TestPermRows(t *testing.T) {
	rows, err := PermRows("1000:maxavg, 10:maxmin,100:random")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[1].N != 10 || rows[1].Method != "maxmin" || rows[2].Name != "n100-random" || !rows[0].Gap || !rows[0].Norm || !rows[0].Jitter {
		t.Fatalf("rows %+v", rows)
	}
	for _, bad := range []string{"100", "x:maxavg", "1:maxavg", "100:best", "400000:random"} {
		if _, err := PermRows(bad); err == nil {
			t.Errorf("PermRows(%q) accepted", bad)
		}
	}
	sc := ShortcutRows(100)
	off := map[string]bool{}
	for _, r := range sc[:3] {
		switch {
		case !r.Gap && r.Norm && r.Jitter:
			off["gap"] = true
		case r.Gap && !r.Norm && r.Jitter:
			off["norm"] = true
		case r.Gap && r.Norm && !r.Jitter:
			off["jitter"] = true
		}
	}
	if len(sc) != 4 || len(off) != 3 || !(sc[3].Gap && sc[3].Norm && sc[3].Jitter) {
		t.Fatalf("shortcut rows %+v: expected each protection off once, then all on", sc)
	}
}

// TestAblateJigsawSmall runs the whole ablation chain (pretrain, export at
// the image size, ONNX Runtime features, linear probe) for two tiny rows and
// the random-init row, and checks the table and the figures it reports.
func TestAblateJigsawSmall(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	ds := filepath.Join(dir, "toy.tar")
	testenv.ToyTar(t, ds, 48, 20, false)
	o := AblateConfig{Data: ds, Arch: "resnet20c", Out: filepath.Join(dir, "out"), Steps: 2, Batch: 4, ValImages: 8, LR: 0.05, Seed: 1}
	rows := []AblateSpec{
		{Name: "n10-maxmin", N: 10, Method: pretext.PermMethodMaxMin, Gap: true, Norm: true, Jitter: true},
		{Name: "no-gap", N: 6, Method: pretext.PermMethodMaxAvg, Gap: false, Norm: false, Jitter: false},
	}
	res, err := Ablate(context.Background(), o, "jigsaw-perms", rows)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 3 || !res.Rows[2].RandomInit || res.ImageSize != 16 || res.TestImages != 20 || res.ValImages != 8 {
		t.Fatalf("result %+v", res)
	}
	for i, r := range res.Rows {
		if r.LinearTop1 < 0 || r.LinearTop1 > 1 || r.JigsawAcc < 0 || r.JigsawAcc > 1 {
			t.Fatalf("row %d accuracies %v %v", i, r.JigsawAcc, r.LinearTop1)
		}
		if _, err := os.Stat(r.Model); err != nil {
			t.Fatalf("row %d model: %v", i, err)
		}
	}
	want, err := pretext.GeneratePermSet(10, pretext.PermMethodMaxMin, 1)
	if err != nil {
		t.Fatal(err)
	}
	avg, minD := want.Stats()
	r := res.Rows[0]
	if r.N != 10 || r.AvgHamming != avg || r.MinHamming != minD || r.Steps != 2 || r.ImagesSeen != 8 || r.Chance != 0.1 {
		t.Fatalf("row 0 %+v, expected n 10, hamming %.3f / %.0f, 2 steps", r, avg, minD)
	}
	if res.Rows[1].Gap || res.Rows[1].Norm || res.Rows[1].Jitter {
		t.Fatalf("row 1 switches %+v", res.Rows[1])
	}
	var b bytes.Buffer
	WritePermsTable(&b, res)
	if !strings.Contains(b.String(), fmt.Sprintf("| 10 | maxmin | %.2f | %.0f |", avg, minD)) ||
		!strings.Contains(b.String(), "| random-init backbone |") {
		t.Fatalf("table:\n%s", b.String())
	}
	b.Reset()
	WriteShortcutsTable(&b, res)
	if !strings.Contains(b.String(), "| no | no | no |") {
		t.Fatalf("shortcuts table:\n%s", b.String())
	}
}

// TestAblateRowResumes kills a row after its first checkpoint (the later
// checkpoints and the end-of-run files removed, as a kill leaves them) and
// checks that the rerun resumes from that checkpoint and ends where the
// uninterrupted row ended.
func TestAblateRowResumes(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	ds := filepath.Join(dir, "toy.tar")
	testenv.ToyTar(t, ds, 48, 20, false)
	var log bytes.Buffer
	o := AblateConfig{Data: ds, Arch: "resnet20c", Steps: 3, Batch: 4, ValImages: 8, LR: 0.05, Seed: 1, CheckpointEvery: 1, Log: &log}
	env, err := loadAblateEnv(o)
	if err != nil {
		t.Fatal(err)
	}
	s := AblateSpec{Name: "n6", N: 6, Method: pretext.PermMethodMaxAvg, Gap: true, Norm: true, Jitter: true}
	whole, err := ablateOne(o, env, s, filepath.Join(dir, "whole"))
	if err != nil {
		t.Fatal(err)
	}
	row := filepath.Join(dir, "killed")
	if _, err := ablateOne(o, env, s, row); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(row, "*"))
	kept := 0
	for _, f := range files {
		switch filepath.Base(f) {
		case "checkpoint-00000001.safetensors":
			kept++
		case "config.json", "metrics.jsonl":
		default:
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	if kept != 1 {
		t.Fatalf("row files %v: no checkpoint at step 1", files)
	}
	log.Reset()
	again, err := ablateOne(o, env, s, row)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "resuming from "+filepath.Join(row, "checkpoint-00000001.safetensors")) {
		t.Fatalf("the rerun did not resume from step 1:\n%s", log.String())
	}
	if again.FinalLoss != whole.FinalLoss || again.JigsawAcc != whole.JigsawAcc || again.LinearTop1 != whole.LinearTop1 || again.Steps != 3 {
		t.Fatalf("resumed row %+v, uninterrupted %+v", again, whole)
	}
}
