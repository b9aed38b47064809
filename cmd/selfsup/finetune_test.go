package main

import (
	"path/filepath"
	"testing"
)

// eval lowshot --finetune starts from a pretraining run, fine-tunes on
// class-balanced subsets and reports test accuracy per fraction and seed.
func TestLowShotFinetune(t *testing.T) {
	bin := buildBinary(t)
	dir, ds := toySet(t, 40, 20)
	run := filepath.Join(dir, "run")
	if r := runCmd(t, nil, bin, "pretrain", "--data", ds, "--out", run, "--epochs", "1", "--batch", "8", "--val-images", "0"); r.code != 0 {
		t.Fatalf("pretrain: %s", r.stderr)
	}
	var res struct {
		Classifier string `json:"classifier"`
		NTest      int    `json:"n_test"`
		Fractions  []struct {
			Fraction float64 `json:"fraction"`
			NTrain   int     `json:"n_train"`
			Top1Mean float64 `json:"top1_mean"`
			Runs     []struct {
				Top1 float64 `json:"top1"`
			} `json:"runs"`
		} `json:"fractions"`
	}
	lastJSON(t, runCmd(t, nil, bin, "eval", "lowshot", "--finetune", "--run", run, "--data", ds, "--fractions", "0.25,1",
		"--seeds", "2", "--finetune-epochs", "2", "--finetune-batch", "8", "--json"), &res)
	if res.Classifier != "finetune" || res.NTest != 20 || len(res.Fractions) != 2 {
		t.Fatalf("%+v", res)
	}
	for i, f := range res.Fractions {
		if len(f.Runs) != 2 || f.Top1Mean < 0 || f.Top1Mean > 1 {
			t.Fatalf("fraction %d: %+v", i, f)
		}
	}
	if res.Fractions[0].NTrain != 10 || res.Fractions[1].NTrain != 40 {
		t.Fatalf("subset sizes %d and %d, expected 10 and 40", res.Fractions[0].NTrain, res.Fractions[1].NTrain)
	}
}
