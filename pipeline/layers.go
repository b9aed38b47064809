package pipeline

import (
	"fmt"
	"io"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/internal/progress"
	"github.com/selfsup/selfsup/runtime"
)

// LayerFeatures are several outputs of one model on a training and a test
// split, extracted in one pass per split.
type LayerFeatures struct {
	Layers        []string
	Train, Test   map[string]eval.FeatureMatrix
	TrainY, TestY []int
	Classes       int
	Source        string
}

// ExtractLayers runs sess over both splits and keeps the outputs named in
// layers (runtime.LayerOutputs resolves "all").
func ExtractLayers(sess *runtime.Session, trainDS, testDS data.Dataset, layers []string, batch int, log io.Writer) (*LayerFeatures, error) {
	if err := CheckBatch(batch); err != nil {
		return nil, err
	}
	extract := func(ds data.Dataset, label string) (map[string]eval.FeatureMatrix, error) {
		bar := progress.New(logTo(log), label, ds.Len(), 0, "img")
		fs, err := runtime.ExtractDatasetOutputs(sess, ds, layers, runtime.ExtractOptions{Batch: batch, Progress: bar.Update})
		bar.Finish()
		out := make(map[string]eval.FeatureMatrix, len(fs))
		for name, f := range fs {
			out[name] = eval.FeatureMatrix{Data: f.Data, Dim: f.Dim}
		}
		return out, err
	}
	lf := &LayerFeatures{Layers: layers, Source: sess.Path(), Classes: len(trainDS.Classes())}
	var err error
	if lf.Train, err = extract(trainDS, "layers train"); err != nil {
		return nil, err
	}
	if lf.Test, err = extract(testDS, "layers test"); err != nil {
		return nil, err
	}
	lf.TrainY, lf.TestY = data.Labels(trainDS), data.Labels(testDS)
	if lf.Classes == 0 {
		lf.Classes = eval.NumClasses(lf.TrainY, lf.TestY)
	}
	return lf, nil
}

// Probe runs the per-layer linear probe (eval.ProbeLayers), choosing the
// layer on the validation split only.
func (lf *LayerFeatures) Probe(cfg eval.ProbeConfig, log io.Writer) (*eval.LayersResult, error) {
	return eval.ProbeLayers(lf.Train, lf.Test, lf.TrainY, lf.TestY, lf.Classes, cfg, layerProgress(log))
}

// KNN runs the per-layer kNN (eval.KNNLayers).
func (lf *LayerFeatures) KNN(cfg eval.KNNLayersConfig, log io.Writer) (*eval.LayersResult, error) {
	return eval.KNNLayers(lf.Train, lf.Test, lf.TrainY, lf.TestY, lf.Classes, cfg, layerProgress(log))
}

// Layer returns one layer as a FeatureSets.
func (lf *LayerFeatures) Layer(name string) (*eval.FeatureSets, error) {
	tr, ok := lf.Train[name]
	te, ok2 := lf.Test[name]
	if !ok || !ok2 {
		return nil, fmt.Errorf("pipeline: %s has no extracted layer %q (has %v)", lf.Source, name, lf.Layers)
	}
	return &eval.FeatureSets{TrainX: tr.Data, TrainY: lf.TrainY, TestX: te.Data, TestY: lf.TestY, Dim: tr.Dim, Classes: lf.Classes, Source: lf.Source + ":" + name}, nil
}

func layerProgress(log io.Writer) func(eval.LayerResult) {
	return func(l eval.LayerResult) {
		fmt.Fprintf(logTo(log), "  %-12s dim %5d: val top-1 %.4f, test top-1 %.4f, top-%d %.4f (%.1fs)\n", l.Layer, l.Dim, l.ValTop1, l.Top1, l.TopK, l.Top5, l.Seconds)
	}
}

// LayersConfig is `selfsup eval linear|knn --layers`.
type LayersConfig struct {
	Features FeaturesConfig
	// Layers is "all" or a comma list of model outputs.
	Layers string
	// Method is eval.MethodLinear or eval.MethodKNN.
	Method string
	Probe  eval.ProbeConfig
	KNN    eval.KNNLayersConfig
}

// EvalLayers extracts every layer of the model on both splits and probes
// each, choosing the best on the validation split.
func EvalLayers(c LayersConfig) (*eval.LayersResult, error) {
	f := c.Features
	if f.TrainFeatures != "" || f.TestFeatures != "" || f.RawPixels {
		return nil, fmt.Errorf("eval %s: --layers needs --model and --data (precomputed features and raw pixels are one layer; evaluate each .npy on its own)", c.Method)
	}
	if f.Model == "" || f.Data == "" {
		return nil, fmt.Errorf("eval %s: --layers needs --model and --data", c.Method)
	}
	so := f.Splits
	so.Size, so.Log = 0, f.Log
	trainDS, testDS, err := data.OpenSplits(f.Data, so)
	if err != nil {
		return nil, err
	}
	sess, err := runtime.Open(f.Model, f.Runtime)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	layers, err := runtime.LayerOutputs(sess, c.Layers)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logTo(f.Log), "layers: %v\n", layers)
	lf, err := ExtractLayers(sess, trainDS, testDS, layers, f.Batch, f.Log)
	if err != nil {
		return nil, err
	}
	var res *eval.LayersResult
	if c.Method == eval.MethodKNN {
		res, err = lf.KNN(c.KNN, f.Log)
	} else {
		res, err = lf.Probe(c.Probe, f.Log)
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logTo(f.Log), "%s per layer (%s): best by validation %s (dim %d): val top-1 %.4f, test top-1 %.4f (%d train, %d of them validation, %d test; %.1fs)\n",
		c.Method, sess.Path(), res.Best.Layer, res.Best.Dim, res.Best.ValTop1, res.Best.Top1, res.NTrain, res.NVal, res.NTest, res.Seconds)
	return res, nil
}
