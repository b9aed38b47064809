package main

import (
	"path/filepath"
	"testing"
)

// eval pretext scores a run's pretext task on the images it held out
// (the same split the trainer used) or on another split; pretrain's task
// flags reach the task's config.
func TestEvalPretext(t *testing.T) {
	bin := buildBinary(t)
	dir, ds := toySet(t, 48, 16)
	run := filepath.Join(dir, "run")
	pre := pretrainToy(t, bin, run, "--task", "jigsaw", "--jigsaw-n", "10", "--jigsaw-method", "maxmin", "--no-gap", "--data", ds)
	var cfg struct {
		Pretext struct {
			Jigsaw struct {
				N      int    `json:"n"`
				Method string `json:"method"`
				Tiles  struct {
					Gap bool `json:"gap"`
				} `json:"tiles"`
			} `json:"jigsaw"`
		} `json:"pretext"`
	}
	b := readJSON(t, filepath.Join(run, "config.json"), &cfg)
	if j := cfg.Pretext.Jigsaw; j.N != 10 || j.Method != "maxmin" || j.Tiles.Gap {
		t.Fatalf("pretrain's jigsaw flags did not reach the config: %+v\n%s", j, b)
	}
	var res struct {
		Task   string  `json:"task"`
		Acc    float64 `json:"pretext_acc"`
		Images int     `json:"images"`
	}
	lastJSON(t, runCmd(t, nil, bin, "eval", "pretext", "--run", run, "--json"), &res)
	if res.Task != "jigsaw" || res.Images != 8 || res.Acc != pre.ValPretext {
		t.Fatalf("held-out: %+v; the trainer reported %v", res, pre.ValPretext)
	}
	lastJSON(t, runCmd(t, nil, bin, "eval", "pretext", "--run", run, "--split", "test", "--json"), &res)
	if res.Images != 16 || res.Acc < 0 || res.Acc > 1 {
		t.Fatalf("test split: %+v", res)
	}
	r := runCmd(t, nil, bin, "export", "--run", run, "--out", filepath.Join(dir, "m.onnx"))
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
}
