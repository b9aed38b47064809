package detect

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func oneBox() *COCOGroundTruth {
	return &COCOGroundTruth{
		Images:      []Image{{ID: 7}},
		Categories:  []Category{{ID: 3, Name: "cat"}},
		Annotations: []Annotation{{ID: 1, ImageID: 7, CategoryID: 3, BBox: Box{10, 20, 50, 40}, Area: 2000}},
	}
}

// A perfect detection scores 1 wherever there is ground truth (a medium
// box: -1 for small and large); no detection scores 0.
func TestPerfectAndEmpty(t *testing.T) {
	gt := oneBox()
	for _, c := range []struct {
		name      string
		dts       []Detection
		want, voc float64
	}{
		{"perfect", []Detection{{ImageID: 7, CategoryID: 3, BBox: Box{10, 20, 50, 40}, Score: 0.9}}, 1, 1},
		{"empty", nil, 0, 0},
	} {
		m, err := COCOEval(gt, c.dts)
		if err != nil {
			t.Fatal(err)
		}
		w := c.want
		want := [12]float64{w, w, w, -1, w, -1, w, w, w, -1, w, -1}
		if got := m.Stats(); !nearAll(got[:], want[:]) {
			t.Errorf("%s: COCO %v, want %v", c.name, m.Stats(), want)
		}
		voc, err := VOC07AP50(gt, c.dts)
		if err != nil || !near(voc, c.voc) {
			t.Errorf("%s: VOC07 %v, %v, want %v", c.name, voc, err, c.voc)
		}
	}
}

// near allows for precision's tp/(tp+fp+eps), which is not quite 1.
func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func nearAll(a, b []float64) bool {
	for i := range a {
		if !near(a[i], b[i]) {
			return false
		}
	}
	return true
}

// Recall reaching exactly 0.3 or 0.7 sits on the interpolation
// boundaries: numpy's arange puts VOC07's points at 0.30000000000000004
// and 0.7000000000000001, linspace puts COCO's 30th at exactly 0.3 but its
// 70th at 0.7000000000000001, so a recall of 0.3 earns 31 of COCO's 101
// points and 3 of VOC's 11, and 0.7 earns 70 and 7 (precision 1 up to it,
// exact boxes, so every IoU threshold agrees).
func TestRecallBoundaries(t *testing.T) {
	for _, c := range []struct {
		pattern       string
		coco, voc, ar float64
	}{
		{"TTTFFFFFFF", 31.0 / 101, 3.0 / 11, 0.3},
		{"TTTTTTTFFF", 70.0 / 101, 7.0 / 11, 0.7},
	} {
		gt, dts := recallCase(c.pattern)
		m, err := COCOEval(gt, dts)
		if err != nil {
			t.Fatal(err)
		}
		if !near(m.AP, c.coco) || !near(m.AP50, c.coco) || !near(m.APMedium, c.coco) || !near(m.AR100, c.ar) || !near(m.AR1, 0.1) {
			t.Errorf("%s: AP %v AP50 %v APm %v AR100 %v AR1 %v, want AP %v, AR100 %v, AR1 0.1", c.pattern, m.AP, m.AP50, m.APMedium, m.AR100, m.AR1, c.coco, c.ar)
		}
		voc, err := VOC07AP50(gt, dts)
		if err != nil || !near(voc, c.voc) {
			t.Errorf("%s: VOC07 %v, %v, want %v", c.pattern, voc, err, c.voc)
		}
	}
}

// A detection on a crowd region is ignored, not a false positive: the
// class's one real box found at full precision still gives AP 1. The IoU
// with a crowd region is over the detection's area: a detection inside
// the region has IoU 1 with it. (VOC07 ignores a detection only when its
// IoU with a difficult box exceeds 0.5, so it is not checked here.)
func TestCrowd(t *testing.T) {
	gt := oneBox()
	gt.Annotations = append(gt.Annotations, Annotation{ID: 2, ImageID: 7, CategoryID: 3, BBox: Box{200, 200, 300, 300}, Area: 90000, IsCrowd: true})
	if got := cocoIoU(Box{250, 250, 10, 10}, gt.Annotations[1].BBox, true); got != 1 {
		t.Errorf("IoU inside a crowd region %v, want 1", got)
	}
	dts := []Detection{
		{ImageID: 7, CategoryID: 3, BBox: Box{250, 250, 10, 10}, Score: 0.99},
		{ImageID: 7, CategoryID: 3, BBox: Box{300, 300, 10, 10}, Score: 0.98},
		{ImageID: 7, CategoryID: 3, BBox: Box{10, 20, 50, 40}, Score: 0.5},
	}
	m, err := COCOEval(gt, dts)
	if err != nil {
		t.Fatal(err)
	}
	if !near(m.AP, 1) || m.AR1 != 0 || !near(m.AR10, 1) {
		t.Errorf("AP %v AR1 %v AR10 %v, want 1, 0, 1", m.AP, m.AR1, m.AR10)
	}
}

// The devkit's IoU counts pixels inclusively: boxes [0,0,9,9] and
// [5,0,9,9] are 10x10 squares overlapping in 5x10, IoU 50/150.
func TestVOCIoU(t *testing.T) {
	if got, want := vocIoU(Box{0, 0, 9, 9}, Box{5, 0, 9, 9}), 50.0/150; got != want {
		t.Errorf("vocIoU %v, want %v", got, want)
	}
	if got, want := cocoIoU(Box{0, 0, 10, 10}, Box{5, 0, 10, 10}, false), 50.0/150; got != want {
		t.Errorf("cocoIoU %v, want %v", got, want)
	}
}

func write(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const gtText = `{"images":[{"id":1},{"id":2}],"categories":[{"id":5,"name":"dog"}],
 "annotations":[{"id":1,"image_id":1,"category_id":5,"bbox":[0,0,20,20],"area":400,"iscrowd":0},
                {"id":2,"image_id":2,"category_id":5,"bbox":[10,10,200,100],"iscrowd":0,"difficult":1}]}`

// Evaluate is what `selfsup eval ap` runs: files in, the thirteen numbers
// out under lower-case JSON keys.
func TestEvaluateFiles(t *testing.T) {
	gt := write(t, "gt.json", gtText)
	dt := write(t, "dt.json", `[{"image_id":1,"category_id":5,"bbox":[0,0,20,20],"score":0.8},
	                           {"image_id":2,"category_id":5,"bbox":[10,10,200,100],"score":0.9}]`)
	m, err := Evaluate(gt, dt)
	if err != nil {
		t.Fatal(err)
	}
	// COCO ignores "difficult": both boxes count, both found. VOC07 ignores
	// the difficult one, and its detection with it.
	if !near(m.AP, 1) || !near(m.APSmall, 1) || !near(m.APLarge, 1) || m.APMedium != -1 || !near(m.VOC07AP50, 1) || m.Dets != 2 || m.Boxes != 2 {
		t.Errorf("got %+v, %v", m.COCOMetrics.Stats(), m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]float64
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large", "voc07_ap50"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("JSON %s has no %q", b, k)
		}
	}
	if s := m.String(); !strings.Contains(s, "maxDets=100 ] = 1.000") || !strings.Contains(s, "VOC07") {
		t.Errorf("String():\n%s", s)
	}
}

// Bad input is refused with the file's name and what is wrong in it.
func TestReadErrors(t *testing.T) {
	gt := write(t, "gt.json", gtText)
	for _, c := range []struct{ name, gt, dt, want string }{
		{"bad JSON", `{"images": [`, "", "bad JSON"},
		{"not COCO", `{"annotations": []}`, "", `no "images"`},
		{"negative width", strings.Replace(gtText, "[0,0,20,20]", "[0,0,-20,20]", 1), "", "negative width"},
		{"unknown category in gt", strings.Replace(gtText, `"category_id":5,"bbox":[0`, `"category_id":6,"bbox":[0`, 1), "", "unknown category_id 6"},
		{"duplicate annotation", strings.Replace(gtText, `"id":2,"image_id"`, `"id":1,"image_id"`, 1), "", "duplicate annotation id 1"},
		{"annotation id 0", strings.Replace(gtText, `"id":2,"image_id"`, `"id":0,"image_id"`, 1), "", "annotation id 0"},
		{"short bbox", strings.Replace(gtText, "[0,0,20,20]", "[0,0,20]", 1), "", "bbox has 3 numbers"},
		{"unknown image", "", `[{"image_id":3,"category_id":5,"bbox":[0,0,1,1],"score":1}]`, "image_id 3 is not in the ground truth"},
		{"unknown category", "", `[{"image_id":1,"category_id":4,"bbox":[0,0,1,1],"score":1}]`, "category_id 4 is not in the ground truth"},
		{"negative height", "", `[{"image_id":1,"category_id":5,"bbox":[0,0,1,-1],"score":1}]`, "negative width or height"},
		{"not a list", "", `{"image_id":1}`, "bad JSON"},
	} {
		gtPath, dtPath := gt, write(t, "dt.json", c.dt)
		if c.gt != "" {
			gtPath = write(t, "bad_gt.json", c.gt)
		}
		_, err := Evaluate(gtPath, dtPath)
		path := gtPath
		if c.gt == "" {
			path = dtPath
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming %s and saying %q", c.name, err, path, c.want)
		}
	}
	if _, err := Evaluate(filepath.Join(t.TempDir(), "missing.json"), gt); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
}
