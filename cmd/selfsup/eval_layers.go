package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/runtime"
)

// layersFlag is `eval linear|knn --layers`.
func layersFlag() cli.Flag {
	return &cli.StringFlag{Name: "layers", Usage: "probe several model outputs and choose one by validation accuracy: all " +
		"(every pooled stage output stageN_pool of a model exported with --outputs all, plus features) or a comma list of outputs; " +
		"needs --model and --data"}
}

// evalLayers is `eval linear|knn --layers`: extracts every layer of
// --model on both splits in one pass each, then runs eval.ProbeLayers
// (method linear) or eval.KNNLayers (knn).
func evalLayers(c *cli.Context, method string) error {
	if c.String("train-features") != "" || c.String("test-features") != "" || c.Bool("raw-pixels") {
		return fmt.Errorf("eval %s: --layers needs --model and --data (precomputed features and raw pixels are one layer; evaluate each .npy on its own)", method)
	}
	if c.String("model") == "" || c.String("data") == "" {
		return fmt.Errorf("eval %s: --layers needs --model and --data", method)
	}
	trainDS, testDS, err := openSplits(c.String("data"), c.String("train-split"), c.String("test-split"), c.Bool("skip-bad"), 0, c.Int("max-train"), c.Int64("seed"), false)
	if err != nil {
		return err
	}
	sess, err := openSession(c)
	if err != nil {
		return err
	}
	defer sess.Close()
	layers, err := runtime.LayerOutputs(sess, c.String("layers"))
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "layers: %v\n", layers)
	extract := func(ds data.Dataset, split string) (map[string]eval.FeatureMatrix, error) {
		bar := newProgressBar(os.Stderr, "layers "+split, ds.Len(), 0)
		fs, err := runtime.ExtractDatasetOutputs(sess, ds, layers, runtime.ExtractOptions{Batch: c.Int("batch"), Progress: bar.update})
		bar.finish()
		out := make(map[string]eval.FeatureMatrix, len(fs))
		for name, f := range fs {
			out[name] = eval.FeatureMatrix{Data: f.Data, Dim: f.Dim}
		}
		return out, err
	}
	train, err := extract(trainDS, c.String("train-split"))
	if err != nil {
		return err
	}
	test, err := extract(testDS, c.String("test-split"))
	if err != nil {
		return err
	}
	trainY, testY := data.Labels(trainDS), data.Labels(testDS)
	classes := len(trainDS.Classes())
	if classes == 0 {
		classes = numClasses(trainY, testY)
	}
	progress := func(l eval.LayerResult) {
		fmt.Fprintf(os.Stderr, "  %-12s dim %5d: val top-1 %.4f, test top-1 %.4f, top-%d %.4f (%.1fs)\n", l.Layer, l.Dim, l.ValTop1, l.Top1, l.TopK, l.Top5, l.Seconds)
	}
	var res *eval.LayersResult
	if method == eval.MethodKNN {
		cfg := eval.KNNLayersConfig{KNN: eval.DefaultKNNConfig(), Seed: c.Int64("seed")}
		cfg.KNN.K, cfg.KNN.Temperature = c.Int("k"), c.Float64("temperature")
		res, err = eval.KNNLayers(train, test, trainY, testY, classes, cfg, progress)
	} else {
		cfg, cerr := probeConfig(c)
		if cerr != nil {
			return cerr
		}
		res, err = eval.ProbeLayers(train, test, trainY, testY, classes, cfg, progress)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s per layer (%s): best by validation %s (dim %d): val top-1 %.4f, test top-1 %.4f (%d train, %d of them validation, %d test; %.1fs)\n",
		method, sess.Path(), res.Best.Layer, res.Best.Dim, res.Best.ValTop1, res.Best.Top1, res.NTrain, res.NVal, res.NTest, res.Seconds)
	if c.Bool("json") {
		return printJSON(res)
	}
	return nil
}

// probeLayerOptions returns the export options of a model whose probes read
// layer ("" or "features": export.DefaultOptions; else features plus that
// output, e.g. "stage2_pool"), checking the name against arch before any
// work is done.
func probeLayerOptions(arch, layer string) (export.Options, error) {
	opts := export.DefaultOptions()
	if layer == "" || layer == export.FeaturesOutput {
		return opts, nil
	}
	spec, err := models.New(arch, 3)
	if err != nil {
		return opts, err
	}
	all := export.AllOutputs(spec, false)
	if !slices.Contains(all, layer) {
		return opts, fmt.Errorf("--probe-layer %q: %s has no such output (it has %s)", layer, arch, strings.Join(all, ", "))
	}
	opts.Outputs = append(opts.Outputs, layer)
	return opts, nil
}

// extractOutput is extractFeatures for a named model output.
func extractOutput(sess *runtime.Session, ds data.Dataset, batch int, output, label string) ([]float32, int, error) {
	bar := newProgressBar(os.Stderr, label, ds.Len(), 0)
	feats, dim, err := runtime.ExtractDataset(sess, ds, runtime.ExtractOptions{Batch: batch, Output: output, Progress: bar.update})
	bar.finish()
	return feats, dim, err
}
