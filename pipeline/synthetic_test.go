package pipeline

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/runtime"
)

// TestReproduceSynthetic: reproduce takes synthetic as a method with a
// budget of its own (synthetic:DURATION, here overridden by Steps): it
// pretrains on rendered scenes, recalibrates the backbone on the RGB
// training images, exports it with the images' own preprocessing, and
// the row has every probe.
func TestReproduceSynthetic(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	ds := filepath.Join(dir, "toy.tar")
	testenv.ToyTar(t, ds, 64, 20, false)
	var log bytes.Buffer
	c := ReproduceConfig{Data: ds, Out: filepath.Join(dir, "out"), Steps: 2, Methods: []string{"synthetic:15m"}, BNImages: 32, Seed: 1, Log: &log}
	res, err := Reproduce(context.Background(), c)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	r := res.Rows[len(res.Rows)-1]
	if r.Name != "synthetic" || r.BudgetSec != 900 || r.Steps != 2 || !r.BNRecalibrated || r.Linear == nil || r.KNN == nil || r.LowShot == nil ||
		r.Linear.Best.Top1 < 0 || r.Linear.Best.Top1 > 1 || r.PretextAcc < 0 || r.PretextAcc > 1 {
		t.Fatalf("synthetic row %+v", r)
	}
	sess, err := runtime.Open(r.Model, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	p, err := sess.Preprocess()
	if err != nil {
		t.Fatal(err)
	}
	ck, _, err := LatestCheckpoint(filepath.Join(c.Out, "runs", "synthetic"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Space != "" || p.Channels != 3 || p.Mean[0] != ck.Config.Pretext.Mean[0] || ck.Config.Pretext.Synthetic == nil {
		t.Fatalf("exported preprocessing %+v, run config %+v", p, ck.Config.Pretext)
	}
	meta, err := sess.Metadata()
	if err != nil || meta["selfsup.bn_recalibrated"] != "true" || meta["selfsup.task"] != "synthetic" {
		t.Fatalf("metadata %v, %v", meta, err)
	}
}
