package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/pretext"
	"github.com/selfsup/selfsup/train"
)

// PermRows parses the --rows of jigsaw-perms: comma-separated N:METHOD.
func PermRows(spec string) ([]AblateSpec, error) {
	var rows []AblateSpec
	for _, f := range strings.Split(spec, ",") {
		ns, method, ok := strings.Cut(strings.TrimSpace(f), ":")
		n, err := strconv.Atoi(ns)
		if !ok || err != nil {
			return nil, fmt.Errorf("ablate: --rows entry %q: expected N:METHOD, e.g. 100:maxavg", f)
		}
		if n < 2 || n > pretext.PermSetMaxN || !slices.Contains(pretext.PermSetMethods(), method) {
			return nil, fmt.Errorf("ablate: --rows entry %q: N must be in [2, %d] and METHOD one of %v", f, pretext.PermSetMaxN, pretext.PermSetMethods())
		}
		rows = append(rows, AblateSpec{Name: fmt.Sprintf("n%d-%s", n, method), N: n, Method: method, Gap: true, Norm: true, Jitter: true})
	}
	return rows, nil
}

// ShortcutRows are Table 5's rows: each protection off in turn, then all
// on, with n maxavg permutations.
func ShortcutRows(n int) []AblateSpec {
	m := pretext.PermMethodMaxAvg
	return []AblateSpec{
		{Name: "no-gap", N: n, Method: m, Gap: false, Norm: true, Jitter: true},
		{Name: "no-norm", N: n, Method: m, Gap: true, Norm: false, Jitter: true},
		{Name: "no-jitter", N: n, Method: m, Gap: true, Norm: true, Jitter: false},
		{Name: "all-on", N: n, Method: m, Gap: true, Norm: true, Jitter: true},
	}
}

// AblateSpec is one row to train: a jigsaw config.
type AblateSpec struct {
	Name              string
	N                 int    // permutations
	Method            string // permutation-set method
	Gap, Norm, Jitter bool   // the tile protections: gaps, per-tile normalisation, colour jitter
	RandomInit        bool   // the untrained-backbone reference row
}

func (s AblateSpec) jigsaw(imageSize int) pretext.JigsawConfig {
	j := pretext.DefaultJigsawConfig(imageSize)
	j.N, j.Method = s.N, s.Method
	j.Tiles.Gap, j.Tiles.PerTileNorm, j.Tiles.Jitter = s.Gap, s.Norm, s.Jitter
	return j
}

// AblateRow is one measured row.
type AblateRow struct {
	Name       string  `json:"name"`
	N          int     `json:"n,omitempty"`
	Method     string  `json:"method,omitempty"`
	AvgHamming float64 `json:"avg_hamming,omitempty"`
	MinHamming float64 `json:"min_hamming,omitempty"`
	Gap        bool    `json:"gap"`
	Norm       bool    `json:"per_tile_norm"`
	Jitter     bool    `json:"jitter"`
	RandomInit bool    `json:"random_init,omitempty"`
	JigsawAcc  float64 `json:"jigsaw_acc"`
	Chance     float64 `json:"chance,omitempty"`
	// LinearTop1 and LinearTop5 are the test figures of the linear probe
	// on LinearLayer, the output (pooled stage or features) with the best
	// validation top-1; the exported backbone's batch-norm statistics are
	// re-estimated on whole training images first.
	LinearTop1  float64 `json:"linear_top1"`
	LinearTop5  float64 `json:"linear_top5"`
	LinearLayer string  `json:"linear_layer"`
	Steps       int     `json:"steps"`
	ImagesSeen  int     `json:"images_seen"`
	TrainSec    float64 `json:"train_seconds"`
	FinalLoss   float64 `json:"final_loss,omitempty"`
	Model       string  `json:"model"`
	WallSeconds float64 `json:"wall_seconds"`
}

// AblateResult is the --json output of an ablation.
type AblateResult struct {
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
	Rows        []AblateRow `json:"rows"`
	Out         string      `json:"out"`
	WallSeconds float64     `json:"wall_seconds"`
}

// AblateConfig are the flags every ablation shares.
type AblateConfig struct {
	Data, Arch, Out string
	Budget          time.Duration // pretraining time budget of every row
	BudgetClock     string        // what Budget measures (train.BudgetWall or train.BudgetCPU; "": wall)
	Steps           int           // train every row for exactly this many steps instead (0: Budget)
	Batch           int           // source images per step
	ProbeTrain      int           // training images of the linear probe (class-balanced; 0: all)
	ProbeTest       int           // test images of the linear probe (class-balanced; 0: all)
	ValImages       int           // training images held out for the jigsaw accuracy
	ProbeSize       int           // side the probe's images are resized to (0: the dataset's)
	LR              float64
	Seed            int64
	NoBaseline      bool // skip the random-init backbone row
	// CheckpointEvery is each row's checkpoint interval in steps, so that
	// a killed row resumes where it stopped (0: rowCheckpointEvery).
	CheckpointEvery int
	Log             io.Writer
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

func loadAblateEnv(o AblateConfig) (*ablateEnv, error) {
	spec, seed := o.Data, o.Seed
	t0 := time.Now()
	ds, err := data.Load(spec, "train", data.OpenOptions{Log: o.Log})
	if err != nil {
		return nil, err
	}
	test, err := data.Load(spec, "test", data.OpenOptions{Log: o.Log})
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
	if e.mean, e.std, err = data.ChannelStats(ds, data.StatsImages); err != nil {
		return nil, err
	}
	e.trainSet = ds
	if v := o.ValImages; v > 0 && ds.Len() > 2*v {
		tr, va := data.Split(ds.Len(), float64(v)/float64(ds.Len()), seed)
		e.trainSet, e.valSet = data.Subset(ds, tr), data.Subset(ds, va)
	}
	e.probeTr, e.probeTe = ds, test
	if n := o.ProbeTrain; n > 0 && n < ds.Len() {
		e.probeTr = data.Subset(ds, data.BalancedSubset(ds, n, seed))
	}
	if n := o.ProbeTest; n > 0 && n < test.Len() {
		e.probeTe = data.Subset(test, data.BalancedSubset(test, n, seed))
	}
	e.probeTrY, e.probeTeY = data.Labels(e.probeTr), data.Labels(e.probeTe)
	if e.classes == 0 {
		e.classes = eval.NumClasses(e.probeTrY, e.probeTeY)
	}
	fmt.Fprintf(logTo(o.Log), "loaded %s: %d train (%d for pretraining), %d test images, %dx%dx%d, in %.1fs\n",
		spec, ds.Len(), e.trainSet.Len(), test.Len(), first.C, first.H, first.W, time.Since(t0).Seconds())
	return e, nil
}

// Ablate loads the data once, then trains, exports and probes every row
// (plus, unless NoBaseline, an untrained backbone) in a fresh folder
// <Out>/<name>-<time>.
func Ablate(ctx context.Context, o AblateConfig, name string, specs []AblateSpec) (*AblateResult, error) {
	t0 := time.Now()
	env, err := loadAblateEnv(o)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(o.Out, name+"-"+time.Now().UTC().Format("20060102-150405"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ablate: %w", err)
	}
	res := &AblateResult{Ablation: name, Data: o.Data, Arch: o.Arch, BudgetSec: o.Budget.Seconds(), Steps: o.Steps, Batch: o.Batch,
		ImageSize: env.size, ProbeSize: env.size, ProbeTrain: env.probeTr.Len(), TestImages: env.probeTe.Len(), ValImages: data.Len(env.valSet), Out: dir}
	if o.ProbeSize > 0 {
		res.ProbeSize = o.ProbeSize
	}
	if !o.NoBaseline {
		specs = append(specs, AblateSpec{Name: "random-init", RandomInit: true})
	}
	for i, s := range specs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fmt.Fprintf(logTo(o.Log), "== %s row %d/%d: %s\n", name, i+1, len(specs), s.Name)
		row, err := ablateOne(o, env, s, filepath.Join(dir, s.Name))
		if err != nil {
			return nil, fmt.Errorf("ablate: row %s: %w", s.Name, err)
		}
		res.Rows = append(res.Rows, *row)
		fmt.Fprintf(logTo(o.Log), "%s: jigsaw accuracy %.4f, linear top-1 %.4f (%.0fs)\n", s.Name, row.JigsawAcc, row.LinearTop1, row.WallSeconds)
	}
	res.WallSeconds = time.Since(t0).Seconds()
	return res, nil
}

// ablateOne pretrains one row, exports its backbone at the dataset's image
// size (the ResNets are fully convolutional with global pooling, so the
// tile-trained backbone runs on whole images), extracts features with ONNX
// Runtime and fits the linear probe.
func ablateOne(o AblateConfig, env *ablateEnv, s AblateSpec, dir string) (*AblateRow, error) {
	t0 := time.Now()
	seed := o.Seed
	row := &AblateRow{Name: s.Name, RandomInit: s.RandomInit}
	var src *Backbone
	if s.RandomInit {
		var err error
		// The weights every trained row started from (train draws them
		// first from the run's seed).
		if src, err = RandomBackbone(o.Arch, env.channels, seed); err != nil {
			return nil, err
		}
		src.Size, src.Mean, src.Std = env.size, env.mean, env.std
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
		cfg := train.DefaultConfig("jigsaw", o.Arch)
		cfg.Data, cfg.Seed = o.Data, seed
		if o.Batch > 0 {
			cfg.Batch = o.Batch
		}
		if o.LR > 0 {
			cfg.LR = o.LR
		}
		cfg.Steps, cfg.BudgetSeconds, cfg.BudgetClock, cfg.CheckpointEvery = o.Steps, o.Budget.Seconds(), o.BudgetClock, o.CheckpointEvery
		if cfg.CheckpointEvery <= 0 {
			cfg.CheckpointEvery = rowCheckpointEvery
		}
		if cfg.Steps > 0 {
			cfg.BudgetSeconds = 0
		}
		cfg.ValImages = data.Len(env.valSet)
		cfg.Pretext = pretext.TaskConfig(cfg.Task, env.channels, env.size)
		cfg.Pretext.NumClasses, cfg.Pretext.Mean, cfg.Pretext.Std = env.classes, env.mean, env.std
		cfg.Pretext.Jigsaw = &jc
		tr, err := train.Run(cfg, env.trainSet, env.valSet, dir, train.Options{Resume: true, Progress: logTo(o.Log)})
		if err != nil {
			return nil, err
		}
		row.JigsawAcc, row.Steps, row.ImagesSeen, row.TrainSec, row.FinalLoss = tr.ValPretext, tr.Steps, tr.ImagesSeen, tr.Seconds, tr.FinalLoss
		ck, err := train.LoadCheckpoint(tr.Checkpoint)
		if err != nil {
			return nil, err
		}
		if src, err = BackboneFromCheckpoint(ck); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ablate: %w", err)
	}
	row.Model = filepath.Join(dir, "backbone.onnx")
	src.Size = env.size // export at the image size, not the tile size
	if o.ProbeSize > 0 {
		src.Size = o.ProbeSize
	}
	if err := src.Recalibrate(env.trainSet, 0, seed); err != nil {
		return nil, err
	}
	layers, opts, err := pooledLayers(src, "best")
	if err != nil {
		return nil, err
	}
	if err := src.Export(row.Model, opts); err != nil {
		return nil, err
	}
	p, err := probeModel(row.Model, layers, env.probeTr, env.probeTe, seed, o.Log)
	if err != nil {
		return nil, err
	}
	row.LinearTop1, row.LinearTop5, row.LinearLayer = p.Top1, p.Top5, p.Layer
	row.WallSeconds = time.Since(t0).Seconds()
	return row, nil
}

func mark(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func ablateHeader(w io.Writer, r *AblateResult, title string) {
	length := fmt.Sprintf("%s budget", time.Duration(r.BudgetSec*float64(time.Second)))
	if r.Steps > 0 {
		length = fmt.Sprintf("%d steps", r.Steps)
	}
	fmt.Fprintf(w, "\n%s\n\n%s on %s, batch %d images (x9 tiles), %s a row; jigsaw accuracy on %d held-out training images;\n"+
		"linear probe on frozen backbone features of whole images (%d px, resized to %d; batch-norm statistics re-estimated on training images; "+
		"the layer, a pooled stage or features, chosen on a validation split): %d training, %d test images.\n\n",
		title, r.Arch, r.Data, r.Batch, length, r.ValImages, r.ImageSize, r.ProbeSize, r.ProbeTrain, r.TestImages)
}

// WritePermsTable writes the jigsaw-perms ablation as a Markdown table
// shaped like Noroozi & Favaro 2016, Table 4.
func WritePermsTable(w io.Writer, r *AblateResult) {
	ablateHeader(w, r, "Jigsaw permutation sets (cf. Noroozi & Favaro 2016, Table 4)")
	fmt.Fprintf(w, "| permutations | method | average Hamming | minimum Hamming | jigsaw accuracy | chance | linear top-1 | layer | steps |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		if row.RandomInit {
			fmt.Fprintf(w, "| random-init backbone | - | - | - | - | - | %.4f | %s | 0 |\n", row.LinearTop1, row.LinearLayer)
			continue
		}
		fmt.Fprintf(w, "| %d | %s | %.2f | %.0f | %.4f | %.4f | %.4f | %s | %d |\n", row.N, row.Method, row.AvgHamming, row.MinHamming, row.JigsawAcc, row.Chance, row.LinearTop1, row.LinearLayer, row.Steps)
	}
	fmt.Fprintf(w, "\nwall time %.0fs; runs and models in %s\n", r.WallSeconds, r.Out)
}

// WriteShortcutsTable writes the jigsaw-shortcuts ablation as a Markdown
// table shaped like Noroozi & Favaro 2016, Table 5.
func WriteShortcutsTable(w io.Writer, r *AblateResult) {
	ablateHeader(w, r, "Jigsaw shortcut protections (cf. Noroozi & Favaro 2016, Table 5)")
	fmt.Fprintf(w, "| gap | per-tile normalisation | colour jitter | jigsaw accuracy | chance | linear top-1 | layer | steps |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		if row.RandomInit {
			fmt.Fprintf(w, "| random-init backbone | | | - | - | %.4f | %s | 0 |\n", row.LinearTop1, row.LinearLayer)
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.4f | %.4f | %.4f | %s | %d |\n", mark(row.Gap), mark(row.Norm), mark(row.Jitter), row.JigsawAcc, row.Chance, row.LinearTop1, row.LinearLayer, row.Steps)
	}
	fmt.Fprintf(w, "\nwall time %.0fs; runs and models in %s\n", r.WallSeconds, r.Out)
}
