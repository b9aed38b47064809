package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/runtime"
)

// evalCommands are further `selfsup eval` subcommands registered from
// init functions (baselines, ...).
var evalCommands []*cli.Command

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:  "eval",
		Usage: "evaluate frozen features: linear probe, kNN, low-shot, baselines",
		Subcommands: append([]*cli.Command{
			{
				Name:  "linear",
				Usage: "linear probe: logistic regression (or --svm: one-vs-rest linear SVM) on standardised frozen features, regularisation chosen on a validation split of the training set",
				Flags: append(append(featureFlags(), probeFlags()...), layersFlag()),
				Action: func(c *cli.Context) error {
					if c.String("layers") != "" {
						return evalLayers(c, eval.MethodLinear)
					}
					fs, err := loadFeatureSets(c)
					if err != nil {
						return err
					}
					cfg, err := probeConfig(c)
					if err != nil {
						return err
					}
					res, err := eval.LinearProbe(fs.trainX, fs.trainY, fs.testX, fs.testY, fs.dim, fs.classes, cfg)
					if err != nil {
						return err
					}
					fmt.Fprintf(os.Stderr, "linear probe (%s, %s): top-1 %.4f, top-%d %.4f, mAP %.4f (%s chosen on %d validation images; %d train, %d test, dim %d)\n",
						res.Classifier, fs.source, res.Top1, res.TopK, res.Top5, res.MAP, regString(res), res.NVal, res.NTrain, res.NTest, res.Dim)
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
					&cli.Float64Flag{Name: "temperature", Value: 0.07, Usage: "vote weight exp(similarity/temperature)"}, layersFlag()),
				Action: func(c *cli.Context) error {
					if c.String("layers") != "" {
						return evalLayers(c, eval.MethodKNN)
					}
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
					fmt.Fprintf(os.Stderr, "kNN (k=%d, %s): top-1 %.4f, top-%d %.4f\n", res.K, fs.source, res.Top1, res.TopK, res.Top5)
					if c.Bool("json") {
						return printJSON(res)
					}
					return nil
				},
			},
			{
				Name: "lowshot",
				Usage: "low-shot linear evaluation: class-balanced subsets of 1% and 10% of the training labels, several seeds, " +
					"mean and standard deviation of top-1/top-5; linear on frozen features, or --finetune the whole backbone of --run",
				Flags: append(append(append(featureFlags(), probeFlags()...), finetuneFlags()...),
					&cli.StringFlag{Name: "fractions", Value: "0.01,0.1", Usage: "comma-separated fractions of the training labels, each in (0, 1]"},
					&cli.IntFlag{Name: "seeds", Value: 3, Usage: "subsets drawn per fraction (seeds 0..N-1)"}),
				Action: func(c *cli.Context) error {
					if c.Bool("finetune") {
						return finetuneLowShot(c)
					}
					fs, err := loadFeatureSets(c)
					if err != nil {
						return err
					}
					cfg, err := lowShotConfig(c)
					if err != nil {
						return err
					}
					res, err := eval.LowShot(fs.trainX, fs.trainY, fs.testX, fs.testY, fs.dim, fs.classes, cfg)
					if err != nil {
						return err
					}
					printLowShot(os.Stderr, fs.source, res)
					if c.Bool("json") {
						return printJSON(res)
					}
					return nil
				},
			},
		}, evalCommands...),
	}
}

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
		&cli.BoolFlag{Name: "json", Usage: "print one JSON object as the last stdout line"},
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

// printLowShot writes one line per fraction: mean +- std over the seeds.
func printLowShot(w io.Writer, source string, r eval.LowShotResult) {
	fmt.Fprintf(w, "low-shot %s (%s): %d seeds per fraction, %d test images\n", r.Classifier, source, len(r.Fractions[0].Runs), r.NTest)
	for _, f := range r.Fractions {
		fmt.Fprintf(w, "  %5.1f%% labels (%d images): top-1 %.4f +- %.4f, top-%d %.4f +- %.4f\n",
			100*f.Fraction, f.NTrain, f.Top1Mean, f.Top1Std, r.TopK, f.Top5Mean, f.Top5Std)
	}
}

// featureSets is a labelled train/test pair of feature matrices.
type featureSets struct {
	trainX, testX []float32
	trainY, testY []int
	dim, classes  int
	source        string // what the features are: a model path, "raw pixels", a .npy
}

// loadFeatureSets reads precomputed features, or extracts them from --data
// with --model (ONNX Runtime) or as raw pixels.
func loadFeatureSets(c *cli.Context) (*featureSets, error) {
	if c.String("train-features") != "" || c.String("test-features") != "" {
		if c.String("model") != "" || c.Bool("raw-pixels") {
			return nil, fmt.Errorf("eval: give --train-features/--test-features, or --data with --model or --raw-pixels, not both")
		}
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
		return &featureSets{trainX: tr, trainY: trY, testX: te, testY: teY, dim: d1, classes: numClasses(trY, teY), source: c.String("train-features")}, nil
	}
	raw := c.Bool("raw-pixels")
	if c.String("data") == "" || (c.String("model") == "") == !raw {
		return nil, fmt.Errorf("eval: give --data with exactly one of --model and --raw-pixels, or --train-features and --test-features")
	}
	size := 0
	if raw {
		size = c.Int("size")
	}
	trainDS, testDS, err := openSplits(c.String("data"), c.String("train-split"), c.String("test-split"), c.Bool("skip-bad"), size, c.Int("max-train"), c.Int64("seed"), false)
	if err != nil {
		return nil, err
	}
	if raw {
		return pixelFeatureSets(trainDS, testDS)
	}
	sess, err := openSession(c)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	return modelFeatureSets(sess, trainDS, testDS, c.Int("batch"), c.String("train-split"), c.String("test-split"))
}

// openSplits opens the training and test splits of spec (resized to
// size x size when size > 0), keeps a class-balanced subset of at most
// maxTrain training images (0: all), and decodes both into memory when
// cache is set.
func openSplits(spec, trainSplit, testSplit string, skipBad bool, size, maxTrain int, seed int64, cache bool) (data.Dataset, data.Dataset, error) {
	open := openDataset
	if cache {
		open = loadAll
	}
	trainDS, err := open(spec, trainSplit, skipBad, 0, size)
	if err != nil {
		return nil, nil, err
	}
	if trainDS.Len() == 0 || trainDS.Label(0) < 0 {
		return nil, nil, fmt.Errorf("eval: %s split %q has no labelled images", spec, trainSplit)
	}
	if maxTrain > 0 && maxTrain < trainDS.Len() {
		trainDS = data.Subset(trainDS, balancedSubset(trainDS, maxTrain, seed))
	}
	testDS, err := open(spec, testSplit, skipBad, 0, size)
	if err != nil {
		return nil, nil, err
	}
	if testDS.Len() == 0 || testDS.Label(0) < 0 {
		return nil, nil, fmt.Errorf("eval: %s split %q has no labelled images", spec, testSplit)
	}
	return trainDS, testDS, nil
}

// modelFeatureSets extracts features of both splits with sess.
func modelFeatureSets(sess *runtime.Session, trainDS, testDS data.Dataset, batch int, trainName, testName string) (*featureSets, error) {
	fs := &featureSets{classes: len(trainDS.Classes()), source: sess.Path()}
	var err error
	if fs.trainX, fs.dim, err = extractFeatures(sess, trainDS, batch, "features "+trainName); err != nil {
		return nil, err
	}
	if fs.testX, _, err = extractFeatures(sess, testDS, batch, "features "+testName); err != nil {
		return nil, err
	}
	fs.trainY, fs.testY = data.Labels(trainDS), data.Labels(testDS)
	if fs.classes == 0 {
		fs.classes = numClasses(fs.trainY, fs.testY)
	}
	return fs, nil
}

// pixelFeatureSets is the raw-pixel baseline: pixels normalised with the
// per-channel mean and std of (up to 2000 images of) the training split.
func pixelFeatureSets(trainDS, testDS data.Dataset) (*featureSets, error) {
	mean, std, err := channelStats(trainDS, 2000)
	if err != nil {
		return nil, err
	}
	fs := &featureSets{classes: len(trainDS.Classes()), source: "raw pixels"}
	if fs.trainX, fs.dim, err = eval.PixelFeatures(trainDS, mean, std, 0); err != nil {
		return nil, err
	}
	d := 0
	if fs.testX, d, err = eval.PixelFeatures(testDS, mean, std, 0); err != nil {
		return nil, err
	}
	if d != fs.dim {
		return nil, fmt.Errorf("eval: raw pixels: training images give %d values, test images %d (use --size)", fs.dim, d)
	}
	fs.trainY, fs.testY = data.Labels(trainDS), data.Labels(testDS)
	if fs.classes == 0 {
		fs.classes = numClasses(fs.trainY, fs.testY)
	}
	fmt.Fprintf(os.Stderr, "raw pixels: %d train and %d test images, %d values each\n", len(fs.trainY), len(fs.testY), fs.dim)
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
