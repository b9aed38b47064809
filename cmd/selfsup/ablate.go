package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/pretext"
	"github.com/selfsup/selfsup/runtime"
	"github.com/selfsup/selfsup/train"
)

// ablateCmd is `selfsup ablate`; registerAblation adds subcommands to it
// from any file's init, whatever the order the init functions run in.
var ablateCmd *cli.Command

func registerAblation(c *cli.Command) {
	if ablateCmd == nil {
		ablateCmd = &cli.Command{Name: "ablate", Usage: "ablation studies shaped like the papers' tables, at small scale (Markdown table; --json)"}
		extraCommands = append(extraCommands, ablateCmd)
	}
	ablateCmd.Subcommands = append(ablateCmd.Subcommands, c)
}

func init() {
	registerAblation(&cli.Command{
		Name:  "jigsaw-perms",
		Usage: "Noroozi & Favaro 2016 Table 4: permutation-set size and method vs Hamming distances, jigsaw accuracy and downstream linear-probe accuracy",
		Flags: append(ablateFlags(),
			&cli.StringFlag{Name: "rows", Value: "1000:maxavg,100:maxavg,10:maxavg,100:random,10:maxmin",
				Usage: "comma-separated N:METHOD rows (METHOD: maxavg, maxmin, random)"}),
		Action: func(c *cli.Context) error {
			rows, err := permRows(c.String("rows"))
			if err != nil {
				return err
			}
			return runAblation(c, "jigsaw-perms", rows, printPermsTable)
		},
	})
	registerAblation(&cli.Command{
		Name:  "jigsaw-shortcuts",
		Usage: "Noroozi & Favaro 2016 Table 5: gap, per-tile normalisation and colour jitter each off, and all on: jigsaw accuracy and downstream linear-probe accuracy",
		Flags: append(ablateFlags(),
			&cli.IntFlag{Name: "n", Value: 100, Usage: "permutations (maxavg) in every row"}),
		Action: func(c *cli.Context) error {
			rows := shortcutRows(c.Int("n"))
			return runAblation(c, "jigsaw-shortcuts", rows, printShortcutsTable)
		},
	})
}

// permRows parses the --rows of jigsaw-perms: comma-separated N:METHOD.
func permRows(spec string) ([]ablateSpec, error) {
	var rows []ablateSpec
	for _, f := range strings.Split(spec, ",") {
		ns, method, ok := strings.Cut(strings.TrimSpace(f), ":")
		n, err := strconv.Atoi(ns)
		if !ok || err != nil {
			return nil, fmt.Errorf("ablate: --rows entry %q: expected N:METHOD, e.g. 100:maxavg", f)
		}
		if n < 2 || n > pretext.PermSetMaxN || !slices.Contains(pretext.PermSetMethods(), method) {
			return nil, fmt.Errorf("ablate: --rows entry %q: N must be in [2, %d] and METHOD one of %v", f, pretext.PermSetMaxN, pretext.PermSetMethods())
		}
		rows = append(rows, ablateSpec{name: fmt.Sprintf("n%d-%s", n, method), n: n, method: method, gap: true, norm: true, jitter: true})
	}
	return rows, nil
}

// shortcutRows are Table 5's rows: each protection off in turn, then all
// on, with n maxavg permutations.
func shortcutRows(n int) []ablateSpec {
	m := pretext.PermMethodMaxAvg
	return []ablateSpec{
		{name: "no-gap", n: n, method: m, gap: false, norm: true, jitter: true},
		{name: "no-norm", n: n, method: m, gap: true, norm: false, jitter: true},
		{name: "no-jitter", n: n, method: m, gap: true, norm: true, jitter: false},
		{name: "all-on", n: n, method: m, gap: true, norm: true, jitter: true},
	}
}

func ablateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "data", Value: filepath.Join(sharedDataDir(), "cifar10-jpg.tar"), Usage: "labelled images with train/test splits"},
		&cli.DurationFlag{Name: "budget", Value: 2 * time.Minute, Usage: "pretraining wall-time budget of every row (e.g. 1m)"},
		&cli.IntFlag{Name: "steps", Usage: "train every row for exactly this many steps instead of --budget (comparable rows on a busy machine)"},
		&cli.StringFlag{Name: "arch", Value: "resnet20c", Usage: "backbone"},
		&cli.IntFlag{Name: "batch", Value: 32, Usage: "source images per step (each is 9 tiles); small batches give short budgets more steps"},
		&cli.Float64Flag{Name: "lr", Value: 0.02, Usage: "peak learning rate (SGD, cosine schedule; jigsaw stays at chance with 0.1 on short budgets)"},
		&cli.IntFlag{Name: "probe-train", Value: 5000, Usage: "training images for the linear probe (class-balanced subset; 0: all)"},
		&cli.IntFlag{Name: "probe-test", Value: 0, Usage: "test images for the linear probe (class-balanced subset; 0: all)"},
		&cli.IntFlag{Name: "val-images", Value: 512, Usage: "training images held out for the jigsaw accuracy"},
		&cli.IntFlag{Name: "probe-size", Usage: "side in pixels the probe's images are resized to (the exported model's input size; 0: the dataset's image size). The tile scale is matched by the tile crop size (84 for 32 px images)"},
		&cli.BoolFlag{Name: "no-baseline", Usage: "skip the random-init backbone row"},
		&cli.StringFlag{Name: "out", Value: "ablate-out", Usage: "output folder (a fresh <ablation>-<time> folder is made inside)"},
		&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed for weights, data order, tiles and subsets"},
		&cli.BoolFlag{Name: "json", Usage: "print one JSON object as the last stdout line"},
	}
}

// sharedDataDir is $SELFSUP_DATA, or ../shared/data.
func sharedDataDir() string {
	if d := os.Getenv("SELFSUP_DATA"); d != "" {
		return d
	}
	return filepath.Join("..", "shared", "data")
}

// ablateSpec is one row to train: a jigsaw config.
type ablateSpec struct {
	name              string
	n                 int
	method            string
	gap, norm, jitter bool
	randomInit        bool // the untrained-backbone reference row
}

func (s ablateSpec) jigsaw(imageSize int) pretext.JigsawConfig {
	j := pretext.DefaultJigsawConfig(imageSize)
	j.N, j.Method = s.n, s.method
	j.Tiles.Gap, j.Tiles.PerTileNorm, j.Tiles.Jitter = s.gap, s.norm, s.jitter
	return j
}

// ablateRow is one measured row.
type ablateRow struct {
	Name        string  `json:"name"`
	N           int     `json:"n,omitempty"`
	Method      string  `json:"method,omitempty"`
	AvgHamming  float64 `json:"avg_hamming,omitempty"`
	MinHamming  float64 `json:"min_hamming,omitempty"`
	Gap         bool    `json:"gap"`
	Norm        bool    `json:"per_tile_norm"`
	Jitter      bool    `json:"jitter"`
	RandomInit  bool    `json:"random_init,omitempty"`
	JigsawAcc   float64 `json:"jigsaw_acc"`
	Chance      float64 `json:"chance,omitempty"`
	LinearTop1  float64 `json:"linear_top1"`
	LinearTop5  float64 `json:"linear_top5"`
	Steps       int     `json:"steps"`
	ImagesSeen  int     `json:"images_seen"`
	TrainSec    float64 `json:"train_seconds"`
	FinalLoss   float64 `json:"final_loss,omitempty"`
	Model       string  `json:"model"`
	WallSeconds float64 `json:"wall_seconds"`
}

// ablateResult is the --json output of an ablation.
type ablateResult struct {
	Ablation    string      `json:"ablation"`
	Data        string      `json:"data"`
	Arch        string      `json:"arch"`
	BudgetSec   float64     `json:"budget_seconds_per_row"`
	Steps       int         `json:"steps_per_row,omitempty"`
	Batch       int         `json:"batch"`
	ImageSize   int         `json:"image_size"`
	ProbeSize   int         `json:"probe_size"`
	ProbeTrain  int         `json:"probe_train_images"`
	TestImages  int         `json:"test_images"`
	ValImages   int         `json:"val_images"`
	Rows        []ablateRow `json:"rows"`
	Out         string      `json:"out"`
	WallSeconds float64     `json:"wall_seconds"`
}

// ablateOptions are the flags every ablation shares.
type ablateOptions struct {
	data, arch, out                            string
	budget                                     time.Duration
	steps, batch, probeTrain, probeTest, valIm int
	probeSize                                  int
	lr                                         float64
	seed                                       int64
	noBaseline                                 bool
}

func ablateOptionsFrom(c *cli.Context) ablateOptions {
	return ablateOptions{data: c.String("data"), arch: c.String("arch"), out: c.String("out"), budget: c.Duration("budget"),
		steps: c.Int("steps"), batch: c.Int("batch"), probeTrain: c.Int("probe-train"), probeTest: c.Int("probe-test"),
		valIm: c.Int("val-images"), probeSize: c.Int("probe-size"), lr: c.Float64("lr"), seed: c.Int64("seed"), noBaseline: c.Bool("no-baseline")}
}

// ablateEnv is what every row shares: the data, loaded once.
type ablateEnv struct {
	trainSet, valSet   data.Dataset // pretraining images (val held out)
	probeTr, probeTe   data.Dataset // linear-probe images
	probeTrY, probeTeY []int
	classes            int
	channels, size     int
	mean, std          []float32
}

func loadAblateEnv(o ablateOptions) (*ablateEnv, error) {
	spec, seed := o.data, o.seed
	t0 := time.Now()
	ds, err := loadAll(spec, "train", false, 0, 0)
	if err != nil {
		return nil, err
	}
	test, err := loadAll(spec, "test", false, 0, 0)
	if err != nil {
		return nil, err
	}
	if ds.Len() == 0 || test.Len() == 0 || ds.Label(0) < 0 {
		return nil, fmt.Errorf("ablate: %s needs labelled train and test splits (got %d and %d images)", spec, ds.Len(), test.Len())
	}
	first, err := ds.Image(0)
	if err != nil {
		return nil, err
	}
	if first.H != first.W {
		return nil, fmt.Errorf("ablate: %s has %dx%d images; square images expected", ds.Source(0), first.H, first.W)
	}
	e := &ablateEnv{channels: first.C, size: first.H, classes: len(ds.Classes())}
	if e.mean, e.std, err = channelStats(ds, 2000); err != nil {
		return nil, err
	}
	e.trainSet = ds
	if v := o.valIm; v > 0 && ds.Len() > 2*v {
		tr, va := data.Split(ds.Len(), float64(v)/float64(ds.Len()), seed)
		e.trainSet, e.valSet = data.Subset(ds, tr), data.Subset(ds, va)
	}
	e.probeTr, e.probeTe = ds, test
	if n := o.probeTrain; n > 0 && n < ds.Len() {
		e.probeTr = data.Subset(ds, balancedSubset(ds, n, seed))
	}
	if n := o.probeTest; n > 0 && n < test.Len() {
		e.probeTe = data.Subset(test, balancedSubset(test, n, seed))
	}
	e.probeTrY, e.probeTeY = data.Labels(e.probeTr), data.Labels(e.probeTe)
	if e.classes == 0 {
		e.classes = numClasses(e.probeTrY, e.probeTeY)
	}
	fmt.Fprintf(os.Stderr, "loaded %s: %d train (%d for pretraining), %d test images, %dx%dx%d, in %.1fs\n",
		spec, ds.Len(), e.trainSet.Len(), test.Len(), first.C, first.H, first.W, time.Since(t0).Seconds())
	return e, nil
}

// runAblation runs the rows (see ablate), prints the table with print and,
// with --json, the result as the last stdout line.
func runAblation(c *cli.Context, name string, specs []ablateSpec, print func(io.Writer, *ablateResult)) error {
	res, err := ablate(ablateOptionsFrom(c), name, specs)
	if err != nil {
		return err
	}
	print(os.Stdout, res)
	if c.Bool("json") {
		return printJSON(res)
	}
	return nil
}

// ablate loads the data once, then trains, exports and probes every row
// (plus, unless noBaseline, an untrained backbone) in a fresh folder
// <out>/<name>-<time>.
func ablate(o ablateOptions, name string, specs []ablateSpec) (*ablateResult, error) {
	t0 := time.Now()
	env, err := loadAblateEnv(o)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(o.out, name+"-"+time.Now().UTC().Format("20060102-150405"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ablate: %w", err)
	}
	res := &ablateResult{Ablation: name, Data: o.data, Arch: o.arch, BudgetSec: o.budget.Seconds(), Steps: o.steps, Batch: o.batch,
		ImageSize: env.size, ProbeSize: env.size, ProbeTrain: env.probeTr.Len(), TestImages: env.probeTe.Len(), ValImages: lenOf(env.valSet), Out: dir}
	if o.probeSize > 0 {
		res.ProbeSize = o.probeSize
	}
	if !o.noBaseline {
		specs = append(specs, ablateSpec{name: "random-init", randomInit: true})
	}
	for i, s := range specs {
		fmt.Fprintf(os.Stderr, "== %s row %d/%d: %s\n", name, i+1, len(specs), s.name)
		row, err := ablateOne(o, env, s, filepath.Join(dir, s.name))
		if err != nil {
			return nil, fmt.Errorf("ablate: row %s: %w", s.name, err)
		}
		res.Rows = append(res.Rows, *row)
		fmt.Fprintf(os.Stderr, "%s: jigsaw accuracy %.4f, linear top-1 %.4f (%.0fs)\n", s.name, row.JigsawAcc, row.LinearTop1, row.WallSeconds)
	}
	res.WallSeconds = time.Since(t0).Seconds()
	return res, nil
}

// ablateOne pretrains one row, exports its backbone at the dataset's image
// size (the ResNets are fully convolutional with global pooling, so the
// tile-trained backbone runs on whole images), extracts features with ONNX
// Runtime and fits the linear probe.
func ablateOne(o ablateOptions, env *ablateEnv, s ablateSpec, dir string) (*ablateRow, error) {
	t0 := time.Now()
	seed := o.seed
	row := &ablateRow{Name: s.name, RandomInit: s.randomInit}
	var src *exportable
	if s.randomInit {
		var err error
		// The weights every trained row started from (train draws them
		// first from the run's seed).
		if src, err = exportSource("", "", o.arch, true, env.channels, seed); err != nil {
			return nil, err
		}
		src.size, src.mean, src.std = env.size, env.mean, env.std
	} else {
		jc := s.jigsaw(env.size)
		set, err := jc.PermSet()
		if err != nil {
			return nil, err
		}
		row.N, row.Method = len(set.Perms), jc.Method
		row.AvgHamming, row.MinHamming = set.Stats()
		row.Gap, row.Norm, row.Jitter = jc.Tiles.Gap, jc.Tiles.PerTileNorm, jc.Tiles.Jitter
		row.Chance = 1 / float64(row.N)
		cfg := train.DefaultConfig("jigsaw", o.arch)
		cfg.Data, cfg.Batch, cfg.LR, cfg.Seed = o.data, o.batch, o.lr, seed
		cfg.Steps, cfg.BudgetSeconds, cfg.CheckpointEvery = o.steps, o.budget.Seconds(), 0
		if cfg.Steps > 0 {
			cfg.BudgetSeconds = 0
		}
		cfg.ValImages = lenOf(env.valSet)
		cfg.Pretext = pretext.TaskConfig(cfg.Task, env.channels, env.size)
		cfg.Pretext.NumClasses, cfg.Pretext.Mean, cfg.Pretext.Std = env.classes, env.mean, env.std
		cfg.Pretext.Jigsaw = &jc
		tr, err := train.Run(cfg, env.trainSet, env.valSet, dir, train.Options{Progress: os.Stderr})
		if err != nil {
			return nil, err
		}
		row.JigsawAcc, row.Steps, row.ImagesSeen, row.TrainSec, row.FinalLoss = tr.ValPretext, tr.Steps, tr.ImagesSeen, tr.Seconds, tr.FinalLoss
		ck, err := train.LoadCheckpoint(tr.Checkpoint)
		if err != nil {
			return nil, err
		}
		if src, err = fromCheckpoint(ck); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ablate: %w", err)
	}
	row.Model = filepath.Join(dir, "backbone.onnx")
	src.size = env.size // export at the image size, not the tile size
	if o.probeSize > 0 {
		src.size = o.probeSize
	}
	if err := src.write(row.Model, export.DefaultOptions()); err != nil {
		return nil, err
	}
	sess, err := runtime.Open(row.Model, runtime.Options{})
	if err != nil {
		return nil, err
	}
	trX, d, err := extractFeatures(sess, env.probeTr, 256, s.name+" probe train")
	if err != nil {
		sess.Close()
		return nil, err
	}
	teX, _, err := extractFeatures(sess, env.probeTe, 256, s.name+" probe test")
	sess.Close()
	if err != nil {
		return nil, err
	}
	p, err := probe(trX, env.probeTrY, teX, env.probeTeY, d, env.classes, seed)
	if err != nil {
		return nil, err
	}
	row.LinearTop1, row.LinearTop5 = p.Top1, p.Top5
	row.WallSeconds = time.Since(t0).Seconds()
	return row, nil
}

// lenOf is the length of a possibly nil dataset.
func lenOf(ds data.Dataset) int {
	if ds == nil {
		return 0
	}
	return ds.Len()
}

func mark(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func ablateHeader(w io.Writer, r *ablateResult, title string) {
	length := fmt.Sprintf("%s budget", time.Duration(r.BudgetSec*float64(time.Second)))
	if r.Steps > 0 {
		length = fmt.Sprintf("%d steps", r.Steps)
	}
	fmt.Fprintf(w, "\n%s\n\n%s on %s, batch %d images (x9 tiles), %s a row; jigsaw accuracy on %d held-out training images;\n"+
		"linear probe on frozen backbone features of whole images (%d px, resized to %d): %d training, %d test images.\n\n",
		title, r.Arch, r.Data, r.Batch, length, r.ValImages, r.ImageSize, r.ProbeSize, r.ProbeTrain, r.TestImages)
}

func printPermsTable(w io.Writer, r *ablateResult) {
	ablateHeader(w, r, "Jigsaw permutation sets (cf. Noroozi & Favaro 2016, Table 4)")
	fmt.Fprintf(w, "| permutations | method | average Hamming | minimum Hamming | jigsaw accuracy | chance | linear top-1 | steps |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		if row.RandomInit {
			fmt.Fprintf(w, "| random-init backbone | - | - | - | - | - | %.4f | 0 |\n", row.LinearTop1)
			continue
		}
		fmt.Fprintf(w, "| %d | %s | %.2f | %.0f | %.4f | %.4f | %.4f | %d |\n", row.N, row.Method, row.AvgHamming, row.MinHamming, row.JigsawAcc, row.Chance, row.LinearTop1, row.Steps)
	}
	fmt.Fprintf(w, "\nwall time %.0fs; runs and models in %s\n", r.WallSeconds, r.Out)
}

func printShortcutsTable(w io.Writer, r *ablateResult) {
	ablateHeader(w, r, "Jigsaw shortcut protections (cf. Noroozi & Favaro 2016, Table 5)")
	fmt.Fprintf(w, "| gap | per-tile normalisation | colour jitter | jigsaw accuracy | chance | linear top-1 | steps |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		if row.RandomInit {
			fmt.Fprintf(w, "| random-init backbone | | | - | - | %.4f | 0 |\n", row.LinearTop1)
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.4f | %.4f | %.4f | %d |\n", mark(row.Gap), mark(row.Norm), mark(row.Jitter), row.JigsawAcc, row.Chance, row.LinearTop1, row.Steps)
	}
	fmt.Fprintf(w, "\nwall time %.0fs; runs and models in %s\n", r.WallSeconds, r.Out)
}
