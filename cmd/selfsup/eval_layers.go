package main

import (
	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/pipeline"
)

// layersFlag is `eval linear|knn --layers`.
func layersFlag() cli.Flag {
	return &cli.StringFlag{Name: "layers", Usage: "probe several model outputs and choose one by validation accuracy: all " +
		"(every pooled stage output stageN_pool of a model exported with --outputs all, plus features) or a comma list of outputs; " +
		"needs --model and --data"}
}

// evalLayers is `eval linear|knn --layers`: pipeline.EvalLayers.
func evalLayers(c *cli.Context, method string) error {
	lc := pipeline.LayersConfig{Features: featuresConfig(c), Layers: c.String("layers"), Method: method}
	if method == eval.MethodKNN {
		lc.KNN = eval.KNNLayersConfig{KNN: eval.DefaultKNNConfig(), Seed: c.Int64("seed")}
		lc.KNN.KNN.K, lc.KNN.KNN.Temperature = c.Int("k"), c.Float64("temperature")
	} else {
		var err error
		if lc.Probe, err = probeConfig(c); err != nil {
			return err
		}
	}
	res, err := pipeline.EvalLayers(lc)
	if err != nil {
		return err
	}
	return jsonOut(c, res)
}
