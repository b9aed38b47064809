package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// The survey's pretext tasks run through the real binary: pretrain with a
// task flag (recorded in config.json), eval pretext reproducing the
// trainer's held-out figure (plus the masked-region error for
// inpainting, and its picture), and export of the backbone.
func TestSurveyTasksPretrainEvalExport(t *testing.T) {
	bin := buildBinary(t)
	dir, ds := toySet(t, 48, 16)
	for _, c := range []struct {
		task  string
		flags []string
		key   string // the config.json pretext field the flags set
	}{
		{"relpos", []string{"--relpos-pairs", "3", "--no-color-drop"}, "relpos"},
		{"inpainting", []string{"--inpaint-width", "32"}, "inpaint"},
		{"inpainting-block", nil, ""},
		{"deepcluster", []string{"--dc-k", "4", "--dc-every", "3"}, "deepcluster"},
	} {
		t.Run(c.task, func(t *testing.T) {
			run := filepath.Join(dir, c.task)
			pre := pretrainToy(t, bin, run, append([]string{"--task", c.task, "--data", ds}, c.flags...)...)
			if pre.Steps != 5 || !(pre.FinalLoss > 0) || pre.ValPretext < 0 || pre.ValPretext > 1 {
				t.Fatalf("pretrain: %+v", pre)
			}
			var cfg struct {
				Task    string                     `json:"task"`
				Pretext map[string]json.RawMessage `json:"pretext"`
			}
			b, err := os.ReadFile(filepath.Join(run, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &cfg); err != nil || cfg.Task != c.task {
				t.Fatalf("config.json: task %q, %v", cfg.Task, err)
			}
			if c.key != "" {
				if _, ok := cfg.Pretext[c.key]; !ok {
					t.Fatalf("config.json has no pretext.%s after %v: %s", c.key, c.flags, b)
				}
			}
			var res struct {
				Task     string   `json:"task"`
				Acc      float64  `json:"pretext_acc"`
				Images   int      `json:"images"`
				Recon    *float64 `json:"recon_mse"`
				Baseline *float64 `json:"recon_mse_baseline"`
			}
			evalArgs := []string{"eval", "pretext", "--run", run, "--json"}
			pic := filepath.Join(dir, c.task+".png")
			if c.task == "inpainting" {
				evalArgs = append(evalArgs, "--save-inpaint", pic)
			}
			lastJSON(t, runCmd(t, nil, bin, evalArgs...), &res)
			if res.Task != c.task || res.Images != 8 || res.Acc != pre.ValPretext {
				t.Fatalf("eval pretext: %+v; the trainer reported %v", res, pre.ValPretext)
			}
			if c.task == "inpainting" {
				if res.Recon == nil || res.Baseline == nil || !(*res.Recon > 0) || !(*res.Baseline > 0) {
					t.Fatalf("eval pretext: no masked-region error: %+v", res)
				}
				f, err := os.Open(pic)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := png.Decode(f); err != nil {
					t.Fatalf("--save-inpaint wrote no PNG: %v", err)
				}
			}
			if c.task == "relpos" {
				if r := runCmd(t, nil, bin, "export", "--run", run, "--out", filepath.Join(dir, "m.onnx")); r.code != 0 {
					t.Fatal(r.stderr)
				}
			}
		})
	}
	// A bad task setting is one clear error.
	r := runCmd(t, nil, bin, "pretrain", "--task", "relpos", "--data", ds, "--out", filepath.Join(dir, "bad"), "--relpos-gap", "-1")
	if r.code == 0 || len(r.stderr) == 0 {
		t.Fatalf("--relpos-gap -1 accepted: %+v", r)
	}
}
