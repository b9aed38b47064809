package pipeline

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/eval/cluster"
	"github.com/selfsup/selfsup/eval/report"
	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/runtime"
	"github.com/selfsup/selfsup/train"
)

// ReportConfig is `selfsup report`: a Markdown report with PNG plots of
// one or more runs.
type ReportConfig struct {
	Runs []string // run directories
	Out  string   // output folder (default: <first run>/report)
	// Data enables the frozen-feature sections (labelled images with train
	// and test splits); Model is the ONNX model for them (default: the
	// first run's newest checkpoint, exported into Out).
	Data, Model string
	MaxTrain    int  // training images for the probe, kNN and neighbours (class-balanced; 0: all)
	Points      int  // test images in the PCA plot (class-balanced)
	Queries     int  // query images (rows) in the nearest-neighbour grid
	Neighbours  int  // neighbours shown per query
	SVM         bool // the one-vs-rest linear SVM for the probe and confusion matrix
	KNNCurve    bool // kNN top-1 of every kept checkpoint of every run
	CurveTrain  int  // training images (class-balanced) behind each point of the kNN curve
	CurveTest   int  // test images (class-balanced) behind each point of the kNN curve
	SkipBad     bool
	Seed        int64
	Runtime     runtime.Options
	Batch       int
	// Notes go into the report (the CLI puts the command line there).
	Notes []string
	Log   io.Writer
}

// ReportResult is what `selfsup report --json` prints.
type ReportResult struct {
	report.Output
	Runs       []*report.Run `json:"runs"`
	Model      string        `json:"model,omitempty"`
	LinearTop1 *float64      `json:"linear_top1,omitempty"`
	LinearTop5 *float64      `json:"linear_top5,omitempty"`
	KNNTop1    *float64      `json:"knn_top1,omitempty"`
	// KNNCurve maps a run to its kNN top-1 at each checkpoint:
	// [images seen, top-1] pairs.
	KNNCurve map[string][][2]float64 `json:"knn_curve,omitempty"`
}

// Report writes the report: training curves of every run (overlaid) and,
// with Data, the linear probe's confusion matrix, a PCA of test features,
// nearest neighbours and kNN accuracy over checkpoints.
func Report(ctx context.Context, c ReportConfig) (*ReportResult, error) {
	dirs := c.Runs
	if len(dirs) == 0 {
		return nil, fmt.Errorf("report: give one or more run directories")
	}
	for _, d := range dirs {
		if strings.HasPrefix(d, "-") {
			return nil, fmt.Errorf("report: %q after the run directories: put options before them (selfsup report [options] RUN...)", d)
		}
	}
	res := &ReportResult{}
	for _, d := range dirs {
		r, err := report.LoadRun(d)
		if err != nil {
			return nil, err
		}
		res.Runs = append(res.Runs, r)
	}
	out := c.Out
	if out == "" {
		out = filepath.Join(dirs[0], "report")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	in := report.Input{Runs: res.Runs, Notes: c.Notes}
	if spec := c.Data; spec != "" {
		model := c.Model
		if model == "" {
			model = filepath.Join(out, res.Runs[0].Name+".onnx")
			if _, err := ExportRun(dirs[0], model, c.Log); err != nil {
				return nil, fmt.Errorf("report: %w", err)
			}
		}
		res.Model = model
		ev, err := reportEvaluation(c, model, spec)
		if err != nil {
			return nil, err
		}
		in.Eval = ev
		if ev.Linear != nil {
			res.LinearTop1, res.LinearTop5 = &ev.Linear.Top1, &ev.Linear.Top5
		}
		if ev.KNN != nil {
			res.KNNTop1 = &ev.KNN.Top1
		}
		if c.KNNCurve {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if res.KNNCurve, err = knnCurves(c, dirs, res.Runs, spec, filepath.Join(out, "checkpoints")); err != nil {
				return nil, err
			}
		}
	}
	o, err := report.Write(out, in)
	if err != nil {
		return nil, err
	}
	res.Output = *o
	return res, nil
}

// reportEvaluation extracts features of model on spec and computes the
// frozen-feature sections: probe and confusion matrix, kNN, PCA and the
// nearest-neighbour grid.
func reportEvaluation(c ReportConfig, model, spec string) (*report.Evaluation, error) {
	seed := c.Seed
	trainDS, testDS, err := data.OpenSplits(spec, data.SplitsOptions{SkipBad: c.SkipBad, MaxTrain: c.MaxTrain, Seed: seed, Log: c.Log})
	if err != nil {
		return nil, err
	}
	fs, err := ModelFileFeatureSets(model, c.Runtime, trainDS, testDS, c.Batch, "train", "test", c.Log)
	if err != nil {
		return nil, err
	}
	classes := trainDS.Classes()
	if len(classes) != fs.Classes {
		classes = make([]string, fs.Classes)
		for i := range classes {
			classes[i] = fmt.Sprint(i)
		}
	}
	ev := &report.Evaluation{Model: model, Data: spec, Classes: classes, NTrain: len(fs.TrainY), NTest: len(fs.TestY)}

	pc := eval.DefaultProbeConfig()
	pc.Seed = seed
	if c.SVM {
		pc.Classifier = eval.ClassifierSVM
	}
	lin, err := eval.LinearProbe(fs.TrainX, fs.TrainY, fs.TestX, fs.TestY, fs.Dim, fs.Classes, pc)
	if err != nil {
		return nil, err
	}
	ev.Linear = &lin
	pred, err := lin.Model.Predict(fs.TestX, len(fs.TestY))
	if err != nil {
		return nil, err
	}
	if ev.Confusion, err = eval.ConfusionMatrix(fs.TestY, pred, fs.Classes); err != nil {
		return nil, err
	}
	knn, err := eval.KNN(fs.TrainX, fs.TrainY, fs.TestX, fs.TestY, fs.Dim, fs.Classes, eval.DefaultKNNConfig())
	if err != nil {
		return nil, err
	}
	ev.KNN = &knn
	fmt.Fprintf(logTo(c.Log), "linear probe top-1 %.4f, kNN top-1 %.4f\n", lin.Top1, knn.Top1)

	// PCA of a class-balanced subset of the test features.
	idx := allIndices(len(fs.TestY))
	if n := c.Points; n > 0 && n < len(idx) {
		idx = data.StratifiedSubset(fs.TestY, float64(n)/float64(len(idx)), seed)
	}
	sub, subY := gatherRows(fs.TestX, fs.TestY, idx, fs.Dim)
	pca, err := cluster.FitPCA(sub, len(subY), fs.Dim, min(2, fs.Dim))
	if err != nil {
		return nil, err
	}
	proj, err := pca.Project(sub, len(subY))
	if err != nil {
		return nil, err
	}
	if fs.Dim == 1 {
		proj2 := make([]float64, 2*len(subY))
		for i, v := range proj {
			proj2[2*i] = v
		}
		proj, pca.Variance = proj2, append(pca.Variance, 0)
	}
	ev.Projection, ev.ProjectionLabels, ev.ProjectionMethod = proj, subY, "PCA"
	for a := 0; a < 2; a++ {
		ev.ProjectionAxes[a] = fmt.Sprintf("PC%d (%.1f%% of variance)", a+1, 100*pca.Variance[a]/pca.TotalVariance)
	}

	// Nearest-neighbour grid: one query per class in turn, drawn at random.
	if nq, nk := c.Queries, c.Neighbours; nq > 0 && nk > 0 {
		queries := pickQueries(fs.TestY, fs.Classes, nq, rand.New(rand.NewSource(seed)))
		qx, _ := gatherRows(fs.TestX, fs.TestY, queries, fs.Dim)
		nbIdx, nbSim, err := eval.NearestNeighbours(fs.TrainX, len(fs.TrainY), qx, len(queries), fs.Dim, nk, 0)
		if err != nil {
			return nil, err
		}
		for i, q := range queries {
			img, err := testDS.Image(q)
			if err != nil {
				return nil, err
			}
			row := report.NeighbourRow{Query: report.ImageOf(img), QueryLabel: classes[fs.TestY[q]]}
			for j, t := range nbIdx[i] {
				im, err := trainDS.Image(t)
				if err != nil {
					return nil, err
				}
				row.Neighbours = append(row.Neighbours, report.ImageOf(im))
				row.Labels = append(row.Labels, classes[fs.TrainY[t]])
				row.Same = append(row.Same, fs.TrainY[t] == fs.TestY[q])
				row.Similarity = append(row.Similarity, nbSim[i][j])
			}
			ev.Neighbours = append(ev.Neighbours, row)
		}
	}
	return ev, nil
}

// pickQueries draws n rows of y, cycling through the classes in order and
// taking a random row of each.
func pickQueries(y []int, k, n int, rng *rand.Rand) []int {
	byClass := make([][]int, k)
	for i, c := range y {
		byClass[c] = append(byClass[c], i)
	}
	for _, rows := range byClass {
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	}
	var out []int
	for round := 0; len(out) < n; round++ {
		added := false
		for c := 0; c < k && len(out) < n; c++ {
			if round < len(byClass[c]) {
				out = append(out, byClass[c][round])
				added = true
			}
		}
		if !added {
			break
		}
	}
	return out
}

// knnCurves measures kNN top-1 on class-balanced subsets of spec for the
// initial weights and every checkpoint kept in each run, adds the points to
// the runs (images seen = step * batch; wall time interpolated from the
// metrics) and returns them per run.
func knnCurves(c ReportConfig, dirs []string, runs []*report.Run, spec, tmp string) (map[string][][2]float64, error) {
	seed := c.Seed
	trainDS, testDS, err := data.OpenSplits(spec, data.SplitsOptions{SkipBad: c.SkipBad, MaxTrain: c.CurveTrain, Seed: seed, Cache: true, Log: c.Log})
	if err != nil {
		return nil, err
	}
	if n := c.CurveTest; n > 0 && n < testDS.Len() {
		testDS = data.Subset(testDS, data.BalancedSubset(testDS, n, seed))
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	curves := map[string][][2]float64{}
	for ri, dir := range dirs {
		paths, err := filepath.Glob(filepath.Join(dir, "checkpoint-*.safetensors"))
		if err != nil {
			return nil, err
		}
		sort.Strings(paths)
		var cks []*train.Checkpoint
		for _, p := range paths {
			ck, err := train.LoadCheckpoint(p)
			if err != nil {
				fmt.Fprintf(logTo(c.Log), "warning: skipping %s: %v\n", p, err)
				continue
			}
			cks = append(cks, ck)
		}
		if len(cks) == 0 {
			fmt.Fprintf(logTo(c.Log), "warning: no readable checkpoint in %s: no kNN curve\n", dir)
			continue
		}
		// The initial weights: the trainer draws them from the config's
		// seed exactly as `export --random-init` does.
		cfg := cks[0].Config
		initial, err := RandomBackbone(cfg.Arch, cfg.Pretext.InputChannels(), cfg.Seed)
		if err != nil {
			return nil, err
		}
		initial.Size, initial.Mean, initial.Std, initial.Task, initial.Space = cfg.Pretext.InputSize, cfg.Pretext.Mean, cfg.Pretext.Std, cfg.Task, cfg.Pretext.Input
		srcs := []*Backbone{initial}
		steps := []int{0}
		for _, ck := range cks {
			src, err := BackboneFromCheckpoint(ck)
			if err != nil {
				return nil, err
			}
			srcs, steps = append(srcs, src), append(steps, ck.Step)
		}
		run := runs[ri]
		for i, src := range srcs {
			path := filepath.Join(tmp, fmt.Sprintf("%s-step%08d.onnx", run.Name, steps[i]))
			if err := src.Export(path, export.DefaultOptions()); err != nil {
				return nil, err
			}
			label := fmt.Sprintf("%s step %d", run.Name, steps[i])
			fs, err := ModelFileFeatureSets(path, c.Runtime, trainDS, testDS, c.Batch, label+" train", label+" test", c.Log)
			if err != nil {
				return nil, err
			}
			knn, err := eval.KNN(fs.TrainX, fs.TrainY, fs.TestX, fs.TestY, fs.Dim, fs.Classes, eval.DefaultKNNConfig())
			if err != nil {
				return nil, err
			}
			seen := float64(steps[i] * cfg.Batch)
			pt := report.Record{"step": float64(steps[i]), "images_seen": seen, "knn_top1": knn.Top1}
			if el, ok := run.ElapsedAt(float64(steps[i])); ok {
				pt["elapsed_s"] = el
			}
			run.AddPoint(pt)
			curves[run.Name] = append(curves[run.Name], [2]float64{seen, knn.Top1})
			fmt.Fprintf(logTo(c.Log), "%s: kNN top-1 %.4f (%d train, %d test images)\n", label, knn.Top1, trainDS.Len(), testDS.Len())
		}
	}
	return curves, nil
}

func allIndices(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// gatherRows returns the rows idx of x ([*, d]) and their labels.
func gatherRows(x []float32, y []int, idx []int, d int) ([]float32, []int) {
	gx := make([]float32, 0, len(idx)*d)
	gy := make([]int, len(idx))
	for i, r := range idx {
		gx = append(gx, x[r*d:(r+1)*d]...)
		gy[i] = y[r]
	}
	return gx, gy
}
