package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The real binary trains semi-rotation on a few labels and the supervised
// task on noisy labels, scores the semi-supervised classifier on the test
// split, and stops with one error line naming the file and line of a bad
// map or image list.
func TestSemiAndWeakCLI(t *testing.T) {
	bin := buildBinary(t)
	dir, ds := toySet(t, 32, 8)
	common := []string{"--arch", "resnet20c", "--data", ds, "--epochs", "1", "--batch", "4", "--val-images", "0", "--json"}

	var pre struct {
		Steps int `json:"steps"`
	}
	semi := filepath.Join(dir, "semi")
	lastJSON(t, runCmd(t, nil, bin, append([]string{"pretrain", "--task", "semi-rotation", "--labels", "8", "--unsup-weight", "0.5", "--out", semi}, common...)...), &pre)
	if pre.Steps != 8 {
		t.Fatalf("semi-rotation: %d steps, expected 8", pre.Steps)
	}
	var cfg struct {
		Labels  string `json:"labels"`
		Pretext struct {
			Semi struct {
				Labelled    []int   `json:"labelled"`
				UnsupWeight float64 `json:"unsup_weight"`
			} `json:"semi"`
		} `json:"pretext"`
	}
	b, _ := os.ReadFile(filepath.Join(semi, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Labels != "8" || len(cfg.Pretext.Semi.Labelled) != 8 || cfg.Pretext.Semi.UnsupWeight != 0.5 {
		t.Fatalf("config.json: %+v, %v", cfg, err)
	}
	var ev struct {
		Top1   *float64 `json:"class_top1"`
		Images int      `json:"class_images"`
	}
	lastJSON(t, runCmd(t, nil, bin, "eval", "pretext", "--run", semi, "--split", "test", "--json"), &ev)
	if ev.Top1 == nil || *ev.Top1 < 0 || *ev.Top1 > 1 || ev.Images != 8 {
		t.Fatalf("eval pretext: %+v", ev)
	}
	lastJSON(t, runCmd(t, nil, bin, append([]string{"pretrain", "--task", "supervised", "--weak", "noisy:0.5", "--out", filepath.Join(dir, "weak")}, common...)...), &pre)

	mapFile, list := filepath.Join(dir, "map.txt"), filepath.Join(dir, "list.txt")
	os.WriteFile(mapFile, []byte("class0 a\nclass1 a b\n"), 0o644)
	os.WriteFile(list, []byte("train/class0/000.png\ntrain/class0/999.png\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--task", "supervised", "--weak", "coarse:" + mapFile}, mapFile + ":2: expected \"class superclass\", got 3 fields"},
		{[]string{"--task", "semi-rotation", "--labels", list}, list + `:2: "train/class0/999.png" is none of the 32 images`},
		{[]string{"--task", "supervised", "--weak", "noisy:2"}, `noise rate "2", expected a number in [0, 1]`},
	} {
		r := runCmd(t, nil, bin, append(append([]string{"pretrain", "--out", filepath.Join(dir, "bad")}, tc.args...), common...)...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if last := lines[len(lines)-1]; r.code == 0 || !strings.HasPrefix(last, "selfsup: ") || !strings.Contains(last, tc.want) {
			t.Errorf("%v: exit %d, last line %q, want %q", tc.args, r.code, last, tc.want)
		}
	}
}
