package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// eval ap reads a COCO ground truth and a results file and prints the
// metrics as one JSON line; a detection of an unknown image fails with
// the file's name.
func TestEvalAP(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	gt, dt, bad := filepath.Join(dir, "gt.json"), filepath.Join(dir, "dt.json"), filepath.Join(dir, "bad.json")
	for p, text := range map[string]string{
		gt:  `{"images":[{"id":1}],"categories":[{"id":1}],"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[0,0,50,50],"area":2500,"iscrowd":0}]}`,
		dt:  `[{"image_id":1,"category_id":1,"bbox":[0,0,50,50],"score":0.9},{"image_id":1,"category_id":1,"bbox":[60,60,50,50],"score":0.95}]`,
		bad: `[{"image_id":2,"category_id":1,"bbox":[0,0,50,50],"score":0.9}]`,
	} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var m map[string]float64
	lastJSON(t, runCmd(t, nil, bin, "eval", "ap", "--gt", gt, "--dt", dt, "--json"), &m)
	// a false positive first, then the hit: precision 1/2 at recall 1
	if d := m["ap50"] - 0.5; d > 1e-9 || d < -1e-9 || m["ar100"] != 1 || m["ap_small"] != -1 {
		t.Errorf("got %v", m)
	}
	if d := m["voc07_ap50"] - 0.5; d > 1e-9 || d < -1e-9 {
		t.Errorf("voc07_ap50 %v, want 0.5", m["voc07_ap50"])
	}
	r := runCmd(t, nil, bin, "eval", "ap", "--gt", gt, "--dt", bad)
	if r.code == 0 || !strings.Contains(r.stderr, bad) || !strings.Contains(r.stderr, "image_id 2") {
		t.Errorf("unknown image: exit %d, stderr %q", r.code, r.stderr)
	}
}
