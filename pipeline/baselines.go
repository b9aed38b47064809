package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/runtime"
	"github.com/selfsup/selfsup/train"
)

// BaselinesConfig is `selfsup eval baselines`: pretrained runs against
// supervised pretraining (same architecture and budget), a random-init
// backbone and raw pixels, by the same protocol.
type BaselinesConfig struct {
	Data   string
	Arch   string        // backbone of the supervised and random-init baselines
	Budget time.Duration // wall-time budget of the supervised baseline's training
	// Out holds the supervised run, the ONNX models and baselines.md /
	// baselines.json; an existing supervised run there is reused.
	Out             string
	Runs            []string // pretrained run directories to evaluate
	LowShot, SVM    bool     // also low-shot linear evaluation / the SVM probe
	MaxTrain        int      // training images for the evaluations (class-balanced; 0: all)
	TrainBatch      int      // images per step of the supervised baseline
	LR              float64  // its peak learning rate
	CheckpointEvery int      // its checkpoint interval in steps
	SkipBad         bool
	Seed            int64
	Runtime         runtime.Options
	Batch           int // images per ONNX Runtime call
	Log             io.Writer
}

// BaselineRow is one line of the comparison.
type BaselineRow struct {
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

// BaselinesResult is what `selfsup eval baselines --json` prints (and
// baselines.json holds).
type BaselinesResult struct {
	Data          string        `json:"data"`
	Arch          string        `json:"arch"`
	BudgetSeconds float64       `json:"budget_seconds"`
	TrainImages   int           `json:"train_images"`
	TestImages    int           `json:"test_images"`
	Classes       int           `json:"classes"`
	Rows          []BaselineRow `json:"rows"`
	Markdown      string        `json:"markdown"`
	JSONFile      string        `json:"json_file"`
	WallSeconds   float64       `json:"wall_seconds"`
}

// Baselines trains (or reuses) the supervised baseline, exports every run
// and a random-init backbone, and evaluates each and raw pixels with the
// linear probe, kNN and optionally the SVM and low-shot evaluation.
func Baselines(ctx context.Context, c BaselinesConfig) (*BaselinesResult, error) {
	t0 := time.Now()
	log := logTo(c.Log)
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return nil, fmt.Errorf("baselines: %w", err)
	}
	res := &BaselinesResult{Data: c.Data, Arch: c.Arch, BudgetSeconds: c.Budget.Seconds()}

	// 1. The supervised baseline: trained once, reused when its run exists.
	supDir := filepath.Join(c.Out, "supervised")
	supRes, err := supervisedBaseline(ctx, c, supDir)
	if err != nil {
		return nil, err
	}

	// 2. Data, decoded once for every model.
	trainDS, testDS, err := data.OpenSplits(c.Data, data.SplitsOptions{SkipBad: c.SkipBad, MaxTrain: c.MaxTrain, Seed: c.Seed, Cache: true, Log: log})
	if err != nil {
		return nil, err
	}
	res.TrainImages, res.TestImages, res.Classes = trainDS.Len(), testDS.Len(), len(trainDS.Classes())
	first, err := trainDS.Image(0)
	if err != nil {
		return nil, err
	}

	// 3. The models to evaluate: the given runs, supervised, random init
	// (twice: batch-norm statistics re-estimated like every other row,
	// and as initialised, mean 0 / variance 1, the flattered floor).
	var rows []BaselineRow
	for _, run := range append(append([]string(nil), c.Runs...), supDir) {
		name := filepath.Base(filepath.Clean(run))
		path := filepath.Join(c.Out, name+".onnx")
		ck, ckPath, err := LatestCheckpoint(run, log)
		if err != nil {
			return nil, fmt.Errorf("baselines: run %s: %w", run, err)
		}
		b, err := BackboneFromCheckpoint(ck)
		if err != nil {
			return nil, err
		}
		if err := b.Recalibrate(trainDS, 0, c.Seed); err != nil {
			return nil, err
		}
		if err := b.Export(path, export.DefaultOptions()); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "exported %s (%s, step %d, batch norm recalibrated) -> %s\n", ckPath, ck.Config.Task, ck.Step, path)
		row := BaselineRow{Name: name, Kind: "pretrained", Task: ck.Config.Task, Model: path, Run: run,
			TrainSteps: ck.Step, TrainImagesSeen: ck.Step * ck.Config.Batch}
		if run == supDir {
			row.Kind = "supervised"
			if supRes != nil {
				row.TrainSeconds = supRes.Seconds
			}
		}
		if ck.Config.Arch != c.Arch {
			fmt.Fprintf(log, "note: run %s is %s, the baselines %s\n", run, ck.Config.Arch, c.Arch)
		}
		rows = append(rows, row)
	}
	mean, std, err := data.ChannelStats(trainDS, data.StatsImages)
	if err != nil {
		return nil, err
	}
	for _, recal := range []bool{true, false} {
		rnd, err := RandomBackbone(c.Arch, first.C, c.Seed+1)
		if err != nil {
			return nil, err
		}
		rnd.Size, rnd.Mean, rnd.Std = first.H, mean, std
		name := "random-init-bn01"
		if recal {
			name = "random-init"
			if err := rnd.Recalibrate(trainDS, 0, c.Seed); err != nil {
				return nil, err
			}
		}
		rndPath := filepath.Join(c.Out, name+".onnx")
		if err := rnd.Export(rndPath, export.DefaultOptions()); err != nil {
			return nil, err
		}
		rows = append(rows, BaselineRow{Name: name, Kind: "random-init", Model: rndPath})
	}

	// 4. Evaluate every model, then raw pixels.
	for _, row := range rows {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fs, err := ModelFileFeatureSets(row.Model, c.Runtime, trainDS, testDS, c.Batch, row.Name+" train", row.Name+" test", log)
		if err != nil {
			return nil, err
		}
		if row, err = evaluateBaseline(c, row, fs); err != nil {
			return nil, err
		}
		res.Rows = append(res.Rows, row)
	}
	fs, err := eval.PixelFeatureSets(trainDS, testDS, log)
	if err != nil {
		return nil, err
	}
	row, err := evaluateBaseline(c, BaselineRow{Name: "raw pixels", Kind: "raw-pixels"}, fs)
	if err != nil {
		return nil, err
	}
	res.Rows = append(res.Rows, row)

	res.Markdown, res.JSONFile = filepath.Join(c.Out, "baselines.md"), filepath.Join(c.Out, "baselines.json")
	var md strings.Builder
	WriteBaselinesTable(&md, res)
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

// evaluateBaseline fills in row's figures from the features fs.
func evaluateBaseline(c BaselinesConfig, row BaselineRow, fs *eval.FeatureSets) (BaselineRow, error) {
	log := logTo(c.Log)
	row.Dim = fs.Dim
	fmt.Fprintf(log, "== %s: linear probe, kNN%s\n", row.Name, map[bool]string{true: ", low-shot", false: ""}[c.LowShot])
	pc := eval.DefaultProbeConfig()
	pc.Seed = c.Seed
	lin, err := eval.LinearProbe(fs.TrainX, fs.TrainY, fs.TestX, fs.TestY, fs.Dim, fs.Classes, pc)
	if err != nil {
		return row, err
	}
	row.Linear = &lin
	if c.SVM {
		sc := pc
		sc.Classifier = eval.ClassifierSVM
		s, err := eval.LinearProbe(fs.TrainX, fs.TrainY, fs.TestX, fs.TestY, fs.Dim, fs.Classes, sc)
		if err != nil {
			return row, err
		}
		row.SVM = &s
	}
	knn, err := eval.KNN(fs.TrainX, fs.TrainY, fs.TestX, fs.TestY, fs.Dim, fs.Classes, eval.DefaultKNNConfig())
	if err != nil {
		return row, err
	}
	row.KNN = &knn
	if c.LowShot {
		lc := eval.DefaultLowShotConfig()
		lc.Probe = pc
		ls, err := eval.LowShot(fs.TrainX, fs.TrainY, fs.TestX, fs.TestY, fs.Dim, fs.Classes, lc)
		if err != nil {
			return row, err
		}
		row.LowShot = &ls
	}
	fmt.Fprintf(log, "%s: linear top-1 %.4f, kNN top-1 %.4f\n", row.Name, lin.Top1, knn.Top1)
	return row, nil
}

// supervisedBaseline trains the supervised baseline into dir unless dir
// already holds a checkpoint; it returns nil when it reused one.
func supervisedBaseline(ctx context.Context, c BaselinesConfig, dir string) (*train.Result, error) {
	log := logTo(c.Log)
	if _, path, _, err := train.LatestCheckpoint(dir); err == nil {
		fmt.Fprintf(log, "reusing the supervised baseline in %s (%s); delete the folder to retrain\n", dir, filepath.Base(path))
		return nil, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("baselines: %s: %w", dir, err)
	}
	cfg := train.DefaultConfig("supervised", c.Arch)
	cfg.BudgetSeconds, cfg.Batch, cfg.LR, cfg.Seed = c.Budget.Seconds(), c.TrainBatch, c.LR, c.Seed
	cfg.CheckpointEvery = c.CheckpointEvery
	fmt.Fprintf(log, "== training the supervised baseline (%s, budget %s) into %s\n", cfg.Arch, c.Budget, dir)
	return Pretrain(ctx, PretrainConfig{Train: cfg, Data: c.Data, Split: "train", Open: data.OpenOptions{SkipBad: c.SkipBad}, Out: dir, Log: log})
}

// WriteBaselinesTable writes the comparison as a Markdown table.
func WriteBaselinesTable(w io.Writer, r *BaselinesResult) {
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
