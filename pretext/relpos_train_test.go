package pretext_test

import (
	"bufio"
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/pretext"
	"github.com/selfsup/selfsup/train"
)

// newRelposDiscs makes n S x S RGB images of a bright disc (radius
// 0.36-0.42 S) near the centre of a dark background, with pixel noise:
// every neighbour cell of the 3x3 grid shows a piece of the disc's rim at
// its own orientation, so the relative position of a patch can be read
// from its content, as in natural images.
func newRelposDiscs(n, size int, seed int64) *memSet {
	rng := rand.New(rand.NewSource(seed))
	s := &memSet{}
	for i := 0; i < n; i++ {
		img := data.Image{C: 3, H: size, W: size, Pix: make([]uint8, 3*size*size)}
		cy := float64(size)/2 + rng.Float64()*2 - 1
		cx := float64(size)/2 + rng.Float64()*2 - 1
		r := float64(size) * (0.36 + 0.06*rng.Float64())
		var bg, fg [3]float64
		for c := range bg {
			bg[c], fg[c] = 20+80*rng.Float64(), 150+80*rng.Float64()
		}
		for c := 0; c < 3; c++ {
			for y := 0; y < size; y++ {
				for x := 0; x < size; x++ {
					v := bg[c]
					if math.Hypot(float64(y)+0.5-cy, float64(x)+0.5-cx) < r {
						v = fg[c]
					}
					img.Pix[(c*size+y)*size+x] = uint8(min(max(v+20*rng.NormFloat64(), 0), 255))
				}
			}
		}
		s.imgs = append(s.imgs, img)
	}
	return s
}

// TestRelPosLearns trains resnet20c on the relpos task (default geometry
// and shortcut protections for 20 px images: 21 px patches, colour
// dropping) over disc images through train.Run, and checks that the loss
// falls well below that of chance, ln 8 = 2.08, that the held-out accuracy
// is far above 1/8, that the checkpoint holds the head, and that
// EvaluatePretext (behind `selfsup eval pretext`) reproduces the held-out
// accuracy the trainer reported. About 5 s on 2 idle cores; under -short
// it runs 3 steps and checks only the plumbing.
func TestRelPosLearns(t *testing.T) {
	cfg := train.DefaultConfig("relpos", "resnet20c")
	cfg.Batch, cfg.Steps, cfg.CheckpointEvery, cfg.LogEvery, cfg.Seed, cfg.WarmupSteps = 8, 80, 0, 1, 1, 5
	cfg.LR = 0.1
	if testing.Short() {
		cfg.Steps = 3
	}
	cfg.Pretext = pretext.DefaultConfig(3, 20)
	val := newRelposDiscs(32, 20, 2)
	dir := t.TempDir()
	res, err := train.Run(cfg, newRelposDiscs(64, 20, 1), val, dir, train.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var losses []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec map[string]float64
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if l, ok := rec["loss"]; ok {
			losses = append(losses, l)
		}
	}
	if len(losses) != cfg.Steps {
		t.Fatalf("%d loss lines, expected %d", len(losses), cfg.Steps)
	}
	mean := func(v []float64) float64 {
		var s float64
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	first, last := mean(losses[:min(5, len(losses))]), mean(losses[max(0, len(losses)-20):])
	t.Logf("loss: first 5 steps %.3f, last 20 steps %.3f (ln 8 = %.3f); held-out accuracy %.3f; %.1fs", first, last, math.Log(8), res.ValPretext, res.Seconds)
	if math.IsNaN(last) || math.IsInf(last, 0) {
		t.Fatalf("loss %v", last)
	}
	if math.Abs(first-math.Log(8)) > 0.5 {
		t.Fatalf("first steps' loss %.3f, expected about ln 8 = %.3f at initialisation", first, math.Log(8))
	}
	if !testing.Short() && last > 0.65*math.Log(8) {
		t.Fatalf("last steps' loss %.3f, expected well below ln 8 = %.3f", last, math.Log(8))
	}
	if !testing.Short() && res.ValPretext < 0.4 {
		t.Fatalf("held-out accuracy %.3f, expected well above chance (0.125)", res.ValPretext)
	}
	if res.ValPretext < 0 || res.ValPretext > 1 {
		t.Fatalf("held-out accuracy %v", res.ValPretext)
	}
	ck, err := train.LoadCheckpoint(res.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	if len(ck.Heads) != 4 || ck.Heads["head.fc8.weight"].Shape[0] != 8 || ck.Heads["head.fc7.weight"].Shape[1] != 2*64 {
		t.Fatalf("checkpoint heads %v", ck.Heads.Names())
	}
	acc, n, err := train.EvaluatePretext(ck, val)
	if err != nil {
		t.Fatal(err)
	}
	if n != 32 || acc != res.ValPretext {
		t.Fatalf("EvaluatePretext: %.4f on %d images; the trainer reported %.4f", acc, n, res.ValPretext)
	}
}
