package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/runtime"
	"github.com/selfsup/selfsup/train"
)

func init() { evalCommands = append(evalCommands, baselinesCommand()) }

func baselinesCommand() *cli.Command {
	return &cli.Command{
		Name: "baselines",
		Usage: "evaluate pretrained runs against the three baselines by the same protocol: supervised pretraining (same architecture and budget), " +
			"a random-init backbone and raw pixels; linear probe, kNN and optionally low-shot, as one table",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "labelled images with train and test splits (folder or .tar, mnist, fashion-mnist)", Required: true},
			&cli.StringFlag{Name: "arch", Value: "resnet20c", Usage: "backbone of the supervised and random-init baselines"},
			&cli.DurationFlag{Name: "budget", Value: 2 * time.Minute, Usage: "wall-time budget of the supervised baseline's training (e.g. 2m; match the pretext runs')"},
			&cli.StringFlag{Name: "out", Value: "baselines-out", Usage: "folder for the supervised run, the ONNX models and the results (baselines.md, baselines.json); an existing supervised run there is reused"},
			&cli.StringSliceFlag{Name: "run", Usage: "pretrained run directory to evaluate beside the baselines (repeatable)"},
			&cli.BoolFlag{Name: "lowshot", Usage: "also low-shot linear evaluation (1% and 10% of the labels, 3 seeds)"},
			&cli.BoolFlag{Name: "svm", Usage: "also the one-vs-rest linear SVM probe"},
			&cli.IntFlag{Name: "max-train", Usage: "use at most this many training images for the evaluations (class-balanced; 0: all)"},
			&cli.IntFlag{Name: "train-batch", Value: 64, Usage: "images per step of the supervised baseline"},
			&cli.Float64Flag{Name: "lr", Value: 0.05, Usage: "peak learning rate of the supervised baseline"},
			&cli.IntFlag{Name: "checkpoint-every", Value: 200, Usage: "checkpoint the supervised baseline every N steps (the last 3 are kept; `report` measures kNN accuracy on each)"},
			&cli.BoolFlag{Name: "skip-bad", Usage: "skip images that fail to decode"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed for training, the random-init weights and subsets"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object as the last stdout line"},
		}, runtimeFlags()...),
		Action: func(c *cli.Context) error {
			res, err := runBaselines(c)
			if err != nil {
				return err
			}
			printBaselines(os.Stderr, res)
			if c.Bool("json") {
				return printJSON(res)
			}
			return nil
		},
	}
}

// baselineRow is one line of the comparison.
type baselineRow struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"` // "pretrained", "supervised", "random-init" or "raw-pixels"
	Task  string `json:"task,omitempty"`
	Model string `json:"model,omitempty"` // ONNX model (absent for raw pixels)
	Run   string `json:"run,omitempty"`
	// Train is the training run behind the row (pretrained and supervised).
	TrainSteps      int     `json:"train_steps,omitempty"`
	TrainImagesSeen int     `json:"train_images_seen,omitempty"`
	TrainSeconds    float64 `json:"train_seconds,omitempty"`
	Dim             int     `json:"dim"`

	Linear  *eval.ProbeResult   `json:"linear"`
	SVM     *eval.ProbeResult   `json:"svm,omitempty"`
	KNN     *eval.KNNResult     `json:"knn"`
	LowShot *eval.LowShotResult `json:"lowshot,omitempty"`
}

type baselinesResult struct {
	Data          string        `json:"data"`
	Arch          string        `json:"arch"`
	BudgetSeconds float64       `json:"budget_seconds"`
	TrainImages   int           `json:"train_images"`
	TestImages    int           `json:"test_images"`
	Classes       int           `json:"classes"`
	Rows          []baselineRow `json:"rows"`
	Markdown      string        `json:"markdown"`
	JSONFile      string        `json:"json_file"`
	WallSeconds   float64       `json:"wall_seconds"`
}

func runBaselines(c *cli.Context) (*baselinesResult, error) {
	t0 := time.Now()
	out, spec, arch := c.String("out"), c.String("data"), c.String("arch")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("baselines: %w", err)
	}
	res := &baselinesResult{Data: spec, Arch: arch, BudgetSeconds: c.Duration("budget").Seconds()}

	// 1. The supervised baseline: trained once, reused when its run exists.
	supDir := filepath.Join(out, "supervised")
	supRes, err := supervisedBaseline(c, supDir)
	if err != nil {
		return nil, err
	}

	// 2. The models to evaluate: the given runs, supervised, random init.
	type model struct {
		row  baselineRow
		path string
	}
	var models []model
	for _, run := range append(c.StringSlice("run"), supDir) {
		ck, ckPath, warns, err := train.LatestCheckpoint(run)
		for _, w := range warns {
			fmt.Fprintf(os.Stderr, "warning: %s\n", w)
		}
		if err != nil {
			return nil, fmt.Errorf("baselines: run %s: %w", run, err)
		}
		src, err := fromCheckpoint(ck)
		if err != nil {
			return nil, err
		}
		name := filepath.Base(filepath.Clean(run))
		path := filepath.Join(out, name+".onnx")
		if err := src.write(path, export.DefaultOptions()); err != nil {
			return nil, err
		}
		row := baselineRow{Name: name, Kind: "pretrained", Task: ck.Config.Task, Model: path, Run: run,
			TrainSteps: ck.Step, TrainImagesSeen: ck.Step * ck.Config.Batch}
		if run == supDir {
			row.Kind = "supervised"
			if supRes != nil {
				row.TrainSeconds = supRes.Seconds
			}
		}
		if ck.Config.Arch != arch {
			fmt.Fprintf(os.Stderr, "note: run %s is %s, the baselines %s\n", run, ck.Config.Arch, arch)
		}
		fmt.Fprintf(os.Stderr, "exported %s (%s, step %d) -> %s\n", ckPath, ck.Config.Task, ck.Step, path)
		models = append(models, model{row, path})
	}

	// 3. Data, decoded once for every model.
	trainDS, testDS, err := openSplits(spec, "train", "test", c.Bool("skip-bad"), 0, c.Int("max-train"), c.Int64("seed"), true)
	if err != nil {
		return nil, err
	}
	res.TrainImages, res.TestImages, res.Classes = trainDS.Len(), testDS.Len(), len(trainDS.Classes())
	first, err := trainDS.Image(0)
	if err != nil {
		return nil, err
	}
	mean, std, err := channelStats(trainDS, 2000)
	if err != nil {
		return nil, err
	}
	rnd, err := exportSource("", "", arch, true, first.C, c.Int64("seed")+1)
	if err != nil {
		return nil, err
	}
	rnd.size, rnd.mean, rnd.std = first.H, mean, std
	rndPath := filepath.Join(out, "random-init.onnx")
	if err := rnd.write(rndPath, export.DefaultOptions()); err != nil {
		return nil, err
	}
	models = append(models, model{baselineRow{Name: "random-init", Kind: "random-init", Model: rndPath}, rndPath})

	// 4. Evaluate every model, then raw pixels.
	evaluate := func(row baselineRow, fs *featureSets) (baselineRow, error) {
		row.Dim = fs.dim
		fmt.Fprintf(os.Stderr, "== %s: linear probe, kNN%s\n", row.Name, map[bool]string{true: ", low-shot", false: ""}[c.Bool("lowshot")])
		pc := eval.DefaultProbeConfig()
		pc.Seed = c.Int64("seed")
		lin, err := eval.LinearProbe(fs.trainX, fs.trainY, fs.testX, fs.testY, fs.dim, fs.classes, pc)
		if err != nil {
			return row, err
		}
		row.Linear = &lin
		if c.Bool("svm") {
			sc := pc
			sc.Classifier = eval.ClassifierSVM
			s, err := eval.LinearProbe(fs.trainX, fs.trainY, fs.testX, fs.testY, fs.dim, fs.classes, sc)
			if err != nil {
				return row, err
			}
			row.SVM = &s
		}
		knn, err := eval.KNN(fs.trainX, fs.trainY, fs.testX, fs.testY, fs.dim, fs.classes, eval.DefaultKNNConfig())
		if err != nil {
			return row, err
		}
		row.KNN = &knn
		if c.Bool("lowshot") {
			lc := eval.DefaultLowShotConfig()
			lc.Probe = pc
			ls, err := eval.LowShot(fs.trainX, fs.trainY, fs.testX, fs.testY, fs.dim, fs.classes, lc)
			if err != nil {
				return row, err
			}
			row.LowShot = &ls
		}
		fmt.Fprintf(os.Stderr, "%s: linear top-1 %.4f, kNN top-1 %.4f\n", row.Name, lin.Top1, knn.Top1)
		return row, nil
	}
	for _, m := range models {
		sess, err := runtime.Open(m.path, runtime.Options{Device: c.String("device"), IntraOpThreads: c.Int("threads"), DisableSpinning: !c.Bool("spin")})
		if err != nil {
			return nil, err
		}
		fs, err := modelFeatureSets(sess, trainDS, testDS, c.Int("batch"), m.row.Name+" train", m.row.Name+" test")
		sess.Close()
		if err != nil {
			return nil, err
		}
		row, err := evaluate(m.row, fs)
		if err != nil {
			return nil, err
		}
		res.Rows = append(res.Rows, row)
	}
	fs, err := pixelFeatureSets(trainDS, testDS)
	if err != nil {
		return nil, err
	}
	row, err := evaluate(baselineRow{Name: "raw pixels", Kind: "raw-pixels"}, fs)
	if err != nil {
		return nil, err
	}
	res.Rows = append(res.Rows, row)

	res.Markdown, res.JSONFile = filepath.Join(out, "baselines.md"), filepath.Join(out, "baselines.json")
	var md strings.Builder
	printBaselines(&md, res)
	if err := os.WriteFile(res.Markdown, []byte(md.String()), 0o644); err != nil {
		return nil, fmt.Errorf("baselines: %w", err)
	}
	res.WallSeconds = time.Since(t0).Seconds()
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(res.JSONFile, b, 0o644); err != nil {
		return nil, fmt.Errorf("baselines: %w", err)
	}
	return res, nil
}

// supervisedBaseline trains the supervised baseline into dir unless dir
// already holds a checkpoint; it returns nil when it reused one.
func supervisedBaseline(c *cli.Context, dir string) (*train.Result, error) {
	if _, path, _, err := train.LatestCheckpoint(dir); err == nil {
		fmt.Fprintf(os.Stderr, "reusing the supervised baseline in %s (%s); delete the folder to retrain\n", dir, filepath.Base(path))
		return nil, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("baselines: %s: %w", dir, err)
	}
	cfg := train.DefaultConfig("supervised", c.String("arch"))
	cfg.BudgetSeconds, cfg.Batch, cfg.LR, cfg.Seed = c.Duration("budget").Seconds(), c.Int("train-batch"), c.Float64("lr"), c.Int64("seed")
	cfg.CheckpointEvery = c.Int("checkpoint-every")
	fmt.Fprintf(os.Stderr, "== training the supervised baseline (%s, budget %s) into %s\n", cfg.Arch, c.Duration("budget"), dir)
	return pretrain(cfg, c.String("data"), "train", dir, c.Bool("skip-bad"), 0, 0, false, nil)
}

// printBaselines writes the comparison as a Markdown table.
func printBaselines(w io.Writer, r *baselinesResult) {
	fmt.Fprintf(w, "\n%s: %d training and %d test images, %d classes; baselines %s, supervised budget %s\n\n",
		r.Data, r.TrainImages, r.TestImages, r.Classes, r.Arch, time.Duration(r.BudgetSeconds*float64(time.Second)))
	header := "| features | dim | linear top-1 | linear top-5 | kNN top-1 |"
	rule := "|---|---:|---:|---:|---:|"
	hasSVM, hasLow := false, false
	for _, row := range r.Rows {
		hasSVM = hasSVM || row.SVM != nil
		hasLow = hasLow || row.LowShot != nil
	}
	if hasSVM {
		header += " SVM top-1 |"
		rule += "---:|"
	}
	var fracs []eval.LowShotSummary
	if hasLow {
		for _, row := range r.Rows {
			if row.LowShot != nil {
				fracs = row.LowShot.Fractions
				break
			}
		}
		for _, f := range fracs {
			header += fmt.Sprintf(" %g%% labels top-1 |", 100*f.Fraction)
			rule += "---:|"
		}
	}
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, rule)
	for _, row := range r.Rows {
		name := row.Name
		if row.Task != "" && row.Task != row.Name {
			name += " (" + row.Task + ")"
		}
		if row.TrainSteps > 0 {
			name += fmt.Sprintf(", %d steps", row.TrainSteps)
		}
		line := fmt.Sprintf("| %s | %d | %.4f | %.4f | %.4f |", name, row.Dim, row.Linear.Top1, row.Linear.Top5, row.KNN.Top1)
		if hasSVM {
			line += fmt.Sprintf(" %.4f |", row.SVM.Top1)
		}
		if hasLow {
			for i := range fracs {
				f := row.LowShot.Fractions[i]
				line += fmt.Sprintf(" %.4f ± %.4f |", f.Top1Mean, f.Top1Std)
			}
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
}
