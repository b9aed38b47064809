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
	"github.com/selfsup/selfsup/internal/atomicfile"
	"github.com/selfsup/selfsup/runtime"
	"github.com/selfsup/selfsup/train"
)

// ReproduceConfig is `selfsup reproduce`: the protocol behind the seed's
// tables at small scale. Every method pretrains the same architecture for
// the same wall-time budget; every backbone (random init included) gets its
// batch-norm statistics re-estimated on whole training images before
// export; every pooled stage and the final features are probed, the layer
// chosen on a validation split of the probe's training images; kNN and
// low-shot run on that layer. Results land in Out as they are measured, so
// a rerun skips what is done and resumes an interrupted pretraining run.
type ReproduceConfig struct {
	// Data is a labelled dataset spec with train and test splits.
	Data string
	// Arch is the backbone of every row (default resnet20c).
	Arch string
	// Budget is each method's pretraining time.
	Budget time.Duration
	// BudgetClock is what Budget and AblationBudget measure
	// (train.BudgetWall or train.BudgetCPU; "": wall).
	BudgetClock string
	// AblationBudget is each ablation row's pretraining time
	// (0: Budget/3).
	AblationBudget time.Duration
	// Steps, when > 0, trains every method and ablation row for exactly
	// this many steps instead of a budget (tests).
	Steps int
	// Streams > 1 trains each method row on that many streams
	// (train.Config.Streams; a task that cannot falls back to one, and
	// the row's config.json says which).
	Streams int
	// Precision of the method rows' convolutions (train.Config.Precision).
	Precision string
	// Out receives runs/, models/, eval/, ablate/, report.md,
	// results.json and the plots.
	Out string
	// Methods are the pretraining tasks, in order (nil:
	// DefaultReproduceMethods). The random-init and raw-pixel floors are
	// always measured.
	Methods []string
	// Ablations runs Table 4 (PermRows) and Table 5 (the shortcut rows).
	Ablations bool
	// PermRows are the permutation sets of the Table 4 ablation (nil:
	// DefaultPermRows).
	PermRows string
	// ProbeTrain is the number of training images (class-balanced) the
	// probes fit on (0: all); the test split is used whole.
	ProbeTrain int
	// BNImages is the number of training images batch-norm statistics are
	// re-estimated on (0: 4096).
	BNImages int
	// Dense, when set, is an annotated set with COCO128's layout
	// (train2017 / val2017 images, boxes and masks): after the tables,
	// every backbone also gets the frozen-feature dense probe of `eval
	// segment` / `eval detect` (DenseTasks) at DenseSize pixels, with the
	// pixel and prior-only baselines.
	Dense      string
	DenseSize  int      // default 128
	DenseTasks []string // DenseSegment, DenseDetect (nil: segment)
	// DenseSplits are the dense set's train and test splits (default
	// train2017, val2017); batch norm is re-estimated on the train one.
	DenseSplits [2]string
	Seed        int64
	Log         io.Writer
}

// DefaultReproduceMethods are the rows of the main table.
var DefaultReproduceMethods = []string{"supervised", "rotation", "jigsaw", "npid", "pirl-rotation", "pirl-jigsaw", "pirl-jigsaw-rotation",
	"relpos", "deepcluster", "inpainting"}

// DefaultPermRows are the Table 4 rows: fewer permutations, same method.
const DefaultPermRows = "1000:maxavg,100:maxavg,10:maxavg,10:maxmin"

// rowCheckpointEvery is the checkpoint interval, in steps, of every row
// reproduce and ablate train: a row killed with its session resumes from
// its last checkpoint instead of starting afresh.
const rowCheckpointEvery = 100

// MethodResult is one row of the main table.
type MethodResult struct {
	Name string `json:"name"`
	// Kind is "pretext", "supervised", "random-init" or "raw-pixels".
	Kind string `json:"kind"`
	// BNRecalibrated says whether the batch-norm statistics were
	// re-estimated (false only for the random-init 0/1 floor).
	BNRecalibrated bool    `json:"bn_recalibrated"`
	BudgetSec      float64 `json:"budget_seconds,omitempty"`
	Steps          int     `json:"steps,omitempty"`
	ImagesSeen     int     `json:"images_seen,omitempty"`
	TrainSec       float64 `json:"train_seconds,omitempty"` // as the budget clock measures it
	TrainWallSec   float64 `json:"train_wall_seconds,omitempty"`
	PretextAcc     float64 `json:"pretext_acc,omitempty"`
	Model          string  `json:"model,omitempty"`
	// Linear is the per-layer linear probe; KNN and LowShot run on its
	// best layer (chosen on validation).
	Linear  *eval.LayersResult  `json:"linear"`
	KNN     *eval.KNNResult     `json:"knn,omitempty"`
	LowShot *eval.LowShotResult `json:"lowshot,omitempty"`
	Seconds float64             `json:"eval_seconds"`
}

// ReproduceResult is results.json.
type ReproduceResult struct {
	Data           string          `json:"data"`
	Arch           string          `json:"arch"`
	BudgetSec      float64         `json:"budget_seconds"`
	AblationBudget float64         `json:"ablation_budget_seconds"`
	BudgetClock    string          `json:"budget_clock,omitempty"`
	ProbeTrain     int             `json:"probe_train_images"`
	TestImages     int             `json:"test_images"`
	Rows           []*MethodResult `json:"rows"`
	Perms          *AblateResult   `json:"table4,omitempty"`
	Shortcuts      *AblateResult   `json:"table5,omitempty"`
	Dense          []*DenseRow     `json:"dense,omitempty"`
	DenseData      string          `json:"dense_data,omitempty"`
	Orderings      []Ordering      `json:"orderings"`
	Report         string          `json:"report"`
	Plots          []string        `json:"plots"`
	WallSeconds    float64         `json:"wall_seconds"`
}

// Reproduce runs the protocol (see ReproduceConfig) and writes the report.
func Reproduce(ctx context.Context, c ReproduceConfig) (*ReproduceResult, error) {
	t0 := time.Now()
	log := logTo(c.Log)
	if c.Arch == "" {
		c.Arch = "resnet20c"
	}
	if c.Methods == nil {
		c.Methods = DefaultReproduceMethods
	}
	if c.AblationBudget == 0 {
		c.AblationBudget = c.Budget / 3
	}
	if c.PermRows == "" {
		c.PermRows = DefaultPermRows
	}
	if c.DenseSize == 0 {
		c.DenseSize = 128
	}
	if c.DenseSplits == [2]string{} {
		c.DenseSplits = [2]string{"train2017", "val2017"}
	}
	if c.DenseTasks == nil {
		c.DenseTasks = []string{DenseSegment}
	}
	for _, t := range c.DenseTasks {
		if t != DenseSegment && t != DenseDetect {
			return nil, fmt.Errorf("reproduce: dense task %q: expected %s or %s", t, DenseSegment, DenseDetect)
		}
	}
	if c.Budget <= 0 && c.Steps <= 0 {
		return nil, fmt.Errorf("reproduce: give a pretraining budget")
	}
	for _, m := range c.Methods {
		name, _, err := c.methodBudget(m)
		if err != nil {
			return nil, err
		}
		if name == "random-init" || name == "raw-pixels" {
			return nil, fmt.Errorf("reproduce: %s is measured anyway; name only pretraining tasks in --methods", name)
		}
	}
	for _, d := range []string{"runs", "models", "eval"} {
		if err := os.MkdirAll(filepath.Join(c.Out, d), 0o755); err != nil {
			return nil, fmt.Errorf("reproduce: %w", err)
		}
	}
	trainAll, err := data.Load(c.Data, "train", data.OpenOptions{Log: log})
	if err != nil {
		return nil, err
	}
	testDS, err := data.Load(c.Data, "test", data.OpenOptions{Log: log})
	if err != nil {
		return nil, err
	}
	if trainAll.Len() == 0 || testDS.Len() == 0 || trainAll.Label(0) < 0 {
		return nil, fmt.Errorf("reproduce: %s needs labelled train and test splits (got %d and %d images)", c.Data, trainAll.Len(), testDS.Len())
	}
	probeTr := trainAll
	if c.ProbeTrain > 0 && c.ProbeTrain < trainAll.Len() {
		probeTr = data.Subset(trainAll, data.BalancedSubset(trainAll, c.ProbeTrain, c.Seed))
	}
	res := &ReproduceResult{Data: c.Data, Arch: c.Arch, BudgetSec: c.Budget.Seconds(), AblationBudget: c.AblationBudget.Seconds(), BudgetClock: c.BudgetClock,
		ProbeTrain: probeTr.Len(), TestImages: testDS.Len()}
	env := &reproEnv{c: c, log: log, trainAll: trainAll, probeTr: probeTr, test: testDS}

	// The floors first: they take minutes, and every row is read against them.
	for _, bn := range []bool{false, true} {
		r, err := env.randomInit(ctx, bn)
		if err != nil {
			return nil, err
		}
		res.Rows = append(res.Rows, r)
	}
	r, err := env.rawPixels()
	if err != nil {
		return nil, err
	}
	res.Rows = append(res.Rows, r)
	for i, m := range c.Methods {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "== reproduce: method %d/%d: %s\n", i+1, len(c.Methods), m)
		r, err := env.method(ctx, m)
		if err != nil {
			return nil, fmt.Errorf("reproduce: %s: %w", m, err)
		}
		res.Rows = append(res.Rows, r)
		if err := writeReport(c, res, t0); err != nil { // a partial report after every row
			return nil, err
		}
	}
	if c.Ablations {
		if res.Perms, res.Shortcuts, err = env.ablations(ctx); err != nil {
			return nil, err
		}
	}
	if c.Dense != "" {
		res.DenseData = c.Dense
		if res.Dense, err = env.dense(ctx, res); err != nil {
			return nil, err
		}
	}
	if err := writeReport(c, res, t0); err != nil {
		return nil, err
	}
	return res, nil
}

// reproEnv is what every row shares.
type reproEnv struct {
	c                       ReproduceConfig
	log                     io.Writer
	trainAll, probeTr, test data.Dataset
}

// cached loads Out/eval/<name>.json into r when a previous run wrote it.
func (e *reproEnv) cached(name string, r *MethodResult) (bool, error) {
	b, err := os.ReadFile(filepath.Join(e.c.Out, "eval", name+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, r); err != nil {
		return false, fmt.Errorf("reproduce: %s: %w (delete it to measure again)", filepath.Join(e.c.Out, "eval", name+".json"), err)
	}
	fmt.Fprintf(e.log, "== reproduce: %s already evaluated (%s)\n", name, filepath.Join(e.c.Out, "eval", name+".json"))
	return true, nil
}

func (e *reproEnv) save(r *MethodResult) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(e.c.Out, "eval", r.Name+".json"), b)
}

// randomInit measures the untrained backbone every pretraining run starts
// from (train draws its weights from the run's seed), with batch-norm
// statistics re-estimated (bn) or as initialised (mean 0, variance 1).
func (e *reproEnv) randomInit(ctx context.Context, bn bool) (*MethodResult, error) {
	name := "random-init-bn01"
	if bn {
		name = "random-init"
	}
	r := &MethodResult{Name: name, Kind: "random-init", BNRecalibrated: bn}
	if ok, err := e.cached(name, r); ok || err != nil {
		return r, err
	}
	first, err := e.trainAll.Image(0)
	if err != nil {
		return nil, err
	}
	b, err := RandomBackbone(e.c.Arch, first.C, e.c.Seed)
	if err != nil {
		return nil, err
	}
	b.Size = first.H
	if bn { // Recalibrate also takes a random init's mean/std from the data
		if err := b.Recalibrate(e.trainAll, e.c.BNImages, e.c.Seed); err != nil {
			return nil, err
		}
	} else if b.Mean, b.Std, err = data.ChannelStats(e.trainAll, data.StatsImages); err != nil {
		return nil, err
	}
	return r, e.evaluate(ctx, b, r)
}

// rawPixels is the linear probe on the images' normalised pixels.
func (e *reproEnv) rawPixels() (*MethodResult, error) {
	r := &MethodResult{Name: "raw-pixels", Kind: "raw-pixels"}
	if ok, err := e.cached(r.Name, r); ok || err != nil {
		return r, err
	}
	t0 := time.Now()
	fs, err := eval.PixelFeatureSets(e.probeTr, e.test, e.log)
	if err != nil {
		return nil, err
	}
	lf := &LayerFeatures{Layers: []string{"pixels"}, Source: "pixels", Classes: fs.Classes, TrainY: fs.TrainY, TestY: fs.TestY,
		Train: map[string]eval.FeatureMatrix{"pixels": {Data: fs.TrainX, Dim: fs.Dim}},
		Test:  map[string]eval.FeatureMatrix{"pixels": {Data: fs.TestX, Dim: fs.Dim}}}
	if err := e.probeAll(lf, r); err != nil {
		return nil, err
	}
	r.Seconds = time.Since(t0).Seconds()
	return r, e.save(r)
}

// methodBudget splits a Methods entry, "task" or "task:DURATION" (a
// budget of its own, such as the 15 minutes the issue allows the survey's
// other tasks), into the task and its budget.
func (c *ReproduceConfig) methodBudget(m string) (string, time.Duration, error) {
	name, d, ok := strings.Cut(m, ":")
	if !ok {
		return m, c.Budget, nil
	}
	b, err := time.ParseDuration(d)
	if err != nil || b <= 0 {
		return "", 0, fmt.Errorf("reproduce: method %q: expected TASK or TASK:DURATION (e.g. relpos:15m), bad duration %q", m, d)
	}
	return name, b, nil
}

// method pretrains a Methods entry (resuming an interrupted run, skipping a
// finished one) and evaluates it.
func (e *reproEnv) method(ctx context.Context, spec string) (*MethodResult, error) {
	task, budget, err := e.c.methodBudget(spec)
	if err != nil {
		return nil, err
	}
	r := &MethodResult{Name: task, Kind: "pretext", BNRecalibrated: true, BudgetSec: budget.Seconds()}
	if task == "supervised" {
		r.Kind = "supervised"
	}
	if ok, err := e.cached(task, r); ok || err != nil {
		return r, err
	}
	dir := filepath.Join(e.c.Out, "runs", task)
	done := filepath.Join(dir, "trained.json")
	var tr train.Result
	if b, err := os.ReadFile(done); err == nil {
		if err := json.Unmarshal(b, &tr); err != nil {
			return nil, fmt.Errorf("%s: %w", done, err)
		}
		fmt.Fprintf(e.log, "%s: pretraining finished earlier (%d steps)\n", task, tr.Steps)
	} else {
		cfg := train.DefaultConfig(task, e.c.Arch)
		cfg.BudgetSeconds, cfg.BudgetClock, cfg.Seed, cfg.CheckpointEvery = budget.Seconds(), e.c.BudgetClock, e.c.Seed, rowCheckpointEvery
		if e.c.Steps > 0 {
			cfg.Steps, cfg.BudgetSeconds = e.c.Steps, 0
		}
		cfg.Streams, cfg.Precision = e.c.Streams, e.c.Precision
		res, err := Pretrain(ctx, PretrainConfig{Train: cfg, Data: e.c.Data, Out: dir, Resume: true, Log: e.log})
		if errors.Is(err, train.ErrStreams) {
			fmt.Fprintf(e.log, "%s: %v; training it on one stream\n", task, err)
			cfg.Streams = 1
			res, err = Pretrain(ctx, PretrainConfig{Train: cfg, Data: e.c.Data, Out: dir, Resume: true, Log: e.log})
		}
		if err != nil {
			return nil, err
		}
		tr = *res
		b, _ := json.MarshalIndent(tr, "", "  ")
		if err := atomicfile.WriteFile(done, b); err != nil {
			return nil, err
		}
	}
	r.Steps, r.ImagesSeen, r.TrainSec, r.TrainWallSec, r.PretextAcc = tr.Steps, tr.ImagesSeen, tr.Seconds, tr.WallSeconds, tr.ValPretext
	ck, err := train.LoadCheckpoint(tr.Checkpoint)
	if err != nil {
		return nil, err
	}
	b, err := BackboneFromCheckpoint(ck)
	if err != nil {
		return nil, err
	}
	if err := b.Recalibrate(e.trainAll, e.c.BNImages, e.c.Seed); err != nil {
		return nil, err
	}
	return r, e.evaluate(ctx, b, r)
}

// evaluate exports b with every pooled stage, extracts the probe's
// training and test images and probes every layer.
func (e *reproEnv) evaluate(ctx context.Context, b *Backbone, r *MethodResult) error {
	t0 := time.Now()
	layers, opts, err := pooledLayers(b, "best")
	if err != nil {
		return err
	}
	r.Model = filepath.Join(e.c.Out, "models", r.Name+".onnx")
	if err := b.Export(r.Model, opts); err != nil {
		return err
	}
	sess, err := runtime.Open(r.Model, runtime.Options{})
	if err != nil {
		return err
	}
	defer sess.Close()
	lf, err := ExtractLayers(sess, e.probeTr, e.test, layers, 256, e.log)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.probeAll(lf, r); err != nil {
		return err
	}
	r.Seconds = time.Since(t0).Seconds()
	return e.save(r)
}

// probeAll fits the per-layer linear probe, then kNN and low-shot on the
// layer it chose.
func (e *reproEnv) probeAll(lf *LayerFeatures, r *MethodResult) error {
	pc := eval.DefaultProbeConfig()
	pc.Seed = e.c.Seed
	lin, err := lf.Probe(pc, e.log)
	if err != nil {
		return err
	}
	r.Linear = lin
	fs, err := lf.Layer(lin.Best.Layer)
	if err != nil {
		return err
	}
	knn, err := eval.KNN(fs.TrainX, fs.TrainY, fs.TestX, fs.TestY, fs.Dim, fs.Classes, eval.DefaultKNNConfig())
	if err != nil {
		return err
	}
	r.KNN = &knn
	lc := eval.DefaultLowShotConfig()
	lc.Probe = pc
	ls, err := eval.LowShot(fs.TrainX, fs.TrainY, fs.TestX, fs.TestY, fs.Dim, fs.Classes, lc)
	if err != nil {
		return err
	}
	r.LowShot = &ls
	fmt.Fprintf(e.log, "%s: linear %.4f (%s), kNN %.4f\n", r.Name, lin.Best.Top1, lin.Best.Layer, knn.Top1)
	return nil
}

// ablations runs Table 4 and Table 5 row by row into Out/ablate, each row
// cached in its own JSON file.
func (e *reproEnv) ablations(ctx context.Context) (*AblateResult, *AblateResult, error) {
	o := AblateConfig{Data: e.c.Data, Arch: e.c.Arch, Out: filepath.Join(e.c.Out, "ablate"), Budget: e.c.AblationBudget, BudgetClock: e.c.BudgetClock, Steps: e.c.Steps,
		ProbeTrain: e.c.ProbeTrain, ValImages: 1024, Seed: e.c.Seed, NoBaseline: true, Log: e.log}
	perms, err := PermRows(e.c.PermRows)
	if err != nil {
		return nil, nil, err
	}
	var env *ablateEnv
	run := func(name string, specs []AblateSpec) (*AblateResult, error) {
		res := &AblateResult{Ablation: name, Data: o.Data, Arch: o.Arch, BudgetSec: o.Budget.Seconds(), Steps: o.Steps, Out: filepath.Join(o.Out, name)}
		for _, s := range specs {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			dir := filepath.Join(o.Out, name, s.Name)
			file := dir + ".json"
			var row AblateRow
			if b, err := os.ReadFile(file); err == nil && json.Unmarshal(b, &row) == nil {
				res.Rows = append(res.Rows, row)
				continue
			}
			if env == nil {
				if env, err = loadAblateEnv(o); err != nil {
					return nil, err
				}
			}
			fmt.Fprintf(e.log, "== reproduce: %s row %s\n", name, s.Name)
			r, err := ablateOne(o, env, s, dir)
			if err != nil {
				return nil, fmt.Errorf("%s row %s: %w", name, s.Name, err)
			}
			b, _ := json.MarshalIndent(r, "", "  ")
			if err := atomicfile.WriteFile(file, b); err != nil {
				return nil, err
			}
			res.Rows = append(res.Rows, *r)
		}
		if env != nil {
			res.Batch, res.ImageSize, res.ProbeSize, res.ProbeTrain, res.TestImages, res.ValImages =
				train.DefaultConfig("jigsaw", o.Arch).Batch, env.size, env.size, env.probeTr.Len(), env.probeTe.Len(), data.Len(env.valSet)
		}
		return res, nil
	}
	p, err := run("table4-perms", perms)
	if err != nil {
		return nil, nil, err
	}
	s, err := run("table5-shortcuts", ShortcutRows(100))
	if err != nil {
		return nil, nil, err
	}
	return p, s, nil
}

// row returns the result named name, or nil.
func (r *ReproduceResult) row(name string) *MethodResult {
	for _, x := range r.Rows {
		if x.Name == name {
			return x
		}
	}
	return nil
}

func writeReport(c ReproduceConfig, res *ReproduceResult, t0 time.Time) error {
	res.Orderings = CheckOrderings(res)
	res.Report = filepath.Join(c.Out, "report.md")
	var md strings.Builder
	WriteReproduceReport(&md, c, res)
	if err := atomicfile.WriteFile(res.Report, []byte(md.String())); err != nil {
		return err
	}
	plots, err := reproducePlots(c.Out, res)
	if err != nil {
		return err
	}
	res.Plots = plots
	res.WallSeconds = time.Since(t0).Seconds()
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(c.Out, "results.json"), b)
}
