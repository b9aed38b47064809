package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/internal/npy"
)

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:  "eval",
		Usage: "evaluate frozen features",
		Subcommands: []*cli.Command{
			{
				Name:  "linear",
				Usage: "linear probe: logistic regression on standardised frozen features, L2 chosen on a validation split of the training set",
				Flags: featureFlags(),
				Action: func(c *cli.Context) error {
					fs, err := loadFeatureSets(c)
					if err != nil {
						return err
					}
					cfg := eval.DefaultProbeConfig()
					cfg.Seed = c.Int64("seed")
					res, err := eval.LinearProbe(fs.trainX, fs.trainY, fs.testX, fs.testY, fs.dim, fs.classes, cfg)
					if err != nil {
						return err
					}
					fmt.Fprintf(os.Stderr, "linear probe: top-1 %.4f, top-%d %.4f (l2 %g chosen on %d validation images; %d train, %d test, dim %d)\n",
						res.Top1, res.TopK, res.Top5, res.L2, res.NVal, res.NTrain, res.NTest, res.Dim)
					if c.Bool("json") {
						return printJSON(res)
					}
					return nil
				},
			},
			{
				Name:  "knn",
				Usage: "weighted kNN on L2-normalised features (k=200, temperature 0.07)",
				Flags: append(featureFlags(),
					&cli.IntFlag{Name: "k", Value: 200, Usage: "neighbours"},
					&cli.Float64Flag{Name: "temperature", Value: 0.07, Usage: "vote weight exp(similarity/temperature)"}),
				Action: func(c *cli.Context) error {
					fs, err := loadFeatureSets(c)
					if err != nil {
						return err
					}
					cfg := eval.DefaultKNNConfig()
					cfg.K, cfg.Temperature = c.Int("k"), c.Float64("temperature")
					res, err := eval.KNN(fs.trainX, fs.trainY, fs.testX, fs.testY, fs.dim, fs.classes, cfg)
					if err != nil {
						return err
					}
					fmt.Fprintf(os.Stderr, "kNN (k=%d): top-1 %.4f, top-%d %.4f\n", res.K, res.Top1, res.TopK, res.Top5)
					if c.Bool("json") {
						return printJSON(res)
					}
					return nil
				},
			},
		},
	}
}

func featureFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "model", Usage: "ONNX model to extract features with (with --data)"},
		&cli.StringFlag{Name: "data", Usage: "labelled images (with --model): fashion-mnist, mnist, folder or .tar"},
		&cli.StringFlag{Name: "train-split", Value: "train"},
		&cli.StringFlag{Name: "test-split", Value: "test"},
		&cli.IntFlag{Name: "max-train", Usage: "use at most this many training images (a class-balanced random subset; 0: all)"},
		&cli.StringFlag{Name: "train-features", Usage: "precomputed training features .npy (labels in <name>_labels.npy)"},
		&cli.StringFlag{Name: "test-features", Usage: "precomputed test features .npy (labels in <name>_labels.npy)"},
		&cli.BoolFlag{Name: "skip-bad", Usage: "skip images that fail to decode"},
		&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed for subsets and the validation split"},
		&cli.BoolFlag{Name: "json", Usage: "print one JSON object as the last stdout line"},
	}, runtimeFlags()...)
}

// featureSets is a labelled train/test pair of feature matrices.
type featureSets struct {
	trainX, testX []float32
	trainY, testY []int
	dim, classes  int
}

func loadFeatureSets(c *cli.Context) (*featureSets, error) {
	if c.String("train-features") != "" || c.String("test-features") != "" {
		tr, trY, d1, err := readFeatures(c.String("train-features"))
		if err != nil {
			return nil, err
		}
		te, teY, d2, err := readFeatures(c.String("test-features"))
		if err != nil {
			return nil, err
		}
		if d1 != d2 {
			return nil, fmt.Errorf("eval: training features have %d dimensions, test features %d", d1, d2)
		}
		return &featureSets{trainX: tr, trainY: trY, testX: te, testY: teY, dim: d1, classes: numClasses(trY, teY)}, nil
	}
	if c.String("model") == "" || c.String("data") == "" {
		return nil, fmt.Errorf("eval: give --model and --data, or --train-features and --test-features")
	}
	sess, err := openSession(c)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	trainDS, err := openDataset(c.String("data"), c.String("train-split"), c.Bool("skip-bad"), 0, 0)
	if err != nil {
		return nil, err
	}
	if n := c.Int("max-train"); n > 0 && n < trainDS.Len() {
		trainDS = data.Subset(trainDS, balancedSubset(trainDS, n, c.Int64("seed")))
	}
	testDS, err := openDataset(c.String("data"), c.String("test-split"), c.Bool("skip-bad"), 0, 0)
	if err != nil {
		return nil, err
	}
	fs := &featureSets{classes: len(trainDS.Classes())}
	if fs.trainX, fs.dim, err = extractFeatures(sess, trainDS, c.Int("batch"), "features "+c.String("train-split")); err != nil {
		return nil, err
	}
	if fs.testX, _, err = extractFeatures(sess, testDS, c.Int("batch"), "features "+c.String("test-split")); err != nil {
		return nil, err
	}
	fs.trainY, fs.testY = data.Labels(trainDS), data.Labels(testDS)
	if fs.classes == 0 {
		fs.classes = numClasses(fs.trainY, fs.testY)
	}
	return fs, nil
}

// balancedSubset draws n indices of ds, about n/classes from each class.
func balancedSubset(ds data.Dataset, n int, seed int64) []int {
	return data.StratifiedSubset(data.Labels(ds), float64(n)/float64(ds.Len()), seed)
}

func readFeatures(path string) ([]float32, []int, int, error) {
	if path == "" {
		return nil, nil, 0, fmt.Errorf("eval: give both --train-features and --test-features")
	}
	x, shape, err := npy.ReadFloat32(path)
	if err != nil {
		return nil, nil, 0, err
	}
	if len(shape) != 2 {
		return nil, nil, 0, fmt.Errorf("eval: %s has shape %v, expected [N, D]", path, shape)
	}
	lp := strings.TrimSuffix(path, ".npy") + "_labels.npy"
	l, lshape, err := npy.ReadInt64(lp)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("eval: labels for %s: %w", path, err)
	}
	if len(lshape) != 1 || lshape[0] != shape[0] {
		return nil, nil, 0, fmt.Errorf("eval: %s has shape %v, expected [%d] to match %s", lp, lshape, shape[0], path)
	}
	y := make([]int, len(l))
	for i, v := range l {
		y[i] = int(v)
	}
	return x, y, shape[1], nil
}

func numClasses(ys ...[]int) int {
	k := 0
	for _, y := range ys {
		for _, v := range y {
			k = max(k, v+1)
		}
	}
	return k
}
