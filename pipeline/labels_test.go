package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/train"
)

// sources lists the sources of ds at idx (all of ds when idx is nil), sorted.
func sources(ds data.Dataset, idx []int) []string {
	var out []string
	for i := 0; i < ds.Len(); i++ {
		if idx == nil {
			out = append(out, ds.Source(i))
		}
	}
	for _, i := range idx {
		out = append(out, ds.Source(i))
	}
	sort.Strings(out)
	return out
}

// --labels: the supervised run trains on exactly the labelled images the
// semi-supervised run of the same seed finds in its config, none of them
// held out; a file may name held-out images (they train instead); bad
// lines and tasks are one clear error.
func TestApplyLabels(t *testing.T) {
	tar := filepath.Join(t.TempDir(), "toy.tar")
	testenv.ToyTar(t, tar, 40, 4, false)
	ds, err := data.Load(tar, "train", data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr, va := data.Split(ds.Len(), 0.2, 3)
	get := func(task, labels string) (train.Config, data.Dataset, data.Dataset, error) {
		cfg := train.DefaultConfig(task, "resnet20c")
		cfg.Seed, cfg.Batch = 3, 4
		trs, vas, err := applyLabels(PretrainConfig{Labels: labels, UnsupWeight: 0.5}, &cfg, ds, tr, va, logTo(nil))
		return cfg, trs, vas, err
	}
	_, sup, supVal, err := get("supervised", "0.5")
	if err != nil {
		t.Fatal(err)
	}
	if c, _, _, _ := get("supervised", "0.5"); c.KNNEvery != max(1, len(tr)/c.Batch) {
		t.Fatalf("supervised on the labelled images: kNN every %d steps, expected an epoch of the split, %d", c.KNNEvery, len(tr)/c.Batch)
	}
	cfg, semi, semiVal, err := get("semi-rotation", "0.5")
	if err != nil {
		t.Fatal(err)
	}
	if sup.Len() != 16 || semi.Len() != 32 || cfg.Labels != "0.5" || cfg.Pretext.Semi.UnsupWeight != 0.5 || cfg.Pretext.Semi.Seed != 3 {
		t.Fatalf("supervised trains on %d images, semi on %d; config %q %+v", sup.Len(), semi.Len(), cfg.Labels, cfg.Pretext.Semi)
	}
	if got, want := sources(semi, cfg.Pretext.Semi.Labelled), sources(sup, nil); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("semi's labelled images %v, supervised's training images %v", got, want)
	}
	held := strings.Join(sources(supVal, nil), ",")
	if held != strings.Join(sources(semiVal, nil), ",") || held != strings.Join(sources(ds, va), ",") {
		t.Fatal("the held-out images changed")
	}
	for _, s := range sources(sup, nil) {
		if strings.Contains(held, s) {
			t.Fatalf("labelled image %s is held out", s)
		}
	}

	// All labelled: the supervised task trains on every training image, the
	// semi-supervised one finds every one of them labelled.
	_, sup, _, err = get("supervised", "1")
	if err != nil {
		t.Fatal(err)
	}
	cfg, semi, _, err = get("semi-rotation", "1")
	if err != nil || sup.Len() != len(tr) || semi.Len() != len(tr) || len(cfg.Pretext.Semi.Labelled) != len(tr) || cfg.Pretext.Semi.Labelled[len(tr)-1] != len(tr)-1 {
		t.Fatalf("--labels 1: supervised %d, semi %d images, %d labelled; %v", sup.Len(), semi.Len(), len(cfg.Pretext.Semi.Labelled), err)
	}

	// A file naming a held-out image and a training one.
	list := filepath.Join(t.TempDir(), "labelled.txt")
	os.WriteFile(list, []byte(ds.Source(va[0])+"\n"+ds.Source(tr[0])+"\n"), 0o644)
	cfg, semi, semiVal, err = get("semi-rotation", list)
	if err != nil {
		t.Fatal(err)
	}
	if semi.Len() != 33 || semiVal.Len() != 7 || strings.Join(sources(semi, cfg.Pretext.Semi.Labelled), ",") != strings.Join(sources(ds, []int{va[0], tr[0]}), ",") {
		t.Fatalf("listed images: %d training, %d held out, labelled %v", semi.Len(), semiVal.Len(), sources(semi, cfg.Pretext.Semi.Labelled))
	}
	os.WriteFile(list, []byte(ds.Source(tr[0])+"\ntrain/class0/nope.png\n"), 0o644)
	for _, tc := range []struct{ task, labels, want string }{
		{"semi-rotation", list, list + `:2: "train/class0/nope.png" is none of the 40 images`},
		{"semi-rotation", "", "task semi-rotation needs --labels"},
		{"rotation", "0.5", "--labels is for the supervised and semi-supervised tasks, not rotation"},
		{"semi-pirl", "1.5", "expected a fraction in (0, 1], a whole number of images"},
	} {
		if _, _, _, err := get(tc.task, tc.labels); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s --labels %q: %v, want %q", tc.task, tc.labels, err, tc.want)
		}
	}

	// The whole chain: a semi-rotation step from the tar, and weak labels.
	for _, pc := range []PretrainConfig{{Labels: "8", UnsupWeight: 1}, {Weak: "noisy:0.25"}} {
		cfg := train.DefaultConfig("semi-rotation", "resnet20c")
		if pc.Weak != "" {
			cfg = train.DefaultConfig("supervised", "resnet20c")
		}
		cfg.Steps, cfg.Batch, cfg.ValImages, cfg.KNNEvery, cfg.CheckpointEvery = 1, 4, 8, -1, 0
		pc.Train, pc.Data, pc.Out = cfg, tar, t.TempDir()
		res, err := Pretrain(context.Background(), pc)
		if err != nil {
			t.Fatal(err)
		}
		ck, err := train.LoadCheckpoint(res.Checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		if c := ck.Config; (pc.Labels != "" && (c.Labels != "8" || len(c.Pretext.Semi.Labelled) != 8)) || (pc.Weak != "" && (c.Weak == nil || c.Weak.Noise != 0.25)) {
			t.Fatalf("checkpoint config: labels %q, semi %+v, weak %+v", c.Labels, c.Pretext.Semi, c.Weak)
		}
	}
}
