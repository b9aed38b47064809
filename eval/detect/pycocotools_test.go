package detect

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
)

// genCase draws a small random detection problem meant to reach every
// corner of pycocotools' and the devkit's rules: image and class ids out of
// order, images without ground truth, classes without ground truth (with
// and without detections), crowd boxes, difficult boxes, areas on the
// 32^2 / 96^2 boundaries and areas unlike the box's, half-pixel boxes,
// duplicate boxes and detections (ties in IoU), tied scores within and across images, and
// sometimes more than 100 detections in one image and class.
func genCase(r *rand.Rand) (*COCOGroundTruth, []Detection) {
	gt := &COCOGroundTruth{Annotations: []Annotation{}}
	nImg, nCat := 1+r.Intn(5), 1+r.Intn(4)
	for _, i := range r.Perm(nImg) {
		gt.Images = append(gt.Images, Image{ID: int64(10*i + r.Intn(10))})
	}
	for _, c := range r.Perm(nCat) {
		gt.Categories = append(gt.Categories, Category{ID: int64(3*c + 1 + r.Intn(3)), Name: fmt.Sprint("c", c)})
	}
	gtCats := nCat // classes [0, gtCats) of gt.Categories get ground truth
	if nCat > 1 && r.Intn(2) == 0 {
		gtCats--
	}
	coord := func() float64 {
		if r.Intn(4) == 0 {
			return float64(r.Intn(600)) / 2
		}
		return float64(r.Intn(300))
	}
	size := func() (float64, float64) {
		lo, hi := [3]int{1, 20, 80}, [3]int{40, 110, 220}
		s := r.Intn(3)
		return float64(lo[s] + r.Intn(hi[s]-lo[s])), float64(lo[s] + r.Intn(hi[s]-lo[s]))
	}
	score := func() float64 {
		if r.Intn(2) == 0 {
			return float64(1+r.Intn(9)) / 10 // ties
		}
		return r.Float64()
	}
	jitter := func(b Box, k int) Box {
		if k == 0 {
			return b
		}
		j := func() float64 { return float64(r.Intn(2*k+1) - k) }
		return Box{b[0] + j(), b[1] + j(), max(b[2]+j(), 0), max(b[3]+j(), 0)}
	}
	ids := r.Perm(1000)
	var dts []Detection
	for _, im := range gt.Images {
		nGt := 0
		if r.Intn(5) > 0 {
			nGt = r.Intn(8)
		}
		for g := 0; g < nGt; g++ {
			w, h := size()
			a := Annotation{ID: int64(ids[len(gt.Annotations)] + 1), ImageID: im.ID, CategoryID: gt.Categories[r.Intn(gtCats)].ID,
				BBox: Box{coord(), coord(), w, h}, IsCrowd: r.Intn(10) == 0, Difficult: r.Intn(15) == 0}
			switch r.Intn(8) {
			case 0:
				a.Area = 32 * 32
			case 1:
				a.Area = 96 * 96
			case 2:
				a.Area = 0.7 * w * h // a segment's area, not the box's
			default:
				a.Area = w * h
			}
			gt.Annotations = append(gt.Annotations, a)
			if r.Intn(8) == 0 { // the same box again: ties in IoU
				b := a
				b.ID, b.IsCrowd, b.Difficult = int64(ids[len(gt.Annotations)]+1), r.Intn(3) == 0, r.Intn(3) == 0
				gt.Annotations = append(gt.Annotations, b)
			}
			for n := 0; n < 2; n++ { // a detection near it, sometimes two
				if r.Intn(10) < 7-5*n {
					dts = append(dts, Detection{ImageID: im.ID, CategoryID: a.CategoryID, BBox: jitter(a.BBox, r.Intn(3)*(1+int(w)/10)), Score: score()})
				}
			}
		}
		for n := r.Intn(4); n > 0; n-- { // anywhere, any class
			w, h := size()
			dts = append(dts, Detection{ImageID: im.ID, CategoryID: gt.Categories[r.Intn(nCat)].ID, BBox: Box{coord(), coord(), w, h}, Score: score()})
		}
	}
	if r.Intn(8) == 0 && len(gt.Annotations) > 0 { // past maxDets: 100 and more in one image and class
		a := gt.Annotations[r.Intn(len(gt.Annotations))]
		for n := 95 + r.Intn(40); n > 0; n-- {
			dts = append(dts, Detection{ImageID: a.ImageID, CategoryID: a.CategoryID, BBox: jitter(a.BBox, 1+r.Intn(8)), Score: score()})
		}
	}
	if len(dts) == 0 { // pycocotools' loadRes cannot read an empty list
		w, h := size()
		dts = append(dts, Detection{ImageID: gt.Images[0].ID, CategoryID: gt.Categories[0].ID, BBox: Box{coord(), coord(), w, h}, Score: score()})
	}
	r.Shuffle(len(dts), func(i, j int) { dts[i], dts[j] = dts[j], dts[i] })
	return gt, dts
}

// recallCase is one class with ten separate ground-truth boxes in one
// image and detections that hit (exactly) or miss by pattern, best score
// first: "TTTFF" reaches recall 0.3 with three hits.
func recallCase(pattern string) (*COCOGroundTruth, []Detection) {
	gt := &COCOGroundTruth{Images: []Image{{ID: 1}}, Categories: []Category{{ID: 1}}}
	for i := 0; i < 10; i++ {
		b := Box{float64(50 * i), 0, 40, 40}
		gt.Annotations = append(gt.Annotations, Annotation{ID: int64(i + 1), ImageID: 1, CategoryID: 1, BBox: b, Area: 1600})
	}
	var dts []Detection
	hit := 0
	for i, c := range pattern {
		b := Box{float64(50 * i), 100, 40, 40} // misses everything
		if c == 'T' {
			b = gt.Annotations[hit].BBox
			hit++
		}
		dts = append(dts, Detection{ImageID: 1, CategoryID: 1, BBox: b, Score: 1 - float64(i)/100})
	}
	return gt, dts
}

// writeJSON writes v to dir/name and returns the path.
func writeJSON(t *testing.T, dir, name string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAgainstPycocotools scores generated cases with COCOEval and
// VOC07AP50 and with testdata/reference.py (pycocotools 2.0.11 and a numpy
// copy of the VOC devkit), and demands agreement to 1e-9 on all thirteen
// numbers, and bit-equal thresholds.
func TestAgainstPycocotools(t *testing.T) {
	py := testenv.Python(t, "pycocotools", "numpy")
	n := 300
	if testing.Short() {
		n = 60
	}
	r := rand.New(rand.NewSource(12))
	type pair struct {
		gt  *COCOGroundTruth
		dts []Detection
	}
	var cases []pair
	for _, p := range []string{"TTTFFFFFFF", "TTTFFTTTTFF", "FTFTTFTFTTF", "TTTTTTTFFF", "T"} {
		gt, dts := recallCase(p)
		cases = append(cases, pair{gt, dts})
	}
	for len(cases) < n {
		gt, dts := genCase(r)
		cases = append(cases, pair{gt, dts})
	}
	dir := t.TempDir()
	var files []map[string]string
	for i, c := range cases {
		files = append(files, map[string]string{
			"gt": writeJSON(t, dir, fmt.Sprintf("gt%d.json", i), c.gt),
			"dt": writeJSON(t, dir, fmt.Sprintf("dt%d.json", i), c.dts),
		})
	}
	list := writeJSON(t, dir, "cases.json", files)
	cmd := exec.Command(py, filepath.Join("testdata", "reference.py"), list)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference.py: %v", err)
	}
	var ref struct {
		Cases []struct {
			Stats []float64 `json:"stats"`
			VOC   float64   `json:"voc07_ap50"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatal(err)
	}
	var th struct {
		IoU    []float64 `json:"iou_thresholds"`
		Recall []float64 `json:"recall_thresholds"`
		VOC    []float64 `json:"voc07_thresholds"`
	}
	if err := json.Unmarshal(out, &th); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want []float64
	}{{"IoU", IoUThresholds(), th.IoU}, {"recall", RecallThresholds(), th.Recall}, {"VOC07", VOC07Thresholds(), th.VOC}} {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s thresholds: got %v, numpy %v", c.name, c.got, c.want)
		}
	}
	if len(ref.Cases) != len(cases) {
		t.Fatalf("reference.py scored %d cases, want %d", len(ref.Cases), len(cases))
	}
	names := []string{"ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large", "voc07_ap50"}
	var maxDiff [13]float64
	undefined := [13]int{}
	for i, c := range cases {
		// through the readers, as the reference reads them
		gt, err := ReadCOCOGroundTruth(files[i]["gt"])
		if err != nil {
			t.Fatal(err)
		}
		dts, err := ReadDetections(files[i]["dt"], gt)
		if err != nil {
			t.Fatal(err)
		}
		c = pair{gt, dts}
		m, err := COCOEval(c.gt, c.dts)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		voc, err := VOC07AP50(c.gt, c.dts)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		s := m.Stats()
		got := append(s[:], voc)
		want := append(ref.Cases[i].Stats, ref.Cases[i].VOC)
		for j := range got {
			d := math.Abs(got[j] - want[j])
			maxDiff[j] = max(maxDiff[j], d)
			if want[j] == -1 {
				undefined[j]++
			}
			if !(d <= 1e-9) {
				t.Errorf("case %d (%s, %s): %s = %.17g, reference %.17g", i, files[i]["gt"], files[i]["dt"], names[j], got[j], want[j])
			}
		}
	}
	for j, name := range names {
		t.Logf("%-10s max |Go - reference| = %.3g over %d cases (%d of them -1)", name, maxDiff[j], len(cases), undefined[j])
	}
	if t.Failed() {
		t.Logf("cases kept in %s", dir)
	}
}
