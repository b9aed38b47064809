package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The kNN curve keeps monitor readings only, in order of images seen, the
// last reading of a step logged twice (a resumed run) winning.
func TestReadKNNCurve(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "metrics.jsonl")
	lines := []string{
		`{"step":10,"images_seen":640,"loss":1.3}`,
		`{"step":20,"images_seen":1280,"elapsed_s":3,"knn_top1":0.25}`,
		`{"step":40,"images_seen":2560,"knn_top1":0.5}`,
		`{"step":20,"images_seen":1280,"knn_top1":0.3}`,
		`{"step":40,"val_pretext_acc":0.9}`,
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pts, err := readKNNCurve(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 2 || pts[0] != (CurvePoint{1280, 0.3}) || pts[1] != (CurvePoint{2560, 0.5}) {
		t.Fatalf("curve %+v", pts)
	}
	if err := os.WriteFile(path, []byte(lines[0]+"\n{\"step\":\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readKNNCurve(path); err == nil || !strings.Contains(err.Error(), "metrics.jsonl:2") {
		t.Fatalf("a truncated line: %v", err)
	}
}

// knn_curve.png is drawn from the rows' runs, and not at all when no run
// has a reading.
func TestKNNCurvePlot(t *testing.T) {
	out := t.TempDir()
	res := &ReproduceResult{Arch: "resnet20c", Rows: []*MethodResult{{Name: "random-init"}, {Name: "rotation", Steps: 40}, {Name: "jigsaw", Steps: 40}}}
	path, err := knnCurvePlot(out, res)
	if err != nil || path != "" {
		t.Fatalf("no readings: %q %v", path, err)
	}
	run := filepath.Join(out, "runs", "rotation")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	m := `{"images_seen":1280,"knn_top1":0.3}` + "\n" + `{"images_seen":2560,"knn_top1":0.4}` + "\n"
	if err := os.WriteFile(filepath.Join(run, "metrics.jsonl"), []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	if path, err = knnCurvePlot(out, res); err != nil || path != filepath.Join(out, "knn_curve.png") {
		t.Fatalf("%q %v", path, err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() < 1000 {
		t.Fatalf("knn_curve.png: %v", err)
	}
}
