package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/ops"
	"github.com/selfsup/selfsup/pretext"
)

// Config is a training run's resolved configuration. It is stored in every
// checkpoint's metadata (key "selfsup.config") and hashed into the exported
// model's metadata.
type Config struct {
	Task string `json:"task"`
	Arch string `json:"arch"`
	// Data describes where the images came from (informational).
	Data string `json:"data"`
	// Epochs over the training images; ignored when Steps is set.
	Epochs int `json:"epochs"`
	// Steps is the total number of optimiser steps. Zero means: derive it
	// from Epochs, or from BudgetSeconds by timing a step.
	Steps int `json:"steps"`
	// BudgetSeconds bounds the time of the training loop (0: none), as
	// BudgetClock measures it.
	BudgetSeconds float64 `json:"budget_seconds"`
	// BudgetClock is BudgetWall ("" too) or BudgetCPU.
	BudgetClock string `json:"budget_clock,omitempty"`
	// Batch is the number of source images per step (a task may turn each
	// into several views).
	Batch int `json:"batch"`
	// LR is the peak learning rate after warm-up (default 0.1 * Batch/256
	// scaled up for small batches: 0.05).
	LR       float64 `json:"lr"`
	Momentum float64 `json:"momentum"`
	// Nesterov uses Nesterov's momentum (Sutskever et al. 2013, as
	// PyTorch's SGD(nesterov=True)).
	Nesterov    bool    `json:"nesterov,omitempty"`
	WeightDecay float64 `json:"weight_decay"`
	// WarmupSteps of linear warm-up; -1 means 5% of Steps.
	WarmupSteps int   `json:"warmup_steps"`
	Seed        int64 `json:"seed"`
	// CheckpointEvery writes a checkpoint every this many steps (0: only at
	// the end).
	CheckpointEvery int `json:"checkpoint_every"`
	// KeepCheckpoints is how many periodic checkpoints to keep (default 3).
	KeepCheckpoints int `json:"keep_checkpoints"`
	// Streams > 1 splits every batch over that many copies of the graph,
	// each on a oneDNN stream of one thread, run at the same time
	// (data-parallel; batch norm sees each copy's share, and the running
	// statistics are averaged after every step; PIRL's and NPID's copies
	// share one memory bank). It keeps its speed beside other load far
	// better than one graph over all cores (BENCHMARKS.md, "Two streams").
	// DeepCluster and the semi-supervised tasks do not support it yet.
	Streams int `json:"streams,omitempty"`
	// Precision of the convolutions: "" or "float32" (the default), or
	// "bf16": bfloat16 inputs with float32 accumulation and outputs, the
	// weights, batch norm and optimiser in float32 (ops.BFloat16; faster on
	// CPUs with AMX or AVX-512 BF16). A resumed run keeps its own.
	Precision string `json:"precision,omitempty"`
	// Workers prepare batches ahead of the compute (default 2).
	Workers int `json:"workers"`
	// LogEvery writes a metrics line every this many steps (default 10).
	LogEvery int `json:"log_every"`
	// ValImages held out from training for the pretext accuracy.
	ValImages int `json:"val_images"`
	// KNNEvery measures the kNN accuracy of the backbone's features on the
	// held-out images every this many steps (0: once an epoch; -1: never),
	// and at the end, when the images have labels; KNNImages training
	// images (class-balanced) are the neighbours (default 5000).
	KNNEvery  int `json:"knn_every"`
	KNNImages int `json:"knn_images"`
	// Weak, when set, trains on weak labels instead of the data's (coarse
	// or noisy; see data.WeakLabels): only for tasks trained on labels.
	// Held-out images are scored on the coarse classes without flips, and
	// the kNN monitor keeps the fine labels.
	Weak *data.WeakLabels `json:"weak,omitempty"`
	// Labels is the --labels value the labelled training images were
	// chosen by (data.LabelledSubset; informational: the supervised task's
	// training set is those images, a semi-supervised task's subset is in
	// Pretext.Semi).
	Labels  string         `json:"labels,omitempty"`
	Pretext pretext.Config `json:"pretext"`
}

// DefaultConfig returns the defaults for a task and architecture: the
// task's recipe (pretext.RecipeFor) for batch, learning rate, momentum,
// Nesterov and weight decay.
func DefaultConfig(task, arch string) Config {
	r := pretext.RecipeFor(task)
	return Config{
		Task: task, Arch: arch, Epochs: 1, Batch: r.Batch, LR: r.LR, Momentum: r.Momentum, Nesterov: r.Nesterov,
		WeightDecay: r.WeightDecay, WarmupSteps: -1, Seed: 1, CheckpointEvery: 200,
		KeepCheckpoints: 3, Workers: 2, LogEvery: 10, ValImages: 1024, KNNImages: 5000,
	}
}

// Validate checks the ranges of the settings.
func (c *Config) Validate() error {
	switch {
	case c.Batch < 1:
		return fmt.Errorf("train: batch must be >= 1, got %d", c.Batch)
	case c.LR <= 0:
		return fmt.Errorf("train: learning rate must be > 0, got %g", c.LR)
	case c.Momentum < 0 || c.Momentum >= 1:
		return fmt.Errorf("train: momentum must be in [0, 1), got %g", c.Momentum)
	case c.WeightDecay < 0:
		return fmt.Errorf("train: weight decay must be >= 0, got %g", c.WeightDecay)
	case c.Steps == 0 && c.Epochs < 1 && c.BudgetSeconds <= 0:
		return fmt.Errorf("train: give epochs, steps or a time budget")
	case checkBudgetClock(c.BudgetClock) != nil:
		return checkBudgetClock(c.BudgetClock)
	case c.Streams > 1 && c.Batch%c.Streams != 0:
		return fmt.Errorf("train: batch %d does not split into %d streams", c.Batch, c.Streams)
	case c.Precision != "" && checkPrecision(c.Precision) != nil:
		return checkPrecision(c.Precision)
	case c.Pretext.Channels != 1 && c.Pretext.Channels != 3:
		return fmt.Errorf("train: images must have 1 or 3 channels, got %d", c.Pretext.Channels)
	case c.Pretext.InputSize < 8:
		return fmt.Errorf("train: input size must be >= 8 pixels, got %d", c.Pretext.InputSize)
	}
	return nil
}

func checkPrecision(s string) error {
	_, err := ops.ParsePrecision(s)
	return err
}

// ConvPrecision is the convolutions' precision (Precision parsed;
// float32 when empty).
func (c *Config) ConvPrecision() ops.Precision {
	p, _ := ops.ParsePrecision(c.Precision)
	return p
}

// Hash is a short digest of the JSON config, for the ONNX metadata.
func (c *Config) Hash() string {
	b, _ := json.Marshal(c)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}
