package pipeline

import (
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/train"
)

// TestReproduceColorization: reproduce takes colorization as a method on
// RGB data: its backbone (1 channel) is recalibrated on the lightness of
// the RGB training images and exported with the lab-l input space, so
// that the probes extract it from RGB images; the row has every probe.
func TestReproduceColorization(t *testing.T) {
	testenv.ORT(t)
	c, ds, r := reproduceMethod(t, "colorization")
	if r.Name != "colorization" || r.Steps != 2 || !r.BNRecalibrated || r.Linear == nil || r.KNN == nil || r.LowShot == nil ||
		r.Linear.Best.Top1 < 0 || r.Linear.Best.Top1 > 1 {
		t.Fatalf("colorization row %+v", r)
	}
	sess, p, ck := openExported(t, r.Model, filepath.Join(c.Out, "runs", "colorization"))
	if p.Space != data.SpaceLabL || p.Channels != 1 || p.Mean[0] != ck.Config.Pretext.Mean[0] || ck.Config.Pretext.Input != data.SpaceLabL {
		t.Fatalf("exported preprocessing %+v, run config input %q mean %v", p, ck.Config.Pretext.Input, ck.Config.Pretext.Mean)
	}
	meta, err := sess.Metadata()
	if err != nil || meta["selfsup.bn_recalibrated"] != "true" {
		t.Fatalf("metadata %v, %v", meta, err)
	}
	// The recalibration saw lightness: redoing it on the RGB training
	// images through the same path gives the exported statistics.
	all, err := data.Load(ds, "train", data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := BackboneFromCheckpoint(ck)
	if err != nil {
		t.Fatal(err)
	}
	w, err := train.RecalibrateBN(b.Spec, b.Weights, all, train.RecalibOptions{Images: 32, Seed: 1, Channels: 1, Space: data.SpaceLabL, Size: b.Size, Mean: b.Mean, Std: b.Std})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := train.RecalibrateBN(b.Spec, b.Weights, all, train.RecalibOptions{Images: 32, Seed: 1, Channels: 1, Size: b.Size, Mean: b.Mean, Std: b.Std}); err == nil {
		t.Fatal("RGB images recalibrated a 1-channel backbone without the lightness space")
	}
	if err := b.Recalibrate(all, 32, 1); err != nil {
		t.Fatal(err)
	}
	for k, v := range w {
		for i := range v.Data {
			if b.Weights[k].Data[i] != v.Data[i] {
				t.Fatalf("%s[%d]: %v vs %v", k, i, b.Weights[k].Data[i], v.Data[i])
			}
		}
	}
}
