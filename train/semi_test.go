package train

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/pretext"
)

func semiConfig(task string) Config {
	c := tinyConfig(task)
	c.Batch, c.Steps, c.KNNEvery = 4, 4, -1
	c.Pretext = pretext.DefaultConfig(3, 16)
	c.Pretext.NumClasses = 2
	c.Pretext.Semi = &pretext.SemiConfig{Labelled: []int{0, 3, 5}, UnsupWeight: 0.5, Seed: 2}
	return c
}

// A semi-supervised run: every step's batch is the usual unlabelled batch
// followed by labelled images of the subset; every logged loss is the
// supervised term plus W times the self-supervised one; an interrupted run
// resumes bit-identically (the memory bank of semi-pirl included); the
// classifier evaluates as a supervised one.
func TestSemiRun(t *testing.T) {
	ds, val := blobs(24, 3, 16, 1), blobs(8, 3, 16, 2)
	for _, task := range []string{"semi-rotation", "semi-pirl"} {
		cfg := semiConfig(task)
		cfg.Pretext.TrainImages = ds.Len()
		s, err := build(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for step := 0; step < 8; step++ {
			idx, err := stepIndices(cfg, s.model, ds.Len(), step)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(idx[:4], batchIndices(cfg, ds.Len(), step)) {
				t.Fatalf("%s step %d: unlabelled half %v, expected the epoch order's %v", task, step, idx[:4], batchIndices(cfg, ds.Len(), step))
			}
			for _, i := range idx[4:] {
				if i != 0 && i != 3 && i != 5 {
					t.Fatalf("%s step %d: labelled half %v outside the labelled images [0 3 5]", task, step, idx[4:])
				}
			}
		}
		s.machine.Close()

		cfg.Pretext.TrainImages = 0
		full := t.TempDir()
		a, err := Run(cfg, ds, val, full, Options{})
		if err != nil {
			t.Fatalf("%s: %v", task, err)
		}
		lines := 0
		f, _ := os.Open(filepath.Join(full, "metrics.jsonl"))
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var m map[string]float64
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			loss, ok := m["loss"]
			if !ok {
				continue
			}
			lines++
			sup, unsup := m["sup_loss"], m["unsup_loss"]
			if want := sup + 0.5*unsup; math.Abs(loss-want) > 1e-5*(1+math.Abs(want)) || m["label_acc"] < 0 || m["label_acc"] > 1 {
				t.Fatalf("%s: logged loss %v, sup %v + 0.5 * unsup %v = %v; label_acc %v", task, loss, sup, unsup, want, m["label_acc"])
			}
		}
		f.Close()
		if lines != 4 {
			t.Fatalf("%s: %d loss lines, expected 4", task, lines)
		}
		part := t.TempDir()
		if _, err := Run(cfg, ds, val, part, Options{StopAfter: 2}); err != nil {
			t.Fatal(err)
		}
		b, err := Run(cfg, ds, val, part, Options{Resume: true})
		if err != nil {
			t.Fatal(err)
		}
		ca, _ := LoadCheckpoint(a.Checkpoint)
		cb, err := LoadCheckpoint(b.Checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		for _, grp := range [][2]models.Weights{{ca.Backbone, cb.Backbone}, {ca.Heads, cb.Heads}, {ca.State, cb.State}} {
			if len(grp[0]) != len(grp[1]) {
				t.Fatalf("%s: %d vs %d tensors", task, len(grp[0]), len(grp[1]))
			}
			for name, ta := range grp[0] {
				if !reflect.DeepEqual(ta.Data, grp[1][name].Data) {
					t.Fatalf("%s: %s differs after resuming", task, name)
				}
			}
		}
		if _, ok := ca.Heads["head.class.weight"]; !ok || (task == "semi-pirl") != (ca.State["memory_bank"].Data != nil) {
			t.Fatalf("%s: heads %v, state %v", task, ca.Heads.Names(), ca.State.Names())
		}
		ev, err := Evaluate(ca, val)
		if err != nil || ev.Images != 8 || ev.Top1 < 0 || ev.Top1 > 1 {
			t.Fatalf("%s: evaluate %+v, %v", task, ev, err)
		}
		// Evaluate runs the classifier alone; the whole semi-supervised
		// graph predicts the same.
		// A head with large random weights, so that predictions vary from
		// image to image.
		rng := rand.New(rand.NewSource(8))
		for _, v := range []string{"head.class.weight", "head.class.bias"} {
			for i := range ca.Heads[v].Data {
				ca.Heads[v].Data[i] = float32(rng.NormFloat64() * 20)
			}
		}
		whole := ca.Config
		whole.Pretext.NoAugment = true
		s, err = build(whole, ca, nil)
		if err != nil {
			t.Fatal(err)
		}
		var both data.Dataset = &memSet{imgs: append(append([]data.Image(nil), ds.imgs...), val.imgs...), labels: append(append([]int(nil), ds.labels...), val.labels...)}
		_, rw, err := s.classify(both)
		s.machine.Close()
		if err != nil {
			t.Fatal(err)
		}
		cc := semiClassifier(ca)
		cc.Config.Pretext.NoAugment = true
		alone, err := build(cc.Config, cc, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, ra, err := alone.classify(both)
		alone.machine.Close()
		if err != nil || !reflect.DeepEqual(ra, rw) || !strings.Contains(fmt.Sprint(ra), "0") || !strings.Contains(fmt.Sprint(ra), "1") {
			t.Fatalf("%s: class ranks of the classifier alone %v, of the whole graph %v (%v)", task, ra, rw, err)
		}
	}
}

// halves is a learnable labelled set: class 0 has a bright top, class 1 a
// bright bottom.
func halves(n int, seed int64) *memSet {
	m := &memSet{}
	rng := rand.New(rand.NewSource(seed))
	for i := 0; i < n; i++ {
		img := data.Image{C: 1, H: 12, W: 12, Pix: make([]uint8, 144)}
		cls := i % 2
		for y := 0; y < 12; y++ {
			for x := 0; x < 12; x++ {
				v := 30 + rng.Intn(20)
				if (cls == 0 && y < 5) || (cls == 1 && y >= 7) {
					v = 200 + rng.Intn(40)
				}
				img.Pix[y*12+x] = uint8(v)
			}
		}
		m.imgs, m.labels = append(m.imgs, img), append(m.labels, cls)
	}
	return m
}

// Weak labels reach the model: trained on labels all flipped (noisy:1 of
// two classes), the classifier learns the opposite class, and its held-out
// accuracy (scored without flips) says so; coarse labels set the head's
// classes; a task without labels, or a class count that disagrees, is an
// error.
func TestWeakRun(t *testing.T) {
	ds, val := halves(32, 1), halves(16, 2)
	cfg := tinyConfig("supervised")
	cfg.Steps, cfg.LR, cfg.CheckpointEvery, cfg.KNNEvery = 30, 0.05, 0, -1
	w, err := data.ParseWeak("noisy:1", ds.Classes())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Weak = w
	res, err := Run(cfg, ds, val, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ck, _ := LoadCheckpoint(res.Checkpoint)
	ev, err := Evaluate(ck, val)
	if err != nil || ev.Top1 > 0.2 || res.ValPretext > 0.2 {
		t.Fatalf("trained on flipped labels: clean top-1 %+v, held-out %v, %v: expected the opposite class", ev, res.ValPretext, err)
	}
	if ck.Config.Weak == nil || ck.Config.Weak.Noise != 1 {
		t.Fatalf("checkpoint config: weak %+v", ck.Config.Weak)
	}

	mapFile := filepath.Join(t.TempDir(), "map.txt")
	os.WriteFile(mapFile, []byte("a top\nb bottom\n"), 0o644)
	if cfg.Weak, err = data.ParseWeak("coarse:"+mapFile, ds.Classes()); err != nil {
		t.Fatal(err)
	}
	cfg.Steps, cfg.Pretext.NumClasses = 2, 3
	if _, err := Run(cfg, ds, val, t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "have 2 classes, the config 3") {
		t.Fatalf("3 classes for a map of 2: %v", err)
	}
	rot := tinyConfig("rotation")
	rot.Weak = cfg.Weak
	if _, err := Run(rot, ds, val, t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "need a task trained on labels; rotation is not") {
		t.Fatalf("weak rotation: %v", err)
	}
}
