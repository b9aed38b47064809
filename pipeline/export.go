package pipeline

import (
	"fmt"
	"io"
	"math/rand"
	"strings"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/pretext"
	"github.com/selfsup/selfsup/train"
)

// Backbone is a backbone ready to be exported: its architecture, weights
// and what goes into the ONNX metadata (task, input size, normalisation,
// config hash).
type Backbone struct {
	Spec      *models.Spec
	Weights   models.Weights
	Task      string
	Size      int
	Mean, Std []float32
	Hash      string
	// BNRecalibrated records that Recalibrate re-estimated the batch-norm
	// statistics; the model's metadata says so.
	BNRecalibrated bool
	// Space is the input space (data.SpaceLabL for colorization
	// backbones, data.SpaceLab for split-brain ones; "" the images'
	// channels), recorded in the metadata.
	Space string
	// Quantize, when set (SetQuantize), makes Export write an int8 QDQ
	// model calibrated on its images.
	Quantize *QuantizeConfig
}

// BackboneSource says where a backbone comes from: exactly one of Run (its
// newest valid checkpoint), Checkpoint (a file) or RandomInit (Arch with
// Channels input channels, weights drawn from Seed).
type BackboneSource struct {
	Run, Checkpoint string
	RandomInit      bool
	Arch            string
	Channels        int
	Seed            int64
}

// OpenBackbone loads the backbone src names; warnings about unreadable
// checkpoints of a run go to log.
func OpenBackbone(src BackboneSource, log io.Writer) (*Backbone, error) {
	n := 0
	for _, b := range []bool{src.Run != "", src.Checkpoint != "", src.RandomInit} {
		if b {
			n++
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("export: give exactly one of --run, --checkpoint, --random-init")
	}
	if src.RandomInit {
		if src.Arch == "" {
			return nil, fmt.Errorf("export: --random-init needs --arch")
		}
		return RandomBackbone(src.Arch, src.Channels, src.Seed)
	}
	var ck *train.Checkpoint
	var err error
	if src.Run != "" {
		ck, _, err = LatestCheckpoint(src.Run, log)
	} else {
		ck, err = train.LoadCheckpoint(src.Checkpoint)
	}
	if err != nil {
		return nil, err
	}
	return BackboneFromCheckpoint(ck)
}

// RandomBackbone is an untrained arch backbone, weights drawn from seed
// exactly as training draws its initial weights from the run's seed, with
// the default normalisation of its input size. A split architecture
// (models.IsSplit) sees the images in data.SpaceLab, as split-brain
// training feeds it: its halves get L and ab.
func RandomBackbone(arch string, channels int, seed int64) (*Backbone, error) {
	spec, err := models.New(arch, channels)
	if err != nil {
		return nil, err
	}
	cfg := pretext.DefaultConfig(channels, spec.InputSize)
	b := &Backbone{Spec: spec, Weights: models.InitWeights(spec, rand.New(rand.NewSource(seed))), Task: "random-init",
		Size: spec.InputSize, Mean: cfg.Mean, Std: cfg.Std}
	if models.IsSplit(arch) {
		if channels != 3 {
			return nil, fmt.Errorf("export: %s sees Lab images (3 channels: L for one half, ab for the other), got %d channels", arch, channels)
		}
		b.Space = data.SpaceLab
	}
	return b, nil
}

// BackboneFromCheckpoint is the backbone of a training checkpoint.
func BackboneFromCheckpoint(ck *train.Checkpoint) (*Backbone, error) {
	cfg := ck.Config
	spec, err := models.New(cfg.Arch, cfg.Pretext.InputChannels())
	if err != nil {
		return nil, err
	}
	return &Backbone{Spec: spec, Weights: ck.Backbone, Task: cfg.Task, Size: cfg.Pretext.InputSize,
		Mean: cfg.Pretext.Mean, Std: cfg.Pretext.Std, Hash: cfg.Hash(), Space: cfg.Pretext.Input}, nil
}

// Export writes the backbone as an ONNX model at path (opts.InputSize and
// opts.Metadata are set from the backbone); with b.Quantize, its int8 QDQ
// form (see SetQuantize).
func (b *Backbone) Export(path string, opts export.Options) error {
	opts.InputSize = b.Size
	opts.Metadata = export.Metadata(b.Spec.Arch, b.Task, b.Size, b.Mean, b.Std, b.Hash, Version)
	if b.BNRecalibrated {
		opts.Metadata[export.KeyBNRecalibrated] = "true"
	}
	if b.Space != "" {
		opts.Metadata[export.KeyInputSpace] = b.Space
	}
	m, err := export.Build(b.Spec, b.Weights, opts)
	if err != nil {
		return err
	}
	if b.Quantize != nil {
		if !opts.FoldBN {
			return fmt.Errorf("export: --quantize needs the batch norms folded into the convolutions (leave --fold-bn on)")
		}
		return b.exportInt8(path, m)
	}
	return export.Write(path, m)
}

// Recalibrate re-estimates the running statistics of the backbone's batch
// norms on up to n images of ds (train.RecalibrateBN), preprocessed as
// extraction will (b's size, mean and std); the learned weights are kept.
// A random-init backbone has no training data: it first takes its mean
// and std from ds, as a trained run does from its own data.
func (b *Backbone) Recalibrate(ds data.Dataset, n int, seed int64) error {
	if b.Task == "random-init" {
		mean, std, err := data.SpaceStats(ds, b.Space, data.StatsImages)
		if err != nil {
			return err
		}
		b.Mean, b.Std = mean, std
	}
	w, err := train.RecalibrateBN(b.Spec, b.Weights, ds, train.RecalibOptions{Images: n, Seed: seed, Channels: b.Spec.InC, Space: b.Space, Size: b.Size, Mean: b.Mean, Std: b.Std})
	if err != nil {
		return err
	}
	b.Weights, b.BNRecalibrated = w, true
	return nil
}

// RecalibrateOn is Recalibrate on up to n images of a dataset spec's split
// (see data.Open), with a note to log.
func (b *Backbone) RecalibrateOn(spec, split string, n int, seed int64, log io.Writer) error {
	_, dc, err := data.SpaceChannels(b.Space, b.Spec.InC)
	if err != nil {
		return err
	}
	ds, err := data.Open(spec, split, data.OpenOptions{Channels: dc, Log: log})
	if err != nil {
		return err
	}
	if err := b.Recalibrate(ds, n, seed); err != nil {
		return err
	}
	if n <= 0 {
		n = 4096
	}
	fmt.Fprintf(logTo(log), "batch-norm statistics re-estimated on %d images of %s\n", min(n, ds.Len()), spec)
	return nil
}

// ExportOptions are the export options for the CLI's --outputs (a comma
// list, or "all": export.AllOutputs), --fold-bn and --dynamic-hw.
func ExportOptions(spec *models.Spec, outputs string, foldBN, dynamicHW bool, log io.Writer) export.Options {
	opts := export.DefaultOptions()
	opts.Outputs = strings.Split(outputs, ",")
	if outputs == "all" {
		opts.Outputs = export.AllOutputs(spec, dynamicHW)
		if dynamicHW {
			fmt.Fprintf(logTo(log), "note: --dynamic-hw: no pooled stage outputs (stageN_pool need a fixed input size)\n")
		}
	}
	opts.FoldBN, opts.DynamicHW = foldBN, dynamicHW
	return opts
}

// LatestCheckpoint is train.LatestCheckpoint with its warnings (checkpoints
// skipped as unreadable) written to log.
func LatestCheckpoint(run string, log io.Writer) (*train.Checkpoint, string, error) {
	ck, path, warns, err := train.LatestCheckpoint(run)
	for _, w := range warns {
		fmt.Fprintf(logTo(log), "warning: %s\n", w)
	}
	return ck, path, err
}

// ExportRun writes the newest valid checkpoint of run as an ONNX model at
// path (default export options) and returns the checkpoint.
func ExportRun(run, path string, log io.Writer) (*train.Checkpoint, error) {
	ck, ckPath, err := LatestCheckpoint(run, log)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", run, err)
	}
	b, err := BackboneFromCheckpoint(ck)
	if err != nil {
		return nil, err
	}
	if err := b.Export(path, export.DefaultOptions()); err != nil {
		return nil, err
	}
	fmt.Fprintf(logTo(log), "exported %s (%s, step %d) -> %s\n", ckPath, ck.Config.Task, ck.Step, path)
	return ck, nil
}
