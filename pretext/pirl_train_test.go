package pretext_test

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/pretext"
	"github.com/selfsup/selfsup/train"
)

func bankConfig(task string, n int, loss string) train.Config {
	cfg := train.DefaultConfig(task, "resnet20c")
	cfg.Batch, cfg.Steps, cfg.CheckpointEvery, cfg.LogEvery, cfg.Seed, cfg.WarmupSteps = 4, 4, 2, 1, 5, 1
	cfg.Pretext = pretext.DefaultConfig(3, 16)
	cfg.Pretext.PIRL = pretext.DefaultPIRLConfig(n)
	cfg.Pretext.PIRL.Loss = loss
	return cfg
}

// Every memory-bank task trains a few steps of train.Run with a finite
// loss and logged accuracies in [0, 1], and its checkpoint holds a bank of
// unit rows of which those of the images seen have moved.
func TestMemoryBankTasksTrain(t *testing.T) {
	const n = 16
	for _, task := range []string{"npid", "pirl-rotation", "pirl-jigsaw", "pirl-jigsaw-rotation"} {
		dir := t.TempDir()
		cfg := bankConfig(task, n, pretext.PIRLLossSoftmax)
		cfg.Steps = 3
		res, err := train.Run(cfg, noise(n, 16, 1), noise(8, 16, 2), dir, train.Options{})
		if err != nil {
			t.Fatalf("%s: %v", task, err)
		}
		if res.Steps != 3 || math.IsNaN(res.FinalLoss) || math.IsInf(res.FinalLoss, 0) || res.FinalLoss <= 0 {
			t.Fatalf("%s: steps %d, final loss %v", task, res.Steps, res.FinalLoss)
		}
		if res.ValPretext < 0 || res.ValPretext > 1 {
			t.Fatalf("%s: held-out accuracy %v", task, res.ValPretext)
		}
		f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		logged := 0
		for sc.Scan() {
			var rec map[string]float64
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatal(err)
			}
			if acc, ok := rec["pretext_acc"]; ok {
				if acc < 0 || acc > 1 {
					t.Fatalf("%s: pretext_acc %v", task, acc)
				}
				logged++
			}
		}
		f.Close()
		if logged != 3 {
			t.Fatalf("%s: %d metric lines with pretext_acc, expected 3", task, logged)
		}
		ck, err := train.LoadCheckpoint(res.Checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		bank, ok := ck.State["memory_bank"]
		if !ok || len(bank.Shape) != 2 || bank.Shape[0] != n || bank.Shape[1] != 128 {
			t.Fatalf("%s: checkpoint state %v", task, ck.State.Names())
		}
		// The third step moved exactly the rows of its batch's images.
		ck2, err := train.LoadCheckpoint(filepath.Join(dir, "checkpoint-00000002.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		moved := 0
		for i := 0; i < n; i++ {
			var s float64
			diff := false
			for j, v := range bank.Data[i*128 : (i+1)*128] {
				s += float64(v) * float64(v)
				diff = diff || v != ck2.State["memory_bank"].Data[i*128+j]
			}
			if math.Abs(math.Sqrt(s)-1) > 1e-5 {
				t.Fatalf("%s: bank row %d has norm %v", task, i, math.Sqrt(s))
			}
			if diff {
				moved++
			}
		}
		if moved != cfg.Batch {
			t.Fatalf("%s: the last step moved %d bank rows, expected %d", task, moved, cfg.Batch)
		}
	}
}

// A run stopped after 2 steps and resumed ends bit-identical to an
// uninterrupted one: weights, heads, velocity and the memory bank (and,
// with VISSL's loss, the normalising constant Z).
func TestMemoryBankResumeIsBitIdentical(t *testing.T) {
	const n = 16
	ds := noise(n, 16, 3)
	for _, tc := range []struct {
		task, loss string
		perImage   bool
	}{{"pirl-jigsaw-rotation", pretext.PIRLLossNCE, false}, {"npid", pretext.PIRLLossSoftmax, true}} {
		cfg := bankConfig(tc.task, n, tc.loss)
		cfg.Pretext.PIRL.PerImageNegatives = tc.perImage
		full := t.TempDir()
		a, err := train.Run(cfg, ds, nil, full, train.Options{})
		if err != nil {
			t.Fatal(err)
		}
		part := t.TempDir()
		if _, err := train.Run(cfg, ds, nil, part, train.Options{StopAfter: 2}); err != nil {
			t.Fatal(err)
		}
		b, err := train.Run(cfg, ds, nil, part, train.Options{Resume: true})
		if err != nil {
			t.Fatal(err)
		}
		if !b.Resumed {
			t.Fatalf("%s: not resumed", tc.task)
		}
		ca, err := train.LoadCheckpoint(a.Checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		cb, err := train.LoadCheckpoint(b.Checkpoint)
		if err != nil {
			t.Fatal(err)
		}
		if tc.loss == pretext.PIRLLossNCE && !(ca.State["nce_z"].Data[0] > 0) {
			t.Fatalf("%s: Z not estimated: %v", tc.task, ca.State["nce_z"].Data)
		}
		for gi, grp := range [][2]models.Weights{{ca.Backbone, cb.Backbone}, {ca.Heads, cb.Heads}, {ca.Velocity, cb.Velocity}, {ca.State, cb.State}} {
			if len(grp[0]) == 0 || len(grp[0]) != len(grp[1]) {
				t.Fatalf("%s: group %d: %d and %d tensors", tc.task, gi, len(grp[0]), len(grp[1]))
			}
			for name, ta := range grp[0] {
				tb := grp[1][name]
				if len(ta.Data) != len(tb.Data) {
					t.Fatalf("%s: %s: sizes differ", tc.task, name)
				}
				for i := range ta.Data {
					if math.Float32bits(ta.Data[i]) != math.Float32bits(tb.Data[i]) {
						t.Fatalf("%s: %s[%d]: uninterrupted %v, resumed %v", tc.task, name, i, ta.Data[i], tb.Data[i])
					}
				}
			}
		}
	}
}

// Without a PIRL config the bank is sized from the trainer's
// TrainImages; a bank size that disagrees with the data is an error.
func TestMemoryBankSizeFromTrainer(t *testing.T) {
	cfg := bankConfig("pirl-rotation", 16, pretext.PIRLLossSoftmax)
	cfg.Pretext.PIRL = nil
	cfg.Steps = 1
	res, err := train.Run(cfg, noise(16, 16, 1), nil, t.TempDir(), train.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ck, err := train.LoadCheckpoint(res.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	if s := ck.State["memory_bank"].Shape; len(s) != 2 || s[0] != 16 {
		t.Fatalf("bank shape %v, expected [16 128]", s)
	}
	cfg = bankConfig("pirl-rotation", 20, pretext.PIRLLossSoftmax)
	_, err = train.Run(cfg, noise(16, 16, 1), nil, t.TempDir(), train.Options{})
	if err == nil || !strings.Contains(err.Error(), "BankSize") {
		t.Fatalf("expected an error naming BankSize, got %v", err)
	}
}

// NPID learns instance discrimination on 32 random images: over 120 steps
// the fraction of images whose bank entry beats all their negatives rises
// from chance (about 1/32) and the loss falls. This exercises the whole
// chain: gradient direction, positives gathered at Batch.Index, bank
// updates from the forward pass.
func TestNPIDLearnsInstanceDiscrimination(t *testing.T) {
	cfg := train.DefaultConfig("npid", "resnet20c")
	cfg.Batch, cfg.Steps, cfg.CheckpointEvery, cfg.LogEvery, cfg.Seed, cfg.WarmupSteps = 8, 120, 0, 1, 5, 5
	cfg.LR = 0.01
	cfg.Pretext = pretext.DefaultConfig(3, 12)
	cfg.Pretext.CropScaleMin = 0.9
	dir := t.TempDir()
	if _, err := train.Run(cfg, noise(32, 12, 1), nil, dir, train.Options{}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var acc, loss []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec map[string]float64
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		acc, loss = append(acc, rec["pretext_acc"]), append(loss, rec["loss"])
	}
	if len(acc) != 120 {
		t.Fatalf("%d metric lines, expected 120", len(acc))
	}
	mean := func(x []float64) float64 {
		s := 0.0
		for _, v := range x {
			s += v
		}
		return s / float64(len(x))
	}
	a0, a1, l0, l1 := mean(acc[:20]), mean(acc[100:]), mean(loss[:20]), mean(loss[100:])
	if a1 < 0.4 || l1 > l0/2 {
		t.Fatalf("first 20 steps: accuracy %.3f, loss %.3f; last 20: accuracy %.3f, loss %.3f (expected accuracy > 0.4 and loss halved)", a0, l0, a1, l1)
	}
}
