package main

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/eval/report"
	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/runtime"
	"github.com/selfsup/selfsup/train"
)

func init() { extraCommands = append(extraCommands, reportCommand()) }

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "write a Markdown report with PNG plots: training curves of one or more runs (overlaid), and with --data the linear probe's confusion matrix, a PCA of test features, nearest neighbours and kNN accuracy over checkpoints",
		ArgsUsage: "RUN... (options go before the run directories)",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "output folder (default: <first RUN>/report)"},
			&cli.StringFlag{Name: "data", Usage: "labelled images with train and test splits for the frozen-feature sections (folder or .tar, mnist, fashion-mnist)"},
			&cli.StringFlag{Name: "model", Usage: "ONNX model for the frozen-feature sections (default: the first run's newest checkpoint, exported into --out)"},
			&cli.IntFlag{Name: "max-train", Value: 10000, Usage: "training images for the probe, kNN and neighbours (class-balanced subset; 0: all)"},
			&cli.IntFlag{Name: "points", Value: 2000, Usage: "test images in the PCA plot (class-balanced subset)"},
			&cli.IntFlag{Name: "queries", Value: 8, Usage: "query images (rows) in the nearest-neighbour grid"},
			&cli.IntFlag{Name: "neighbours", Value: 8, Usage: "neighbours shown per query"},
			&cli.BoolFlag{Name: "svm", Usage: "use the one-vs-rest linear SVM for the probe and confusion matrix"},
			&cli.BoolFlag{Name: "knn-curve", Value: true, Usage: "with --data: kNN top-1 of every kept checkpoint of every run (and of the initial weights), plotted against images seen and wall time"},
			&cli.IntFlag{Name: "curve-train", Value: 5000, Usage: "training images (class-balanced) behind each point of the kNN curve"},
			&cli.IntFlag{Name: "curve-test", Value: 1000, Usage: "test images (class-balanced) behind each point of the kNN curve"},
			&cli.BoolFlag{Name: "skip-bad", Usage: "skip images that fail to decode"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed for subsets and query choice"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object as the last stdout line"},
		}, runtimeFlags()...),
		Action: func(c *cli.Context) error {
			res, err := runReport(c)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "wrote %s\n", res.Markdown)
			for _, name := range sortedKeys(res.Figures) {
				fmt.Fprintf(os.Stderr, "  %-10s %s\n", name, res.Figures[name])
			}
			if c.Bool("json") {
				return printJSON(res)
			}
			return nil
		},
	}
}

type reportResult struct {
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

func runReport(c *cli.Context) (*reportResult, error) {
	dirs := c.Args().Slice()
	if len(dirs) == 0 {
		return nil, fmt.Errorf("report: give one or more run directories")
	}
	for _, d := range dirs {
		if strings.HasPrefix(d, "-") {
			return nil, fmt.Errorf("report: %q after the run directories: put options before them (selfsup report [options] RUN...)", d)
		}
	}
	res := &reportResult{}
	for _, d := range dirs {
		r, err := report.LoadRun(d)
		if err != nil {
			return nil, err
		}
		res.Runs = append(res.Runs, r)
	}
	out := c.String("out")
	if out == "" {
		out = filepath.Join(dirs[0], "report")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	in := report.Input{Runs: res.Runs, Notes: []string{"Made by `selfsup " + strings.Join(os.Args[1:], " ") + "`."}}
	if spec := c.String("data"); spec != "" {
		model := c.String("model")
		if model == "" {
			var err error
			if model, err = exportRun(dirs[0], filepath.Join(out, res.Runs[0].Name+".onnx")); err != nil {
				return nil, err
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
		if c.Bool("knn-curve") {
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

// exportRun writes the newest checkpoint of run as an ONNX model at path.
func exportRun(run, path string) (string, error) {
	ck, ckPath, warns, err := train.LatestCheckpoint(run)
	for _, w := range warns {
		fmt.Fprintf(os.Stderr, "warning: %s\n", w)
	}
	if err != nil {
		return "", fmt.Errorf("report: run %s: %w", run, err)
	}
	src, err := fromCheckpoint(ck)
	if err != nil {
		return "", err
	}
	if err := src.write(path, export.DefaultOptions()); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "exported %s -> %s\n", ckPath, path)
	return path, nil
}

func openReportSession(c *cli.Context, model string) (*runtime.Session, error) {
	return runtime.Open(model, runtime.Options{Device: c.String("device"), IntraOpThreads: c.Int("threads"), DisableSpinning: !c.Bool("spin")})
}

// reportEvaluation extracts features of model on spec and computes the
// frozen-feature sections: probe and confusion matrix, kNN, PCA and the
// nearest-neighbour grid.
func reportEvaluation(c *cli.Context, model, spec string) (*report.Evaluation, error) {
	seed := c.Int64("seed")
	trainDS, testDS, err := openSplits(spec, "train", "test", c.Bool("skip-bad"), 0, c.Int("max-train"), seed, false)
	if err != nil {
		return nil, err
	}
	sess, err := openReportSession(c, model)
	if err != nil {
		return nil, err
	}
	fs, err := modelFeatureSets(sess, trainDS, testDS, c.Int("batch"), "train", "test")
	sess.Close()
	if err != nil {
		return nil, err
	}
	classes := trainDS.Classes()
	if len(classes) != fs.classes {
		classes = make([]string, fs.classes)
		for i := range classes {
			classes[i] = fmt.Sprint(i)
		}
	}
	ev := &report.Evaluation{Model: model, Data: spec, Classes: classes, NTrain: len(fs.trainY), NTest: len(fs.testY)}

	pc := eval.DefaultProbeConfig()
	pc.Seed = seed
	if c.Bool("svm") {
		pc.Classifier = eval.ClassifierSVM
	}
	lin, err := eval.LinearProbe(fs.trainX, fs.trainY, fs.testX, fs.testY, fs.dim, fs.classes, pc)
	if err != nil {
		return nil, err
	}
	ev.Linear = &lin
	pred, err := lin.Model.Predict(fs.testX, len(fs.testY))
	if err != nil {
		return nil, err
	}
	if ev.Confusion, err = eval.ConfusionMatrix(fs.testY, pred, fs.classes); err != nil {
		return nil, err
	}
	knn, err := eval.KNN(fs.trainX, fs.trainY, fs.testX, fs.testY, fs.dim, fs.classes, eval.DefaultKNNConfig())
	if err != nil {
		return nil, err
	}
	ev.KNN = &knn
	fmt.Fprintf(os.Stderr, "linear probe top-1 %.4f, kNN top-1 %.4f\n", lin.Top1, knn.Top1)

	// PCA of a class-balanced subset of the test features.
	idx := allIndices(len(fs.testY))
	if n := c.Int("points"); n > 0 && n < len(idx) {
		idx = data.StratifiedSubset(fs.testY, float64(n)/float64(len(idx)), seed)
	}
	sub, subY := gatherRows(fs.testX, fs.testY, idx, fs.dim)
	pca, err := eval.FitPCA(sub, len(subY), fs.dim, min(2, fs.dim))
	if err != nil {
		return nil, err
	}
	proj, err := pca.Project(sub, len(subY))
	if err != nil {
		return nil, err
	}
	if fs.dim == 1 {
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
	if nq, nk := c.Int("queries"), c.Int("neighbours"); nq > 0 && nk > 0 {
		queries := pickQueries(fs.testY, fs.classes, nq, rand.New(rand.NewSource(seed)))
		qx, _ := gatherRows(fs.testX, fs.testY, queries, fs.dim)
		nbIdx, nbSim, err := eval.NearestNeighbours(fs.trainX, len(fs.trainY), qx, len(queries), fs.dim, nk, 0)
		if err != nil {
			return nil, err
		}
		for i, q := range queries {
			img, err := testDS.Image(q)
			if err != nil {
				return nil, err
			}
			row := report.NeighbourRow{Query: report.ImageOf(img), QueryLabel: classes[fs.testY[q]]}
			for j, t := range nbIdx[i] {
				im, err := trainDS.Image(t)
				if err != nil {
					return nil, err
				}
				row.Neighbours = append(row.Neighbours, report.ImageOf(im))
				row.Labels = append(row.Labels, classes[fs.trainY[t]])
				row.Same = append(row.Same, fs.trainY[t] == fs.testY[q])
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
func knnCurves(c *cli.Context, dirs []string, runs []*report.Run, spec, tmp string) (map[string][][2]float64, error) {
	seed := c.Int64("seed")
	trainDS, testDS, err := openSplits(spec, "train", "test", c.Bool("skip-bad"), 0, c.Int("curve-train"), seed, true)
	if err != nil {
		return nil, err
	}
	if n := c.Int("curve-test"); n > 0 && n < testDS.Len() {
		testDS = data.Subset(testDS, balancedSubset(testDS, n, seed))
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
				fmt.Fprintf(os.Stderr, "warning: skipping %s: %v\n", p, err)
				continue
			}
			cks = append(cks, ck)
		}
		if len(cks) == 0 {
			fmt.Fprintf(os.Stderr, "warning: no readable checkpoint in %s: no kNN curve\n", dir)
			continue
		}
		// The initial weights: the trainer draws them from the config's
		// seed exactly as `export --random-init` does.
		cfg := cks[0].Config
		initial, err := exportSource("", "", cfg.Arch, true, cfg.Pretext.Channels, cfg.Seed)
		if err != nil {
			return nil, err
		}
		initial.size, initial.mean, initial.std, initial.task = cfg.Pretext.InputSize, cfg.Pretext.Mean, cfg.Pretext.Std, cfg.Task
		srcs := []*exportable{initial}
		steps := []int{0}
		for _, ck := range cks {
			src, err := fromCheckpoint(ck)
			if err != nil {
				return nil, err
			}
			srcs, steps = append(srcs, src), append(steps, ck.Step)
		}
		run := runs[ri]
		for i, src := range srcs {
			path := filepath.Join(tmp, fmt.Sprintf("%s-step%08d.onnx", run.Name, steps[i]))
			if err := src.write(path, export.DefaultOptions()); err != nil {
				return nil, err
			}
			sess, err := openReportSession(c, path)
			if err != nil {
				return nil, err
			}
			label := fmt.Sprintf("%s step %d", run.Name, steps[i])
			fs, err := modelFeatureSets(sess, trainDS, testDS, c.Int("batch"), label+" train", label+" test")
			sess.Close()
			if err != nil {
				return nil, err
			}
			knn, err := eval.KNN(fs.trainX, fs.trainY, fs.testX, fs.testY, fs.dim, fs.classes, eval.DefaultKNNConfig())
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
			fmt.Fprintf(os.Stderr, "%s: kNN top-1 %.4f (%d train, %d test images)\n", label, knn.Top1, trainDS.Len(), testDS.Len())
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

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
