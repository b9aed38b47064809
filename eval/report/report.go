package report

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/selfsup/selfsup/eval"
)

// Evaluation is the frozen-feature part of a report: results of one model
// on one labelled dataset. Every field is optional; sections without data
// are left out.
type Evaluation struct {
	Model   string   // the ONNX model evaluated (for the text)
	Data    string   // the dataset (for the text)
	Classes []string // class names by index
	NTrain  int      // training images behind the probe and kNN
	NTest   int

	Linear *eval.ProbeResult
	KNN    *eval.KNNResult
	// Confusion is the linear probe's confusion matrix on the test set,
	// Confusion[true][predicted].
	Confusion [][]int

	// Projection holds 2-D coordinates [n, 2] of test features and
	// ProjectionLabels their classes; ProjectionMethod names the method
	// ("PCA") and ProjectionAxes label the axes.
	Projection       []float64
	ProjectionLabels []int
	ProjectionMethod string
	ProjectionAxes   [2]string

	// Neighbours are query test images with their nearest training images.
	Neighbours []NeighbourRow
}

// Input is what Write puts in a report.
type Input struct {
	Title string // default "selfsup report"
	Runs  []*Run // training runs to tabulate and plot (may be empty)
	Eval  *Evaluation
	// Notes are extra Markdown paragraphs, for example the commands that
	// made the report.
	Notes []string
}

// Output lists what Write wrote.
type Output struct {
	Markdown string `json:"markdown"`
	// Figures maps a figure's name (curves, confusion, projection,
	// neighbours) to its PNG file.
	Figures map[string]string `json:"figures"`
}

// Write makes dir (if needed) and writes report.md with the figures it
// references as PNG files beside it: curves.png (training curves of all
// runs), confusion.png, projection.png and neighbours.png (when in.Eval has
// the data for them).
func Write(dir string, in Input) (*Output, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	out := &Output{Markdown: filepath.Join(dir, "report.md"), Figures: map[string]string{}}
	title := in.Title
	if title == "" {
		title = "selfsup report"
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# %s\n\nWritten %s.\n\n", title, time.Now().UTC().Format("2006-01-02 15:04 UTC"))

	if len(in.Runs) > 0 {
		md.WriteString("## Training runs\n\n")
		md.WriteString("| run | task | arch | steps | images seen | wall time (s) | images/s | loss (mean of last 5 logs) | pretext accuracy (last log) | held-out pretext accuracy |\n")
		md.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range in.Runs {
			last := r.Last()
			fmt.Fprintf(&md, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Name, orDash(r.Task), orDash(r.Arch),
				num(last, "step", "%.0f"), num(last, "images_seen", "%.0f"), num(last, "elapsed_s", "%.1f"),
				num(last, "images_per_sec", "%.1f"), meanLast(r, "loss", 5), num(last, "pretext_acc", "%.4f"), num(r.Final, "val_pretext_acc", "%.4f"))
		}
		md.WriteString("\n")
		path := filepath.Join(dir, "curves.png")
		metrics, err := TrainingCurves(in.Runs, path)
		if err != nil {
			return nil, err
		}
		out.Figures["curves"] = path
		fmt.Fprintf(&md, "### Training curves\n\n%s against images seen (left) and wall time (right), one line per run.\n\n![training curves](%s)\n\n",
			strings.Join(labelsOf(metrics), ", "), relTo(dir, path))
	}

	if e := in.Eval; e != nil {
		md.WriteString("## Frozen features\n\n")
		fmt.Fprintf(&md, "Model `%s` on `%s`: %d training and %d test images, %d classes.\n\n", e.Model, e.Data, e.NTrain, e.NTest, len(e.Classes))
		if e.Linear != nil || e.KNN != nil {
			md.WriteString("| evaluation | top-1 | top-5 | notes |\n|---|---:|---:|---|\n")
			if l := e.Linear; l != nil {
				reg := fmt.Sprintf("L2 %g", l.L2)
				if l.Classifier == eval.ClassifierSVM {
					reg = fmt.Sprintf("C %g", l.C)
				}
				fmt.Fprintf(&md, "| linear probe (%s) | %.4f | %.4f | %s chosen on %d held-out training images; test mAP %.4f |\n", l.Classifier, l.Top1, l.Top5, reg, l.NVal, l.MAP)
			}
			if k := e.KNN; k != nil {
				fmt.Fprintf(&md, "| kNN | %.4f | %.4f | k = %d, temperature %g, cosine similarity |\n", k.Top1, k.Top5, k.K, k.Temperature)
			}
			md.WriteString("\n")
		}
		if len(e.Confusion) > 0 {
			path := filepath.Join(dir, "confusion.png")
			if err := ConfusionMatrix(e.Confusion, e.Classes, "Linear probe: confusion matrix on the test set (row-normalised)", path); err != nil {
				return nil, err
			}
			out.Figures["confusion"] = path
			fmt.Fprintf(&md, "### Confusion matrix\n\nRows: true class; columns: predicted class; each cell gives the count and the share of its row.\n\n![confusion matrix](%s)\n\n", relTo(dir, path))
		}
		if len(e.Projection) > 0 {
			path := filepath.Join(dir, "projection.png")
			method := e.ProjectionMethod
			if method == "" {
				method = "projection"
			}
			if err := Scatter(e.Projection, e.ProjectionLabels, e.Classes, fmt.Sprintf("%s of %d test features, coloured by class", method, len(e.ProjectionLabels)), e.ProjectionAxes[0], e.ProjectionAxes[1], path); err != nil {
				return nil, err
			}
			out.Figures["projection"] = path
			fmt.Fprintf(&md, "### %s of test features\n\n![%s](%s)\n\n", method, strings.ToLower(method), relTo(dir, path))
		}
		if len(e.Neighbours) > 0 {
			path := filepath.Join(dir, "neighbours.png")
			if err := NeighbourGrid(e.Neighbours, "Test queries and their nearest training images (cosine similarity of features)", 64, path); err != nil {
				return nil, err
			}
			out.Figures["neighbours"] = path
			same, total := 0, 0
			for _, r := range e.Neighbours {
				for _, s := range r.Same {
					total++
					if s {
						same++
					}
				}
			}
			fmt.Fprintf(&md, "### Nearest neighbours\n\n%d of %d neighbours shown share the query's class.\n\n![nearest neighbours](%s)\n\n", same, total, relTo(dir, path))
		}
	}
	for _, n := range in.Notes {
		md.WriteString(n)
		md.WriteString("\n\n")
	}
	if err := os.WriteFile(out.Markdown, []byte(md.String()), 0o644); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return out, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func num(r Record, key, format string) string {
	if v, ok := r[key]; ok {
		return fmt.Sprintf(format, v)
	}
	return "-"
}

// meanLast is the mean of the last n values of key over the run's records.
func meanLast(r *Run, key string, n int) string {
	_, ys := r.Series("step", key)
	if len(ys) == 0 {
		return "-"
	}
	ys = ys[max(0, len(ys)-n):]
	var s float64
	for _, v := range ys {
		s += v
	}
	return fmt.Sprintf("%.4f", s/float64(len(ys)))
}

func labelsOf(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = labelOf(k)
	}
	if len(out) > 0 {
		out[0] = strings.ToUpper(out[0][:1]) + out[0][1:]
	}
	return out
}
