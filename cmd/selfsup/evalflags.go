package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/pipeline"
)

func featureFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "model", Usage: "ONNX model to extract features with (with --data)"},
		&cli.StringFlag{Name: "data", Usage: "labelled images (with --model or --raw-pixels): fashion-mnist, mnist, folder or .tar"},
		&cli.BoolFlag{Name: "raw-pixels", Usage: "baseline: use the images' pixels, normalised per channel with the training split's mean and std, as features (with --data, no --model)"},
		&cli.IntFlag{Name: "size", Usage: "with --raw-pixels: resize images to SIZE x SIZE first (0: as stored)"},
		&cli.StringFlag{Name: "train-split", Value: "train"},
		&cli.StringFlag{Name: "test-split", Value: "test"},
		&cli.IntFlag{Name: "max-train", Usage: "use at most this many training images (a class-balanced random subset; 0: all)"},
		&cli.StringFlag{Name: "train-features", Usage: "precomputed training features .npy (labels in <name>_labels.npy)"},
		&cli.StringFlag{Name: "test-features", Usage: "precomputed test features .npy (labels in <name>_labels.npy)"},
		&cli.BoolFlag{Name: "skip-bad", Usage: "skip images that fail to decode"},
		&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed for subsets and the validation split"},
		jsonFlag,
	}, runtimeFlags()...)
}

func probeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "svm", Usage: "one-vs-rest linear SVM (squared hinge, cost C chosen on the validation split; the VOC07 protocol) instead of logistic regression"},
		&cli.Float64Flag{Name: "positive-weight", Value: 1, Usage: "with --svm: weight of each class's positives (Goyal et al. use 2 on VOC07)"},
	}
}

// probeConfig reads --svm, --positive-weight and --seed.
func probeConfig(c *cli.Context) (eval.ProbeConfig, error) {
	cfg := eval.DefaultProbeConfig()
	cfg.Seed = c.Int64("seed")
	if c.Bool("svm") {
		cfg.Classifier = eval.ClassifierSVM
	}
	cfg.PositiveWeight = c.Float64("positive-weight")
	if !(cfg.PositiveWeight > 0) {
		return cfg, fmt.Errorf("eval: --positive-weight %v, want a value > 0", cfg.PositiveWeight)
	}
	return cfg, nil
}

// lowShotConfig reads --fractions and --seeds on top of probeConfig.
func lowShotConfig(c *cli.Context) (eval.LowShotConfig, error) {
	cfg := eval.DefaultLowShotConfig()
	var err error
	if cfg.Probe, err = probeConfig(c); err != nil {
		return cfg, err
	}
	if cfg.Fractions, err = parseFractions(c.String("fractions")); err != nil {
		return cfg, err
	}
	n := c.Int("seeds")
	if n < 1 || n > 100 {
		return cfg, fmt.Errorf("eval: --seeds %d, want 1 to 100", n)
	}
	cfg.Seeds = make([]int64, n)
	for i := range cfg.Seeds {
		cfg.Seeds[i] = int64(i)
	}
	return cfg, nil
}

func parseFractions(s string) ([]float64, error) {
	var out []float64
	for _, part := range strings.Split(s, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		if err != nil || !(f > 0 && f <= 1) {
			return nil, fmt.Errorf("eval: --fractions %q: %q is not a number in (0, 1]", s, part)
		}
		out = append(out, f)
	}
	return out, nil
}

func regString(r eval.ProbeResult) string {
	if r.Classifier == eval.ClassifierSVM {
		return fmt.Sprintf("C %g", r.C)
	}
	return fmt.Sprintf("l2 %g", r.L2)
}

// featuresConfig reads featureFlags.
func featuresConfig(c *cli.Context) pipeline.FeaturesConfig {
	return pipeline.FeaturesConfig{
		TrainFeatures: c.String("train-features"), TestFeatures: c.String("test-features"),
		Model: c.String("model"), RawPixels: c.Bool("raw-pixels"), Data: c.String("data"),
		Splits: data.SplitsOptions{Train: c.String("train-split"), Test: c.String("test-split"), SkipBad: c.Bool("skip-bad"),
			Size: c.Int("size"), MaxPixels: c.Int64("max-pixels"), MaxTrain: c.Int("max-train"), Seed: c.Int64("seed")},
		Runtime: runtimeOptions(c), Batch: c.Int("batch"), Log: os.Stderr,
	}
}
