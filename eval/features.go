package eval

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/npy"
	"github.com/selfsup/selfsup/internal/shards"
)

// FeatureSets is a labelled train/test pair of feature matrices: TrainX is
// [len(TrainY), Dim] and TestX [len(TestY), Dim], row-major.
type FeatureSets struct {
	TrainX, TestX []float32
	TrainY, TestY []int
	Dim, Classes  int
	// Source says what the features are: a model path, "raw pixels", a .npy.
	Source string
}

// ReadFeatures reads labelled features: a features .npy ([N, D] float32)
// with its labels in <name>_labels.npy (int64 [N]), as `selfsup extract`
// writes them, or a sharded set's manifest (.json, as `selfsup extract
// --shard` and selfsup-beam write it; see ReadFeatureSet).
func ReadFeatures(path string) (x []float32, y []int, dim int, err error) {
	if path == "" {
		return nil, nil, 0, fmt.Errorf("eval: give both --train-features and --test-features")
	}
	if x, y, dim, err = ReadFeatureSet(path); err == nil && y == nil {
		why := "no " + strings.TrimSuffix(path, ".npy") + "_labels.npy beside it"
		if isManifest(path) {
			why = "the sharded set is unlabelled (its shards have no _labels.npy)"
		}
		err = fmt.Errorf("eval: labels for %s: %s", path, why)
	}
	if err != nil {
		return nil, nil, 0, err
	}
	return x, y, dim, nil
}

func isManifest(path string) bool { return strings.HasSuffix(path, ".json") }

// ReadFeatureSet reads features and their labels when there are any (y is
// nil otherwise): from a .npy ([N, D] float32, labels in
// <name>_labels.npy when that file exists), or from the manifest of a
// sharded set (a .json path): the shards are concatenated in manifest
// order after their row counts, dimensions and sha256s are checked
// against it; a mismatch is an error naming the shard and the file.
func ReadFeatureSet(path string) (x []float32, y []int, dim int, err error) {
	if isManifest(path) {
		x, l, m, err := shards.Load(path)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("eval: %w", err)
		}
		return x, ints(l), m.Dim, nil
	}
	x, shape, err := npy.ReadFloat32(path)
	if err != nil {
		return nil, nil, 0, err
	}
	if len(shape) != 2 {
		return nil, nil, 0, fmt.Errorf("eval: %s has shape %v, expected [N, D]", path, shape)
	}
	lp := strings.TrimSuffix(path, ".npy") + "_labels.npy"
	if _, err := os.Stat(lp); errors.Is(err, os.ErrNotExist) {
		return x, nil, shape[1], nil
	}
	l, lshape, err := npy.ReadInt64(lp)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("eval: labels for %s: %w", path, err)
	}
	if len(lshape) != 1 || lshape[0] != shape[0] {
		return nil, nil, 0, fmt.Errorf("eval: %s has shape %v, expected [%d] to match %s", lp, lshape, shape[0], path)
	}
	return x, ints(l), shape[1], nil
}

// ints converts labels to int; nil stays nil.
func ints(l []int64) []int {
	if l == nil {
		return nil
	}
	y := make([]int, len(l))
	for i, v := range l {
		y[i] = int(v)
	}
	return y
}

// LoadFeatureSets reads precomputed training and test features (see
// ReadFeatures); the number of classes is one more than the largest label.
func LoadFeatureSets(trainPath, testPath string) (*FeatureSets, error) {
	tr, trY, d1, err := ReadFeatures(trainPath)
	if err != nil {
		return nil, err
	}
	te, teY, d2, err := ReadFeatures(testPath)
	if err != nil {
		return nil, err
	}
	if d1 != d2 {
		return nil, fmt.Errorf("eval: training features have %d dimensions, test features %d", d1, d2)
	}
	return &FeatureSets{TrainX: tr, TrainY: trY, TestX: te, TestY: teY, Dim: d1, Classes: NumClasses(trY, teY), Source: trainPath}, nil
}

// PixelFeatureSets is the raw-pixel baseline: pixels normalised with the
// per-channel mean and std of (up to data.StatsImages images of) the
// training split. A note on the sizes goes to log (nil: none).
func PixelFeatureSets(trainDS, testDS data.Dataset, log io.Writer) (*FeatureSets, error) {
	mean, std, err := data.ChannelStats(trainDS, data.StatsImages)
	if err != nil {
		return nil, err
	}
	fs := &FeatureSets{Classes: len(trainDS.Classes()), Source: "raw pixels"}
	if fs.TrainX, fs.Dim, err = PixelFeatures(trainDS, mean, std, 0); err != nil {
		return nil, err
	}
	d := 0
	if fs.TestX, d, err = PixelFeatures(testDS, mean, std, 0); err != nil {
		return nil, err
	}
	if d != fs.Dim {
		return nil, fmt.Errorf("eval: raw pixels: training images give %d values, test images %d (use --size)", fs.Dim, d)
	}
	fs.TrainY, fs.TestY = data.Labels(trainDS), data.Labels(testDS)
	if fs.Classes == 0 {
		fs.Classes = NumClasses(fs.TrainY, fs.TestY)
	}
	if log != nil {
		fmt.Fprintf(log, "raw pixels: %d train and %d test images, %d values each\n", len(fs.TrainY), len(fs.TestY), fs.Dim)
	}
	return fs, nil
}

// NumClasses is one more than the largest label in ys.
func NumClasses(ys ...[]int) int {
	k := 0
	for _, y := range ys {
		for _, v := range y {
			k = max(k, v+1)
		}
	}
	return k
}

// MeanStd is the mean and the sample standard deviation of v (0 for one
// value), as low-shot evaluation summarises its seeds.
func MeanStd(v []float64) (mean, std float64) { return meanStd(v) }
