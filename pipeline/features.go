package pipeline

import (
	"fmt"
	"io"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/internal/progress"
	"github.com/selfsup/selfsup/runtime"
)

// Extract runs sess over ds (batch images per call) with a progress bar
// named label on log; it returns the features [ds.Len(), dim].
func Extract(sess *runtime.Session, ds data.Dataset, batch int, label string, log io.Writer) ([]float32, int, error) {
	bar := progress.New(logTo(log), label, ds.Len(), 0, "img")
	feats, dim, err := runtime.ExtractDataset(sess, ds, runtime.ExtractOptions{Batch: batch, Progress: bar.Update})
	bar.Finish()
	return feats, dim, err
}

// ModelFeatureSets extracts the features of both splits with sess.
func ModelFeatureSets(sess *runtime.Session, trainDS, testDS data.Dataset, batch int, trainLabel, testLabel string, log io.Writer) (*eval.FeatureSets, error) {
	fs := &eval.FeatureSets{Classes: len(trainDS.Classes()), Source: sess.Path()}
	var err error
	if fs.TrainX, fs.Dim, err = Extract(sess, trainDS, batch, trainLabel, log); err != nil {
		return nil, err
	}
	if fs.TestX, _, err = Extract(sess, testDS, batch, testLabel, log); err != nil {
		return nil, err
	}
	fs.TrainY, fs.TestY = data.Labels(trainDS), data.Labels(testDS)
	if fs.Classes == 0 {
		fs.Classes = eval.NumClasses(fs.TrainY, fs.TestY)
	}
	return fs, nil
}

// ModelFileFeatureSets opens the ONNX model at path with opts, extracts
// the features of both splits and closes the session.
func ModelFileFeatureSets(path string, opts runtime.Options, trainDS, testDS data.Dataset, batch int, trainLabel, testLabel string, log io.Writer) (*eval.FeatureSets, error) {
	sess, err := runtime.Open(path, opts)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	return ModelFeatureSets(sess, trainDS, testDS, batch, trainLabel, testLabel, log)
}

// FeaturesConfig says where `selfsup eval` takes its features from:
// precomputed files (TrainFeatures and TestFeatures), or Data with Model
// (ONNX Runtime) or RawPixels.
type FeaturesConfig struct {
	TrainFeatures, TestFeatures string
	Model                       string
	RawPixels                   bool
	Data                        string
	Splits                      data.SplitsOptions // Size is used with RawPixels only
	Runtime                     runtime.Options
	Batch                       int
	Log                         io.Writer
}

// LoadFeatureSets reads precomputed features, or extracts them from Data
// with Model or as raw pixels.
func LoadFeatureSets(c FeaturesConfig) (*eval.FeatureSets, error) {
	if c.TrainFeatures != "" || c.TestFeatures != "" {
		if c.Model != "" || c.RawPixels {
			return nil, fmt.Errorf("eval: give --train-features/--test-features, or --data with --model or --raw-pixels, not both")
		}
		return eval.LoadFeatureSets(c.TrainFeatures, c.TestFeatures)
	}
	if c.Data == "" || (c.Model == "") == !c.RawPixels {
		return nil, fmt.Errorf("eval: give --data with exactly one of --model and --raw-pixels, or --train-features and --test-features")
	}
	so := c.Splits
	if !c.RawPixels {
		so.Size = 0
	}
	so.Log = c.Log
	trainDS, testDS, err := data.OpenSplits(c.Data, so)
	if err != nil {
		return nil, err
	}
	if c.RawPixels {
		return eval.PixelFeatureSets(trainDS, testDS, logTo(c.Log))
	}
	if err := CheckBatch(c.Batch); err != nil {
		return nil, err
	}
	return ModelFileFeatureSets(c.Model, c.Runtime, trainDS, testDS, c.Batch, "features "+so.Train, "features "+so.Test, c.Log)
}
