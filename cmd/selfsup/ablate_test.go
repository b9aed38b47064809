package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/pretext"
	"github.com/selfsup/selfsup/runtime"
)

func TestPermRows(t *testing.T) {
	rows, err := permRows("1000:maxavg, 10:maxmin,100:random")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[1].n != 10 || rows[1].method != "maxmin" || rows[2].name != "n100-random" || !rows[0].gap || !rows[0].norm || !rows[0].jitter {
		t.Fatalf("rows %+v", rows)
	}
	for _, bad := range []string{"100", "x:maxavg", "1:maxavg", "100:best", "400000:random"} {
		if _, err := permRows(bad); err == nil {
			t.Errorf("permRows(%q) accepted", bad)
		}
	}
	sc := shortcutRows(100)
	off := map[string]bool{}
	for _, r := range sc[:3] {
		switch {
		case !r.gap && r.norm && r.jitter:
			off["gap"] = true
		case r.gap && !r.norm && r.jitter:
			off["norm"] = true
		case r.gap && r.norm && !r.jitter:
			off["jitter"] = true
		}
	}
	if len(sc) != 4 || len(off) != 3 || !(sc[3].gap && sc[3].norm && sc[3].jitter) {
		t.Fatalf("shortcut rows %+v: expected each protection off once, then all on", sc)
	}
}

// TestAblateJigsawSmall runs the whole ablation chain (pretrain, export at
// the image size, ONNX Runtime features, linear probe) for two tiny rows and
// the random-init row, and checks the table and the figures it reports.
func TestAblateJigsawSmall(t *testing.T) {
	if _, err := runtime.LibraryPath(); err != nil {
		t.Skipf("ONNX Runtime not installed: %v", err)
	}
	dir := t.TempDir()
	ds := filepath.Join(dir, "toy.tar")
	writeTar(t, ds, 48, 20, false)
	o := ablateOptions{data: ds, arch: "resnet20c", out: filepath.Join(dir, "out"), steps: 2, batch: 4, valIm: 8, lr: 0.05, seed: 1}
	rows := []ablateSpec{
		{name: "n10-maxmin", n: 10, method: pretext.PermMethodMaxMin, gap: true, norm: true, jitter: true},
		{name: "no-gap", n: 6, method: pretext.PermMethodMaxAvg, gap: false, norm: false, jitter: false},
	}
	res, err := ablate(o, "jigsaw-perms", rows)
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
	printPermsTable(&b, res)
	if !strings.Contains(b.String(), fmt.Sprintf("| 10 | maxmin | %.2f | %.0f |", avg, minD)) ||
		!strings.Contains(b.String(), "| random-init backbone |") {
		t.Fatalf("table:\n%s", b.String())
	}
	b.Reset()
	printShortcutsTable(&b, res)
	if !strings.Contains(b.String(), "| no | no | no |") {
		t.Fatalf("shortcuts table:\n%s", b.String())
	}
}
