package train

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/selfsup/selfsup/data"
	progressbar "github.com/selfsup/selfsup/internal/progress"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/ops"
	"github.com/selfsup/selfsup/pretext"
)

// Options are the per-invocation settings that are not part of the
// resolved config.
type Options struct {
	// Resume continues from the newest valid checkpoint in the run
	// directory; without it an existing checkpoint is an error.
	Resume bool
	// Progress receives human-readable progress (a progress bar); nil
	// discards it.
	Progress io.Writer
	// StopAfter stops (after checkpointing) once this many steps are done
	// in total, as if killed cleanly; 0 runs to the end. For tests.
	StopAfter int
	// InitBackbone starts a fresh run from these backbone weights (with new
	// heads) instead of a random initialisation: fine-tuning.
	InitBackbone models.Weights
	// Clock is what the budget planner and the timings read; nil is
	// the clock Config.BudgetClock names. Tests inject a simulated clock.
	Clock func() time.Time
}

// Result summarises a finished run.
type Result struct {
	Dir          string  `json:"run"`
	Checkpoint   string  `json:"checkpoint"`
	Steps        int     `json:"steps"`
	ImagesSeen   int     `json:"images_seen"`
	Seconds      float64 `json:"seconds"` // as the budget clock measures it, resumes included (WallSeconds too)
	WallSeconds  float64 `json:"wall_seconds,omitempty"`
	ImagesPerSec float64 `json:"images_per_sec"`
	FinalLoss    float64 `json:"final_loss"`
	ValPretext   float64 `json:"val_pretext_acc"`
	KNNTop1      float64 `json:"knn_top1,omitempty"`
	Resumed      bool    `json:"resumed"`
}

// ErrNonFinite is wrapped by the error returned when the loss becomes NaN
// or infinite.
var ErrNonFinite = errors.New("non-finite value")

// session is a built training graph.
type session struct {
	cfg      Config
	mode     *ops.Mode
	bb       *models.Backbone
	model    pretext.Model
	params   G.Nodes
	grads    G.Nodes
	machine  G.VM
	opt      *SGD
	progress io.Writer
	now      func() time.Time
	// clock0 and wall0 start this process's training; prevSec and
	// prevWall are what the run spent before it (from the checkpoint it
	// resumed).
	clock0, wall0     time.Time
	prevSec, prevWall float64
	// copies and copyModels: Config.Streams > 1 (streams.go); the first
	// copy is bb, model, params, grads and machine above.
	copies     *Copies
	copyModels []pretext.Model
}

// spent is the run's training time so far, by its budget clock and by
// the wall clock, resumes included.
func (s *session) spent() (sec, wall float64) {
	if s.clock0.IsZero() {
		return s.prevSec, s.prevWall
	}
	return s.prevSec + s.now().Sub(s.clock0).Seconds(), s.prevWall + time.Since(s.wall0).Seconds()
}

func build(cfg Config, ck *Checkpoint, init models.Weights) (*session, error) {
	spec, err := models.New(cfg.Arch, cfg.Pretext.InputChannels())
	if err != nil {
		return nil, err
	}
	task, err := pretext.New(cfg.Task)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewSource(cfg.Seed))
	w := models.InitWeights(spec, rng)
	heads := models.Weights{}
	switch {
	case ck != nil:
		w, heads = ck.Backbone, ck.Heads
	case init != nil:
		w = init
	}
	s := &session{cfg: cfg, mode: &ops.Mode{Training: true}}
	if cfg.Streams > 1 {
		if err := s.buildCopies(cfg, task, spec, w, heads, rng); err != nil {
			s.close()
			return nil, err
		}
	} else {
		g := G.NewGraph()
		if s.bb, err = models.NewBackbone(g, spec, w, tensor.Float32, s.mode); err != nil {
			return nil, err
		}
		if s.model, err = task.Build(s.bb, cfg.Batch, cfg.Pretext, heads, rng); err != nil {
			return nil, err
		}
		s.params = append(s.bb.Learnables(), s.model.Learnables()...)
		if s.grads, err = G.Grad(s.model.Loss(), s.params...); err != nil {
			return nil, fmt.Errorf("train: gradient: %w", err)
		}
		s.machine = G.NewTapeMachine(g)
	}
	s.opt = NewSGD(cfg.Momentum, cfg.WeightDecay)
	s.opt.Nesterov = cfg.Nesterov
	if ck != nil {
		for k, v := range ck.Velocity {
			s.opt.Velocity[k] = append([]float32(nil), v.Data...)
		}
		if st, ok := s.model.(pretext.Stateful); ok {
			if err := st.SetState(ck.State); err != nil {
				return nil, fmt.Errorf("train: restoring %s state: %w", cfg.Task, err)
			}
		} else if len(ck.State) > 0 {
			return nil, fmt.Errorf("train: checkpoint holds %d state tensors but task %s keeps no state", len(ck.State), cfg.Task)
		}
	}
	return s, nil
}

// run executes the graph once on a loaded batch and returns the loss
// (with streams: every copy, the mean of their losses).
func (s *session) run() (float64, error) {
	if s.copies != nil {
		return s.runCopies()
	}
	s.machine.Reset()
	if err := s.machine.RunAll(); err != nil {
		return 0, fmt.Errorf("train: step: %w", err)
	}
	return lossValue(s.model)
}

// lossValue reads a model's loss after its graph has run.
func lossValue(m pretext.Model) (float64, error) {
	switch v := m.Loss().Value().Data().(type) {
	case float32:
		return float64(v), nil
	case float64:
		return v, nil
	}
	return 0, fmt.Errorf("train: loss has unexpected type %T", m.Loss().Value().Data())
}

func (s *session) checkpoint(step int) *Checkpoint {
	vel := models.Weights{}
	for _, p := range s.params {
		if v, ok := s.opt.Velocity[p.Name()]; ok {
			vel[p.Name()] = models.Tensor{Shape: append([]int(nil), p.Shape()...), Data: append([]float32(nil), v...)}
		}
	}
	state := models.Weights{}
	if st, ok := s.model.(pretext.Stateful); ok {
		state = st.State()
	}
	sec, wall := s.spent()
	return &Checkpoint{Config: s.cfg, Step: step, Backbone: s.bb.Weights(), Heads: s.model.HeadWeights(), Velocity: vel, State: state,
		Seconds: sec, WallSeconds: wall}
}

// stepRNG is the augmentation randomness of one step: a function of the
// seed and the step alone, so a resumed run draws exactly what an
// uninterrupted one would.
func stepRNG(seed int64, step int) *rand.Rand {
	return rand.New(rand.NewSource(seed*1_000_003 + int64(step)*7_919 + 17))
}

// epochOrder is the shuffled order of n training images in an epoch.
func epochOrder(seed int64, epoch, n int) []int {
	return rand.New(rand.NewSource(seed*31 + int64(epoch)*1_000_033 + 5)).Perm(n)
}

// heldOutIndices are the images of a batch of held-out images at idx: idx,
// twice for a pretext.Mixer (the batch is both its halves).
func heldOutIndices(model pretext.Model, idx []int) []int {
	if _, ok := model.(pretext.Mixer); ok {
		return append(append([]int(nil), idx...), idx...)
	}
	return idx
}

type prepared struct {
	batches []*pretext.Batch // one per graph copy
	err     error
}

// batchIndices returns the dataset indices of step's source images.
func batchIndices(cfg Config, n, step int) []int {
	per := n / cfg.Batch
	epoch, pos := step/per, step%per
	return epochOrder(cfg.Seed, epoch, n)[pos*cfg.Batch : (pos+1)*cfg.Batch]
}

// stepIndices returns the dataset indices of step's source images: the
// model's choice for a pretext.Reassigner, else batchIndices.
func stepIndices(cfg Config, model pretext.Model, n, step int) ([]int, error) {
	if mx, ok := model.(pretext.Mixer); ok { // the step's batch, then its labelled half
		lab, err := mx.LabelledIndices(step)
		if err == nil && len(lab) != cfg.Batch {
			err = fmt.Errorf("train: %s chose %d labelled images for step %d, expected %d", cfg.Task, len(lab), step, cfg.Batch)
		}
		return append(batchIndices(cfg, n, step), lab...), err
	}
	r, ok := model.(pretext.Reassigner)
	if !ok {
		return batchIndices(cfg, n, step), nil
	}
	idx, err := r.BatchIndices(step)
	if err == nil && len(idx) != cfg.Batch {
		err = fmt.Errorf("train: %s chose %d images for step %d, expected %d", cfg.Task, len(idx), step, cfg.Batch)
	}
	return idx, err
}

// initState runs a pretext.Initializer before the first step of a fresh
// run: the backbone's batch-norm statistics are re-estimated on training
// images (RecalibrateBN; the running statistics of a fresh network are 0/1)
// for the features it is handed, the trained weights untouched.
func (s *session) initState(in pretext.Initializer, ds data.Dataset) error {
	t0 := time.Now()
	pc := s.cfg.Pretext
	w, err := RecalibrateBN(s.bb.Spec, s.bb.Weights(), ds, RecalibOptions{Seed: s.cfg.Seed, Channels: pc.InputChannels(), Space: pc.Input, Size: pc.InputSize, Mean: pc.Mean, Std: pc.Std})
	if err != nil {
		return fmt.Errorf("train: %s state: %w", s.cfg.Task, err)
	}
	features := func(index []int) ([]float32, error) {
		return backboneFeatures(s.bb.Spec, w, pc, data.Subset(ds, index))
	}
	if err := in.InitState(features, ds.Len()); err != nil {
		return fmt.Errorf("train: %s state: %w", s.cfg.Task, err)
	}
	fmt.Fprintf(s.progress, "%s: state initialised from the backbone over %d images in %.1fs\n", s.cfg.Task, ds.Len(), time.Since(t0).Seconds())
	return nil
}

// reassignRNG is the randomness of the reassignment before step.
func reassignRNG(seed int64, step int) *rand.Rand {
	return rand.New(rand.NewSource(seed*998_244_353 + int64(step)*104_729 + 29))
}

// reassign runs a pretext.Reassigner's reassignment before step (see its
// contract) and drops the head's momentum.
func (s *session) reassign(r pretext.Reassigner, ds data.Dataset, step int) (map[string]float64, error) {
	w := s.bb.Weights()
	features := func(index []int) ([]float32, error) {
		return backboneFeatures(s.bb.Spec, w, s.cfg.Pretext, data.Subset(ds, index))
	}
	m, err := r.Reassign(features, reassignRNG(s.cfg.Seed, step))
	if err != nil {
		return nil, fmt.Errorf("train: reassignment before step %d: %w", step, err)
	}
	for _, p := range s.model.Learnables() {
		delete(s.opt.Velocity, p.Name())
	}
	return m, nil
}

func makeBatch(model pretext.Model, ds data.Dataset, idx []int, rng *rand.Rand) (*pretext.Batch, error) {
	imgs := make([]data.Image, len(idx))
	labels := make([]int, len(idx))
	for i, j := range idx {
		img, err := ds.Image(j)
		if err != nil {
			return nil, err
		}
		imgs[i], labels[i] = img, ds.Label(j)
	}
	return model.MakeBatch(imgs, labels, idx, rng)
}

// prefetch prepares the batches of steps [from, to) on workers, in order.
// Closing stop abandons the rest.
func prefetch(cfg Config, ms []pretext.Model, ds data.Dataset, from, to int, stop <-chan struct{}) <-chan chan prepared {
	type job struct {
		step int
		out  chan prepared
	}
	workers := cfg.Workers
	if workers < 1 {
		workers = 1
	}
	jobs := make(chan job)
	order := make(chan chan prepared, 2*workers)
	for w := 0; w < workers; w++ {
		go func() {
			for j := range jobs {
				idx, err := stepIndices(cfg, ms[0], ds.Len(), j.step)
				var bs []*pretext.Batch
				if err == nil {
					bs, err = makeBatches(ms, ds, idx, func(r int) *rand.Rand { return copyRNG(cfg.Seed, j.step, r, len(ms)) })
				}
				j.out <- prepared{bs, err}
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(jobs)
		for s := from; s < to; s++ {
			j := job{s, make(chan prepared, 1)}
			select {
			case order <- j.out:
			case <-stop:
				return
			}
			select {
			case jobs <- j:
			case <-stop:
				return
			}
		}
	}()
	return order
}

// Run trains cfg.Task on ds (training images) and writes checkpoints and
// metrics.jsonl to dir. val (may be nil) is held-out images for the
// pretext accuracy. A NaN or infinite loss stops the run at once with an
// error wrapping ErrNonFinite; the last good checkpoint stays on disk.
func Run(cfg Config, ds, val data.Dataset, dir string, opts Options) (*Result, error) {
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("train: run directory: %w", err)
	}
	lock, err := lockRun(dir)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	var ck *Checkpoint
	res := &Result{Dir: dir}
	existing, _ := listCheckpoints(dir)
	if opts.Resume {
		c, path, warns, err := LatestCheckpoint(dir)
		for _, w := range warns {
			fmt.Fprintf(progress, "warning: %s\n", w)
		}
		switch {
		case err == nil:
			ck, cfg = c, c.Config
			res.Resumed = true
			fmt.Fprintf(progress, "resuming from %s (step %d of %d)\n", path, c.Step, c.Config.Steps)
			if err := trimMetrics(filepath.Join(dir, "metrics.jsonl"), c.Step); err != nil {
				return nil, err
			}
		case errors.Is(err, os.ErrNotExist):
			fmt.Fprintf(progress, "no checkpoint in %s: starting afresh\n", dir)
		default:
			return nil, err
		}
		// Temporary files of a checkpoint write that was killed.
		if stale, _ := filepath.Glob(filepath.Join(dir, ".checkpoint-*.tmp*")); len(stale) > 0 {
			for _, f := range stale {
				os.Remove(f)
			}
			fmt.Fprintf(progress, "removed %d partial checkpoint files of an interrupted write\n", len(stale))
		}
	} else if len(existing) > 0 {
		return nil, fmt.Errorf("train: %s already holds checkpoints (%s); use --resume to continue or another --out", dir, filepath.Base(existing[0]))
	}
	if ck == nil {
		// A fresh start: lines a killed earlier attempt logged before its
		// first checkpoint belong to no run that exists.
		if err := freshMetrics(dir, progress); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ops.SetPrecision(cfg.ConvPrecision()); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer ops.SetPrecision(ops.Float32)
	if cfg.ConvPrecision() != ops.Float32 {
		eng, err := ops.ConvEngine()
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		fmt.Fprintf(progress, "convolutions: %s\n", eng)
		if cfg.Streams <= 1 {
			fmt.Fprintf(progress, "note: bfloat16 on one graph keeps under half its speed beside any other busy process; --streams 2 keeps most of it (BENCHMARKS.md)\n")
		}
		if _, err := ops.OneDNN3Version(); err != nil {
			fmt.Fprintf(progress, "warning: %v; bfloat16 runs on oneDNN 2 instead, slower\n", err)
		}
	}
	if cfg.Pretext.TrainImages == 0 {
		cfg.Pretext.TrainImages = ds.Len()
	} else if cfg.Pretext.TrainImages != ds.Len() {
		return nil, fmt.Errorf("train: the run was configured for %d training images, the data has %d", cfg.Pretext.TrainImages, ds.Len())
	}
	if ds.Len() < cfg.Batch {
		return nil, fmt.Errorf("train: %d training images, fewer than one batch of %d", ds.Len(), cfg.Batch)
	}
	task, err := pretext.New(cfg.Task)
	if err != nil {
		return nil, err
	}
	if task.NeedsLabels() && ds.Label(0) < 0 {
		return nil, fmt.Errorf("train: task %s needs labelled images; %s has none", cfg.Task, cfg.Data)
	}
	if a, ok := task.(pretext.ArchAdapter); ok && ck == nil {
		arch := cfg.Arch
		if cfg.Arch, err = a.Arch(arch); err != nil {
			return nil, err
		}
		if cfg.Arch != arch {
			fmt.Fprintf(progress, "%s trains %s (the form of %s it needs)\n", cfg.Task, cfg.Arch, arch)
		}
	}
	if p, ok := task.(pretext.Preparer); ok && ck == nil {
		if err := p.Prepare(&cfg.Pretext, ds); err != nil {
			return nil, err
		}
	}
	// labelled: the images with the labels the model trains on; weakVal:
	// the held-out images with those it is scored on (see Config.Weak).
	labelled, weakVal, err := weakSets(cfg, task, ds, val)
	if err != nil {
		return nil, err
	}
	s, err := build(cfg, ck, opts.InitBackbone)
	if err != nil {
		return nil, err
	}
	defer s.close()
	s.progress = progress
	if err := checkMemory(cfg, s.model.Loss().Graph(), progress); err != nil {
		return nil, err
	}
	s.now = opts.Clock
	if s.now == nil {
		s.now = time.Now
		if cfg.BudgetClock == BudgetCPU {
			s.now = CPUClock(0)
		}
	}
	now := s.now

	start := 0
	if ck != nil {
		start = ck.Step
	}
	if in, ok := s.model.(pretext.Initializer); ok && ck == nil {
		if err := s.initState(in, ds); err != nil {
			return nil, err
		}
	}
	if cfg.Steps == 0 {
		if cfg.BudgetSeconds > 0 {
			per, err := s.timeStep(labelled)
			if err != nil {
				return nil, err
			}
			cfg.Steps = int(math.Max(1, 0.9*cfg.BudgetSeconds/per.Seconds()))
			fmt.Fprintf(progress, "calibration: %.0f ms a step -> %d steps in the %.0fs budget\n", per.Seconds()*1000, cfg.Steps, cfg.BudgetSeconds)
		} else {
			cfg.Steps = cfg.Epochs * (ds.Len() / cfg.Batch)
		}
	}
	autoWarmup := cfg.WarmupSteps < 0
	if autoWarmup {
		cfg.WarmupSteps = cfg.Steps / 20
	}
	// A fresh budget run re-estimates its length from the first real steps
	// (the calibration pass above only approximates a training step).
	recalibrate := cfg.BudgetSeconds > 0 && ck == nil && cfg.Steps > 12
	s.cfg = cfg
	if err := writeJSON(filepath.Join(dir, "config.json"), cfg); err != nil {
		return nil, err
	}
	metrics, err := os.OpenFile(filepath.Join(dir, "metrics.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("train: metrics: %w", err)
	}
	defer metrics.Close()

	end := cfg.Steps
	if opts.StopAfter > 0 && opts.StopAfter < end {
		end = opts.StopAfter
	}
	stop := make(chan struct{})
	defer close(stop)
	prefetchTo := end
	if recalibrate {
		prefetchTo = 1 << 30 // the end is decided after calibration; stop abandons the rest
	}
	// A Reassigner's batches are prefetched in segments that end at its
	// reassignment points, each started once the reassignment is done.
	reassigner, _ := s.model.(pretext.Reassigner)
	var batches <-chan chan prepared
	segEnd, reassignSec := start, 0.0
	if reassigner == nil {
		batches, segEnd = prefetch(cfg, s.models(), labelled, start, prefetchTo, stop), prefetchTo
	}
	t0, wall0 := now(), time.Now()
	s.clock0, s.wall0 = t0, wall0
	if ck != nil {
		s.prevSec, s.prevWall = ck.Seconds, ck.WallSeconds
	}
	planner := newBudgetPlanner(cfg.BudgetSeconds, recalibrate, now, t0)
	bar := progressbar.New(progress, fmt.Sprintf("%s %s", cfg.Task, cfg.Arch), end-start, 0, "steps")
	setSteps := func(steps int, why string, per float64) error {
		cfg.Steps = steps
		if autoWarmup {
			cfg.WarmupSteps = cfg.Steps / 20
		}
		end = cfg.Steps
		if opts.StopAfter > 0 && opts.StopAfter < end {
			end = opts.StopAfter
		}
		s.cfg = cfg
		if err := writeJSON(filepath.Join(dir, "config.json"), cfg); err != nil {
			return err
		}
		bar.SetTotal(end - start)
		fmt.Fprintf(progress, "\n%s %.0f ms a step -> %d steps in the budget\n", why, per*1000, cfg.Steps)
		return nil
	}
	var lastLoss float64
	lastCkpt := ""
	if ck != nil {
		lastCkpt = "(the one resumed from)"
	}
	var monitor *knnMonitor
	knnEvery := cfg.KNNEvery
	if knnEvery == 0 {
		knnEvery = max(1, ds.Len()/cfg.Batch)
	}
	if cfg.KNNEvery >= 0 {
		monitor = newKNNMonitor(ds, val, cfg.KNNImages, cfg.Seed)
	}
	knn := func(done int) (float64, error) {
		acc, err := monitor.measure(s.bb.Spec, s.bb.Weights(), cfg.Pretext)
		if err != nil {
			return 0, err
		}
		fmt.Fprintf(progress, "\nstep %d: kNN top-1 %.4f (%d held-out images, %d neighbours)\n", done, acc, monitor.query.Len(), monitor.ref.Len())
		return acc, writeLine(metrics, map[string]any{"step": done, "images_seen": done * cfg.Batch, "elapsed_s": now().Sub(t0).Seconds(), "knn_top1": acc})
	}
	step := start
	var pending map[string]any // the last step's metrics, until written
	for ; step < end; step++ {
		if planner.overrun() && ck == nil {
			fmt.Fprintf(progress, "\ntime budget reached at step %d of %d: the run ends here\n", step, cfg.Steps)
			cfg.Steps, s.cfg.Steps = step, step
			break
		}
		reassignShare := func() float64 { // the reassignments' share of a step
			if reassigner == nil {
				return 0
			}
			return reassignSec / float64(reassigner.ReassignEvery())
		}
		if n, why, per, measured := planner.plan(step, cfg.Steps, end, opts.StopAfter, reassignShare); measured {
			if n > 0 {
				if err := setSteps(n, why, per); err != nil {
					return nil, err
				}
			}
			planner.newWindow(step)
			if step >= end {
				break
			}
		}
		if testStepHook != nil {
			testStepHook(step)
		}
		if reassigner != nil && step == segEnd {
			every := reassigner.ReassignEvery()
			if every < 1 {
				return nil, fmt.Errorf("train: %s reassigns every %d steps, expected >= 1", cfg.Task, every)
			}
			if step%every == 0 {
				t := now()
				rm, err := s.reassign(reassigner, ds, step)
				if err != nil {
					return nil, err
				}
				reassignSec = now().Sub(t).Seconds()
				fmt.Fprintf(progress, "\nstep %d: reassigned in %.1fs %s\n", step, reassignSec, formatFigures(rm))
			}
			segEnd = min((step/every+1)*every, prefetchTo)
			batches = prefetch(cfg, s.models(), labelled, step, segEnd, stop)
		}
		p := <-<-batches
		if p.err != nil {
			return nil, fmt.Errorf("train: batch for step %d: %w", step, p.err)
		}
		if err := s.load(p.batches); err != nil {
			return nil, err
		}
		loss, err := s.run()
		if err != nil {
			return nil, err
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return nil, fmt.Errorf("train: step %d: loss is a %w (%v); stopped without saving; last good checkpoint: %s", step, ErrNonFinite, loss, orNone(lastCkpt))
		}
		lr := CosineLR(cfg.LR, step, cfg.Steps, cfg.WarmupSteps)
		if err := s.opt.Step(s.params, s.grads, lr); err != nil {
			return nil, fmt.Errorf("train: step %d: %w; stopped without saving; last good checkpoint: %s", step, err, orNone(lastCkpt))
		}
		if s.copies != nil {
			s.copies.SyncBN()
		}
		for r, m := range s.models() { // copies in order; their images differ
			if h, ok := m.(pretext.StepHook); ok {
				if err := h.AfterStep(p.batches[r]); err != nil {
					return nil, fmt.Errorf("train: step %d: %w", step, err)
				}
			}
		}
		lastLoss = loss
		done := step + 1
		m := s.metrics()
		el := now().Sub(t0).Seconds()
		pending = map[string]any{"step": done, "epoch": float64(done*cfg.Batch) / float64(ds.Len()), "images_seen": done * cfg.Batch,
			"loss": loss, "lr": lr, "elapsed_s": el, "images_per_sec": float64((done-start)*cfg.Batch) / el}
		for k, v := range m {
			pending[k] = v
		}
		if done%max(1, cfg.LogEvery) == 0 || done == end {
			if err := writeLine(metrics, pending); err != nil {
				return nil, err
			}
			pending = nil
			bar.Set(done-start, fmt.Sprintf("loss %.4f acc %.3f", loss, m["pretext_acc"]))
		}
		if monitor != nil && done%knnEvery == 0 && done < end {
			if pending != nil {
				if err := writeLine(metrics, pending); err != nil {
					return nil, err
				}
				pending = nil
			}
			if _, err := knn(done); err != nil {
				return nil, err
			}
		}
		if cfg.CheckpointEvery > 0 && done%cfg.CheckpointEvery == 0 && done < cfg.Steps {
			if lastCkpt, err = s.save(dir, done); err != nil {
				return nil, err
			}
		}
	}
	bar.Finish()
	if pending != nil { // the run stopped (budget) between two log lines
		if err := writeLine(metrics, pending); err != nil {
			return nil, err
		}
	}
	if lastCkpt, err = s.save(dir, step); err != nil {
		return nil, err
	}
	el := now().Sub(t0).Seconds()
	res.Checkpoint, res.Steps, res.ImagesSeen, res.FinalLoss = lastCkpt, step, step*cfg.Batch, lastLoss
	res.Seconds, res.WallSeconds = s.spent()
	if el > 0 {
		res.ImagesPerSec = float64((step-start)*cfg.Batch) / el
	}
	if monitor != nil && step == cfg.Steps {
		if res.KNNTop1, err = knn(step); err != nil {
			return nil, err
		}
	}
	if val != nil && val.Len() >= cfg.Batch && step == cfg.Steps {
		acc, err := s.evaluate(weakVal)
		if err != nil {
			return nil, err
		}
		res.ValPretext = acc
		if err := writeLine(metrics, map[string]any{"step": step, "val_pretext_acc": acc}); err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "held-out pretext accuracy: %.4f on %d images\n", acc, (val.Len()/cfg.Batch)*cfg.Batch)
	}
	return res, nil
}

// formatFigures prints named figures in name order.
func formatFigures(m map[string]float64) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s %.4g", k, m[k])
	}
	return b.String()
}

// testStepHook, when set (by tests only), runs before every training step
// (and with step -1 before the timed pass of the budget calibration).
var testStepHook func(step int)

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// save writes a checkpoint for step and prunes old periodic ones.
func (s *session) save(dir string, step int) (string, error) {
	path := filepath.Join(dir, checkpointName(step))
	if err := s.checkpoint(step).Save(path); err != nil {
		return "", err
	}
	files, err := listCheckpoints(dir)
	if err == nil {
		keep := s.cfg.KeepCheckpoints
		if keep < 1 {
			keep = 1
		}
		for i, f := range files {
			if i >= keep {
				os.Remove(f)
			}
		}
	}
	return path, nil
}

// timeStep times one forward and backward pass (in inference mode, so the
// running statistics are untouched, and without an update).
func (s *session) timeStep(ds data.Dataset) (time.Duration, error) {
	idx, err := stepIndices(s.cfg, s.model, ds.Len(), 0)
	if err != nil {
		return 0, err
	}
	bs, err := makeBatches(s.models(), ds, idx, func(r int) *rand.Rand { return copyRNG(s.cfg.Seed, 0, r, len(s.models())) })
	if err != nil {
		return 0, err
	}
	if err := s.load(bs); err != nil {
		return 0, err
	}
	s.mode.Training = false
	defer func() { s.mode.Training = true }()
	if _, err := s.run(); err != nil { // warm-up
		return 0, err
	}
	t := s.now()
	if testStepHook != nil {
		testStepHook(-1)
	}
	if _, err := s.run(); err != nil {
		return 0, err
	}
	return s.now().Sub(t), nil
}

// evaluate returns the mean pretext accuracy over full batches of val, in
// inference mode (batch statistics for a pretext.BatchStatsEvaluator that
// asks for them), with a fixed seed.
func (s *session) evaluate(val data.Dataset) (float64, error) {
	s.mode.Training = false
	if e, ok := s.model.(pretext.BatchStatsEvaluator); ok && e.EvalBatchStats() {
		s.mode.BatchStats = true
	}
	defer func() { s.mode.Training, s.mode.BatchStats = true, false }()
	n := val.Len() / s.cfg.Batch
	var sum float64
	for i := 0; i < n; i++ {
		idx := make([]int, s.cfg.Batch)
		for j := range idx {
			idx[j] = i*s.cfg.Batch + j
		}
		bs, err := makeBatches(s.models(), val, heldOutIndices(s.model, idx), func(r int) *rand.Rand { return copyRNG(s.cfg.Seed+99, i, r, len(s.models())) })
		if err != nil {
			return 0, err
		}
		if err := s.load(bs); err != nil {
			return 0, err
		}
		if _, err := s.run(); err != nil {
			return 0, err
		}
		sum += s.metrics()["pretext_acc"]
	}
	return sum / float64(n), nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, append(b, '\n'))
}

func writeLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// trimMetrics drops the metric lines of steps after step (logged by a run
// that was killed before its next checkpoint), so that a resumed run's log
// reads as if it had never stopped.
func trimMetrics(path string, step int) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("train: metrics: %w", err)
	}
	var keep []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var rec struct {
			Step *int `json:"step"`
		}
		if json.Unmarshal(line, &rec) != nil || rec.Step == nil || *rec.Step > step {
			continue // a torn last line, or a step redone after resuming
		}
		keep = append(append(keep, line...), '\n')
	}
	return writeAtomic(path, keep)
}
