package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/selfsup/selfsup/eval/report"
)

// CurvePoint is one reading of a run's kNN monitor.
type CurvePoint struct {
	ImagesSeen int     `json:"images_seen"`
	KNNTop1    float64 `json:"knn_top1"`
}

// readKNNCurve reads the kNN monitor's readings (train.Config.KNNEvery:
// once an epoch and at the end, on the images the run held out) from a
// run's metrics.jsonl (report.ParseMetrics), in order of images seen; a
// reading logged again after a resume replaces the earlier one.
func readKNNCurve(path string) ([]CurvePoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := report.ParseMetrics(f, path)
	if err != nil {
		return nil, err
	}
	at := map[int]float64{}
	for _, r := range recs {
		if r.Has("knn_top1") && r.Has("images_seen") {
			at[int(r["images_seen"])] = r["knn_top1"]
		}
	}
	out := make([]CurvePoint, 0, len(at))
	for n, v := range at {
		out = append(out, CurvePoint{ImagesSeen: n, KNNTop1: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ImagesSeen < out[j].ImagesSeen })
	return out, nil
}

// knnCurvePlot draws knn_curve.png: each pretrained row's kNN monitor
// against the source images it has seen, the curve the issue asks for
// where a target is missed. It returns "" when no run has a reading.
func knnCurvePlot(out string, res *ReproduceResult) (string, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: kNN monitor during pretraining (held-out images)", res.Arch)
	p.X.Label.Text = "source images seen (thousands)"
	p.Y.Label.Text = "kNN top-1 (%)"
	n := 0
	for _, r := range res.Rows {
		if r.Steps == 0 {
			continue
		}
		pts, err := readKNNCurve(filepath.Join(out, "runs", r.Name, "metrics.jsonl"))
		if err != nil || len(pts) == 0 {
			continue // a row measured elsewhere, or a run without the monitor
		}
		xy := make(plotter.XYs, len(pts))
		for i, q := range pts {
			xy[i].X, xy[i].Y = float64(q.ImagesSeen)/1000, 100*q.KNNTop1
		}
		line, marks, err := plotter.NewLinePoints(xy)
		if err != nil {
			return "", err
		}
		line.Color, marks.Color = plotutil.Color(n), plotutil.Color(n)
		marks.Shape = plotutil.Shape(n)
		p.Add(line, marks)
		p.Legend.Add(r.Name, line, marks)
		n++
	}
	if n == 0 {
		return "", nil
	}
	p.Legend.Top, p.Legend.Left = true, true
	path := filepath.Join(out, "knn_curve.png")
	return path, p.Save(vg.Points(520), vg.Points(340), path)
}
