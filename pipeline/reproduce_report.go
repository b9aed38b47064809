package pipeline

import (
	"fmt"
	"image/color"
	"io"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/selfsup/selfsup/train"
)

// paperLinear is ImageNet linear top-1 (%) of ResNet-50 features as the
// seed quotes PIRL's tables (Misra & van der Maaten 2019, Tables 2 and 5;
// Goyal et al. 2019's protocol). NPID is NPID++, the paper's stronger
// re-implementation; the tasks the seed gives no number for are absent.
var paperLinear = map[string]float64{
	"supervised": 75.9, "rotation": 48.9, "jigsaw": 45.7, "npid": 59.0,
	"pirl-rotation": 60.2, "pirl-jigsaw": 62.2, "pirl-jigsaw-rotation": 63.1,
}

// paperLowShot is ImageNet low-shot top-5 (%) with 1% and 10% of the labels
// (the seed's PIRL table; random init and NPID from Wu et al.).
var paperLowShot = map[string][2]float64{
	"random-init": {22.0, 59.0}, "npid": {39.2, 77.4}, "jigsaw": {45.3, 79.3}, "pirl-jigsaw": {57.2, 83.8},
}

// paperTable4 is Noroozi & Favaro 2016, Table 4: permutations, average and
// minimum Hamming distance, jigsaw accuracy (%), VOC detection mAP (%).
var paperTable4 = [][5]float64{
	{1000, 8.00, 2, 71, 53.2}, {1000, 6.35, 2, 62, 51.3}, {1000, 3.99, 2, 54, 50.2}, {100, 8.08, 2, 88, 52.6},
	{95, 8.08, 3, 90, 52.4}, {85, 8.07, 4, 91, 52.7}, {71, 8.07, 5, 92, 52.8}, {35, 8.13, 6, 94, 52.6},
	{10, 8.57, 7, 97, 49.2}, {7, 8.95, 8, 98, 49.6}, {6, 9, 9, 99, 49.7},
}

// paperTable5 is Noroozi & Favaro 2016, Table 5: gap, per-tile
// normalisation, colour jitter -> jigsaw accuracy (%), detection mAP (%).
var paperTable5 = []struct {
	gap, norm, jitter bool
	acc, det          float64
}{{false, true, true, 98, 47.7}, {true, false, true, 90, 43.5}, {true, true, false, 89, 51.1}, {true, true, true, 88, 52.6}}

// Ordering is one claim of the seed, checked on our numbers.
type Ordering struct {
	Claim string `json:"claim"`
	// Status is "holds", "does not hold" or "not measured".
	Status string `json:"status"`
	Detail string `json:"detail"`
}

func best(r *MethodResult) float64 {
	if r == nil || r.Linear == nil {
		return -1
	}
	return r.Linear.Best.Top1
}

// CheckOrderings states, for every ordering the seed claims, whether our
// measured numbers (best-layer linear test top-1, pretext accuracies of
// the ablation rows) reproduce it.
func CheckOrderings(res *ReproduceResult) []Ordering {
	var out []Ordering
	pair := func(claim, a, b string) {
		ra, rb := res.row(a), res.row(b)
		o := Ordering{Claim: claim, Status: "not measured"}
		if ra != nil && rb != nil && ra.Linear != nil && rb.Linear != nil {
			o.Status = status(best(ra) > best(rb))
			o.Detail = fmt.Sprintf("%s %.4f vs %s %.4f (%+.2f points)", a, best(ra), b, best(rb), 100*(best(ra)-best(rb)))
		}
		out = append(out, o)
	}
	pair("PIRL-jigsaw > jigsaw (PIRL Table 5: 62.2 vs 45.7)", "pirl-jigsaw", "jigsaw")
	pair("PIRL-rotation > rotation (PIRL Table 5: 60.2 vs 48.9)", "pirl-rotation", "rotation")
	pair("PIRL-jigsaw-rotation > PIRL-jigsaw (PIRL Table 5: 63.1 vs 62.2)", "pirl-jigsaw-rotation", "pirl-jigsaw")

	sup := res.row("supervised")
	o := Ordering{Claim: "supervised > every self-supervised row (PIRL Table 2: 75.9 vs at most 63.6)", Status: "not measured"}
	if sup != nil && sup.Linear != nil {
		var beaten []string
		n := 0
		for _, r := range res.Rows {
			if r.Kind != "pretext" || r.Linear == nil {
				continue
			}
			n++
			if best(r) >= best(sup) {
				beaten = append(beaten, fmt.Sprintf("%s %.4f", r.Name, best(r)))
			}
		}
		if n > 0 {
			o.Status = status(len(beaten) == 0)
			o.Detail = fmt.Sprintf("supervised %.4f", best(sup))
			if len(beaten) > 0 {
				o.Detail += "; not above " + strings.Join(beaten, ", ")
			}
		}
	}
	out = append(out, o)

	floor := res.row("random-init")
	o = Ordering{Claim: "every self-supervised row >= the recalibrated random-init floor + 8 points", Status: "not measured"}
	if floor != nil && floor.Linear != nil {
		var below []string
		n := 0
		for _, r := range res.Rows {
			if r.Kind != "pretext" || r.Linear == nil {
				continue
			}
			n++
			if best(r) < best(floor)+0.08 {
				below = append(below, fmt.Sprintf("%s %+.2f", r.Name, 100*(best(r)-best(floor))))
			}
		}
		if n > 0 {
			o.Status = status(len(below) == 0)
			o.Detail = fmt.Sprintf("floor %.4f (%s)", best(floor), floor.Linear.Best.Layer)
			if len(below) > 0 {
				o.Detail += "; short: " + strings.Join(below, ", ")
			}
		}
	}
	out = append(out, o)

	// Table 4: fewer permutations (same method) -> higher jigsaw accuracy.
	o = Ordering{Claim: "Table 4: fewer permutations make the jigsaw task easier (1000 -> 100 -> 10: 71 -> 88 -> 97%)", Status: "not measured"}
	if res.Perms != nil {
		var pts []AblateRow
		for _, r := range res.Perms.Rows {
			if !r.RandomInit && r.Method == "maxavg" {
				pts = append(pts, r)
			}
		}
		sort.Slice(pts, func(i, j int) bool { return pts[i].N > pts[j].N })
		if len(pts) >= 2 {
			ok := true
			var parts []string
			for i, r := range pts {
				parts = append(parts, fmt.Sprintf("%d: %.4f", r.N, r.JigsawAcc))
				if i > 0 && r.JigsawAcc <= pts[i-1].JigsawAcc {
					ok = false
				}
			}
			o.Status, o.Detail = status(ok), "jigsaw accuracy by set size (maxavg) "+strings.Join(parts, ", ")
		}
	}
	out = append(out, o)

	// Table 5: removing the gap makes the task easier.
	o = Ordering{Claim: "Table 5: without the gap the jigsaw task is easier (98% vs 88%)", Status: "not measured"}
	if res.Shortcuts != nil {
		var all, noGap *AblateRow
		for i, r := range res.Shortcuts.Rows {
			switch {
			case r.Gap && r.Norm && r.Jitter:
				all = &res.Shortcuts.Rows[i]
			case !r.Gap && r.Norm && r.Jitter:
				noGap = &res.Shortcuts.Rows[i]
			}
		}
		if all != nil && noGap != nil {
			o.Status = status(noGap.JigsawAcc > all.JigsawAcc)
			o.Detail = fmt.Sprintf("no gap %.4f vs all protections %.4f", noGap.JigsawAcc, all.JigsawAcc)
		}
	}
	out = append(out, o)
	return append(out, denseOrderings(res)...)
}

func status(ok bool) string {
	if ok {
		return "holds"
	}
	return "does not hold"
}

func pct(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", 100*v)
}

// WriteReproduceReport writes report.md.
func WriteReproduceReport(w io.Writer, c ReproduceConfig, res *ReproduceResult) {
	fmt.Fprintf(w, "# selfsup reproduce: %s, %s\n\n", res.Data, res.Arch)
	budget := time.Duration(res.BudgetSec * float64(time.Second)).String()
	clock := ""
	switch {
	case c.Steps > 0:
		budget = fmt.Sprintf("%d steps", c.Steps)
	case res.BudgetClock == train.BudgetCPU:
		clock = fmt.Sprintf(" of CPU time (the process's CPU time / %d threads: other work on the machine slows a run but does not shorten it; "+
			"the wall time each run took is in results.json)", goruntime.GOMAXPROCS(0))
	default:
		clock = " of wall time"
	}
	fmt.Fprintf(w, "Pretraining: %s%s per method on the training split (the task's recipe, `pretext.RecipeFor`). "+
		"Every backbone, random init included, has its batch-norm statistics re-estimated on whole training images before export "+
		"(except the row marked BN 0/1). Linear probe: logistic regression on standardised features of each pooled stage "+
		"(4x4 average pool) and the final features, L2 and layer chosen on a validation split of the %d probe training images; "+
		"test top-1 on %d test images. kNN (k=200, T=0.07) and low-shot (1%% and 10%% of the probe's labels, 3 seeds, top-1) "+
		"on the chosen layer. Paper columns: ImageNet, ResNet-50, as the seed quotes them (linear top-1; low-shot top-5).\n\n",
		budget, clock, res.ProbeTrain, res.TestImages)
	fmt.Fprintf(w, "## Linear probe per stage, kNN and low-shot\n\n")
	var layers []string
	for _, r := range res.Rows {
		if r.Linear == nil {
			continue
		}
		for _, l := range r.Linear.Layers {
			if !contains(layers, l.Layer) && l.Layer != "pixels" {
				layers = append(layers, l.Layer)
			}
		}
	}
	fmt.Fprintf(w, "| method | budget | steps (source images) | pretext acc |")
	for _, l := range layers {
		fmt.Fprintf(w, " %s |", l)
	}
	fmt.Fprintf(w, " best (layer) | kNN | 1%% | 10%% | paper linear | paper 1%% / 10%% (top-5) |\n|---|---|---|---|")
	for range layers {
		fmt.Fprintf(w, "---|")
	}
	fmt.Fprintf(w, "---|---|---|---|---|---|\n")
	for _, r := range res.Rows {
		name := r.Name
		switch {
		case r.Name == "random-init-bn01":
			name = "random init (BN 0/1)"
		case r.Name == "random-init":
			name = "random init (BN recalibrated)"
		case r.Name == "raw-pixels":
			name = "raw pixels"
		}
		b := "-"
		if r.BudgetSec > 0 {
			b = budget
			if c.Steps <= 0 {
				b = time.Duration(r.BudgetSec * float64(time.Second)).String()
			}
		}
		steps, acc := "-", "-"
		if r.Steps > 0 {
			steps = fmt.Sprint(r.Steps)
			if r.ImagesSeen > 0 {
				steps += " (" + countSI(r.ImagesSeen) + ")"
			}
			acc = fmt.Sprintf("%.3f", r.PretextAcc)
			if r.Name == "npid" {
				acc = "-" // instance discrimination has no held-out pretext metric
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |", name, b, steps, acc)
		per := map[string]float64{}
		if r.Linear != nil {
			for _, l := range r.Linear.Layers {
				per[l.Layer] = l.Top1
			}
		}
		for _, l := range layers {
			if v, ok := per[l]; ok {
				fmt.Fprintf(w, " %s |", pct(v))
			} else {
				fmt.Fprintf(w, " - |")
			}
		}
		bst, knn, ls1, ls10 := "-", "-", "-", "-"
		if r.Linear != nil {
			bst = fmt.Sprintf("**%s** (%s)", pct(r.Linear.Best.Top1), r.Linear.Best.Layer)
		}
		if r.KNN != nil {
			knn = pct(r.KNN.Top1)
		}
		if r.LowShot != nil && len(r.LowShot.Fractions) == 2 {
			ls1 = fmt.Sprintf("%s ± %s", pct(r.LowShot.Fractions[0].Top1Mean), pct(r.LowShot.Fractions[0].Top1Std))
			ls10 = fmt.Sprintf("%s ± %s", pct(r.LowShot.Fractions[1].Top1Mean), pct(r.LowShot.Fractions[1].Top1Std))
		}
		pl, pls := "-", "-"
		if v, ok := paperLinear[r.Name]; ok {
			pl = fmt.Sprintf("%.1f", v)
		}
		key := r.Name
		if key == "random-init-bn01" {
			key = ""
		}
		if v, ok := paperLowShot[key]; ok {
			pls = fmt.Sprintf("%.1f / %.1f", v[0], v[1])
		}
		fmt.Fprintf(w, " %s | %s | %s | %s | %s | %s |\n", bst, knn, ls1, ls10, pl, pls)
	}
	fmt.Fprintf(w, "\nTest top-1 in %%. The paper's NPID number is NPID++.\n\n")

	fmt.Fprintf(w, "## PIRL vs its pretext task (the seed's Delta rows)\n\n| pretext | task alone | PIRL | Delta | paper Delta (ImageNet linear) |\n|---|---|---|---|---|\n")
	for _, p := range [][3]string{{"rotation", "pirl-rotation", "+11.3"}, {"jigsaw", "pirl-jigsaw", "+16.5"}} {
		a, b := res.row(p[0]), res.row(p[1])
		if a == nil || b == nil || a.Linear == nil || b.Linear == nil {
			fmt.Fprintf(w, "| %s | - | - | - | %s |\n", p[0], p[2])
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %+.2f | %s |\n", p[0], pct(best(a)), pct(best(b)), 100*(best(b)-best(a)), p[2])
	}

	if res.Perms != nil {
		fmt.Fprintf(w, "\n## Jigsaw permutation sets (Noroozi & Favaro 2016, Table 4)\n\n%s a row.\n\n", time.Duration(res.AblationBudget*float64(time.Second)))
		fmt.Fprintf(w, "| permutations | method | avg Hamming | min Hamming | jigsaw acc | chance | linear top-1 (layer) | steps |\n|---|---|---|---|---|---|---|---|\n")
		for _, r := range res.Perms.Rows {
			fmt.Fprintf(w, "| %d | %s | %.2f | %.0f | %.4f | %.4f | %s (%s) | %d |\n", r.N, r.Method, r.AvgHamming, r.MinHamming, r.JigsawAcc, r.Chance, pct(r.LinearTop1), r.LinearLayer, r.Steps)
		}
		fmt.Fprintf(w, "\nThe paper's rows (permutations, avg / min Hamming, jigsaw accuracy %%, VOC detection mAP %%):\n\n| N | avg | min | acc | det |\n|---|---|---|---|---|\n")
		for _, p := range paperTable4 {
			fmt.Fprintf(w, "| %.0f | %.2f | %.0f | %.0f | %.1f |\n", p[0], p[1], p[2], p[3], p[4])
		}
	}
	if res.Shortcuts != nil {
		fmt.Fprintf(w, "\n## Jigsaw shortcuts (Noroozi & Favaro 2016, Table 5)\n\n%s a row.\n\n", time.Duration(res.AblationBudget*float64(time.Second)))
		fmt.Fprintf(w, "| gap | per-tile norm | jitter | jigsaw acc | linear top-1 (layer) | steps | paper acc | paper det |\n|---|---|---|---|---|---|---|---|\n")
		for _, r := range res.Shortcuts.Rows {
			pa, pd := "-", "-"
			for _, p := range paperTable5 {
				if p.gap == r.Gap && p.norm == r.Norm && p.jitter == r.Jitter {
					pa, pd = fmt.Sprintf("%.0f", p.acc), fmt.Sprintf("%.1f", p.det)
				}
			}
			fmt.Fprintf(w, "| %s | %s | %s | %.4f | %s (%s) | %d | %s | %s |\n", mark(r.Gap), mark(r.Norm), mark(r.Jitter), r.JigsawAcc, pct(r.LinearTop1), r.LinearLayer, r.Steps, pa, pd)
		}
	}
	writeDenseReport(w, c, res)
	fmt.Fprintf(w, "\n## The seed's orderings\n\n| claim | here | numbers |\n|---|---|---|\n")
	for _, o := range res.Orderings {
		fmt.Fprintf(w, "| %s | %s | %s |\n", o.Claim, o.Status, o.Detail)
	}
	if len(res.Plots) > 0 {
		fmt.Fprintf(w, "\n## Plots\n\n")
		for _, p := range res.Plots {
			fmt.Fprintf(w, "![%s](%s)\n", filepath.Base(p), filepath.Base(p))
		}
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// reproducePlots draws linear.png: best-layer linear test top-1 per row,
// with the recalibrated random-init floor as a line; and knn_curve.png.
func reproducePlots(out string, res *ReproduceResult) ([]string, error) {
	var names []string
	var vals plotter.Values
	for _, r := range res.Rows {
		if r.Linear != nil {
			names = append(names, r.Name)
			vals = append(vals, 100*r.Linear.Best.Top1)
		}
	}
	if len(vals) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: linear probe, best layer (test top-1 %%)", res.Arch)
	p.Y.Label.Text = "test top-1 (%)"
	bars, err := plotter.NewBarChart(vals, vg.Points(14))
	if err != nil {
		return nil, err
	}
	bars.Color = plotutil.Color(0)
	p.Add(bars)
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = 0.8
	p.X.Tick.Label.XAlign = -1
	if f := res.row("random-init"); f != nil && f.Linear != nil {
		line, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 100 * f.Linear.Best.Top1}, {X: float64(len(vals)) - 0.5, Y: 100 * f.Linear.Best.Top1}})
		if err != nil {
			return nil, err
		}
		line.Color = color.RGBA{R: 200, A: 255}
		line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(line)
		p.Legend.Add("random init (BN recalibrated)", line)
	}
	path := filepath.Join(out, "linear.png")
	if err := p.Save(vg.Points(60+28*float64(len(vals))), vg.Points(300), path); err != nil {
		return nil, err
	}
	paths := []string{path}
	curve, err := knnCurvePlot(out, res)
	if err != nil {
		return nil, err
	}
	if curve != "" {
		paths = append(paths, curve)
	}
	return paths, nil
}

// WriteOrderings writes where the report is and one line per ordering.
func WriteOrderings(w io.Writer, res *ReproduceResult) {
	fmt.Fprintf(w, "report: %s (%.0fs)\n", res.Report, res.WallSeconds)
	for _, o := range res.Orderings {
		fmt.Fprintf(w, "  %-13s %s: %s\n", o.Status, o.Claim, o.Detail)
	}
}

// SplitList splits a comma-separated list, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// countSI writes an image count the way the report's steps column reads
// best: 950, 237k, 1.32M.
func countSI(n int) string {
	switch {
	case n >= 999_500:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	case n >= 1_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
