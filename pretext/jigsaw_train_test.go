package pretext_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/pretext"
	"github.com/selfsup/selfsup/train"
)

// memSet is an unlabelled in-memory dataset (random images, discs, shapes:
// see its constructors).
type memSet struct{ imgs []data.Image }

func (s *memSet) Len() int                        { return len(s.imgs) }
func (s *memSet) Image(i int) (data.Image, error) { return s.imgs[i], nil }
func (s *memSet) Label(int) int                   { return -1 }
func (s *memSet) Classes() []string               { return nil }
func (s *memSet) Source(i int) string             { return fmt.Sprintf("memory:%d", i) }

func noise(n, size int, seed int64) *memSet {
	rng := rand.New(rand.NewSource(seed))
	s := &memSet{}
	for i := 0; i < n; i++ {
		img := data.Image{C: 3, H: size, W: size, Pix: make([]uint8, 3*size*size)}
		for j := range img.Pix {
			img.Pix[j] = uint8(rng.Intn(256))
		}
		s.imgs = append(s.imgs, img)
	}
	return s
}

// TestJigsawTrainsAndResumes runs a few steps of train.Run with the jigsaw
// task (resnet20c on 12 px tiles) and checks a finite loss, the logged
// pretext accuracy, the held-out accuracy, that the jigsaw config travels
// in the checkpoint, and that a run stopped and resumed from it ends with
// the same weights.
func TestJigsawTrainsAndResumes(t *testing.T) {
	cfg := train.DefaultConfig("jigsaw", "resnet20c")
	cfg.Batch, cfg.Steps, cfg.CheckpointEvery, cfg.LogEvery, cfg.Seed, cfg.WarmupSteps = 4, 3, 0, 1, 3, 1
	cfg.Pretext = pretext.DefaultConfig(3, 20)
	j := pretext.DefaultJigsawConfig(20)
	j.N, j.Hidden = 12, 32
	j.Tiles.Crop, j.Tiles.Tile, j.Tiles.ChannelShift = 42, 12, 1
	cfg.Pretext.Jigsaw = &j
	dir := t.TempDir()
	res, err := train.Run(cfg, noise(16, 20, 1), noise(8, 20, 2), dir, train.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 3 || math.IsNaN(res.FinalLoss) || math.IsInf(res.FinalLoss, 0) || res.FinalLoss <= 0 {
		t.Fatalf("steps %d, final loss %v", res.Steps, res.FinalLoss)
	}
	// At initialisation the loss is near log(N).
	if res.FinalLoss > 3*math.Log(12) {
		t.Fatalf("final loss %v, far above log(12) = %.3f", res.FinalLoss, math.Log(12))
	}
	if res.ValPretext < 0 || res.ValPretext > 1 {
		t.Fatalf("held-out accuracy %v", res.ValPretext)
	}
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	logged := 0
	for sc.Scan() {
		var rec map[string]float64
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if acc, ok := rec["pretext_acc"]; ok {
			if acc < 0 || acc > 1 {
				t.Fatalf("pretext_acc %v", acc)
			}
			logged++
		}
	}
	if logged != 3 {
		t.Fatalf("%d metrics lines with pretext_acc, expected 3", logged)
	}
	ck, err := train.LoadCheckpoint(res.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	got := ck.Config.Pretext.Jigsaw
	if got == nil || got.N != 12 || got.Tiles.Tile != 12 || got.Tiles.Crop != 42 {
		t.Fatalf("checkpoint jigsaw config %+v", got)
	}
	if len(ck.Heads) != 14 || ck.Heads["head.fc8.weight"].Shape[0] != 12 {
		t.Fatalf("checkpoint heads %v", ck.Heads.Names())
	}

	dir2 := t.TempDir()
	if _, err := train.Run(cfg, noise(16, 20, 1), nil, dir2, train.Options{StopAfter: 2}); err != nil {
		t.Fatal(err)
	}
	res2, err := train.Run(train.Config{}, noise(16, 20, 1), nil, dir2, train.Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	ck2, err := train.LoadCheckpoint(res2.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	if !res2.Resumed || ck2.Step != 3 {
		t.Fatalf("resumed %v at step %d", res2.Resumed, ck2.Step)
	}
	for _, w := range []struct {
		name string
		a, b map[string][]float32
	}{{"backbone", flat(ck.Backbone), flat(ck2.Backbone)}, {"heads", flat(ck.Heads), flat(ck2.Heads)}} {
		for k, v := range w.a {
			u := w.b[k]
			if len(u) != len(v) {
				t.Fatalf("resumed %s %s has %d values, expected %d", w.name, k, len(u), len(v))
			}
			for i := range v {
				if u[i] != v[i] {
					t.Fatalf("resumed %s %s[%d] = %v, uninterrupted run %v", w.name, k, i, u[i], v[i])
				}
			}
		}
	}
}

func flat(w models.Weights) map[string][]float32 {
	out := map[string][]float32{}
	for k, v := range w {
		out[k] = v.Data
	}
	return out
}
