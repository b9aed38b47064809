package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/eval"
	"github.com/selfsup/selfsup/pipeline"
)

// evalCommand is `selfsup eval` with linear, knn, lowshot and more.
func evalCommand(more ...*cli.Command) *cli.Command {
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
					fs, err := pipeline.LoadFeatureSets(featuresConfig(c))
					if err != nil {
						return err
					}
					cfg, err := probeConfig(c)
					if err != nil {
						return err
					}
					res, err := eval.LinearProbe(fs.TrainX, fs.TrainY, fs.TestX, fs.TestY, fs.Dim, fs.Classes, cfg)
					if err != nil {
						return err
					}
					fmt.Fprintf(os.Stderr, "linear probe (%s, %s): top-1 %.4f, top-%d %.4f, mAP %.4f (%s chosen on %d validation images; %d train, %d test, dim %d)\n",
						res.Classifier, fs.Source, res.Top1, res.TopK, res.Top5, res.MAP, regString(res), res.NVal, res.NTrain, res.NTest, res.Dim)
					return jsonOut(c, res)
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
					fs, err := pipeline.LoadFeatureSets(featuresConfig(c))
					if err != nil {
						return err
					}
					cfg := eval.DefaultKNNConfig()
					cfg.K, cfg.Temperature = c.Int("k"), c.Float64("temperature")
					res, err := eval.KNN(fs.TrainX, fs.TrainY, fs.TestX, fs.TestY, fs.Dim, fs.Classes, cfg)
					if err != nil {
						return err
					}
					fmt.Fprintf(os.Stderr, "kNN (k=%d, %s): top-1 %.4f, top-%d %.4f\n", res.K, fs.Source, res.Top1, res.TopK, res.Top5)
					return jsonOut(c, res)
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
					fs, err := pipeline.LoadFeatureSets(featuresConfig(c))
					if err != nil {
						return err
					}
					cfg, err := lowShotConfig(c)
					if err != nil {
						return err
					}
					res, err := eval.LowShot(fs.TrainX, fs.TrainY, fs.TestX, fs.TestY, fs.Dim, fs.Classes, cfg)
					if err != nil {
						return err
					}
					pipeline.WriteLowShot(os.Stderr, fs.Source, res)
					return jsonOut(c, res)
				},
			},
		}, more...),
	}
}
