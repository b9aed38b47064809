package pipeline

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/train"
)

// TestReproduceSplitBrain: reproduce takes splitbrain with a budget of its
// own ("splitbrain:15m", here overridden by Steps) on the default
// resnet20c: the run trains its split form, resnet20c-split, on Lab
// images; the backbone is recalibrated on the Lab form of the RGB
// training images and exported with the lab input space and the
// concatenated stages, so that the probes extract it from RGB images;
// the row has every probe. A random-init split backbone sees Lab too.
func TestReproduceSplitBrain(t *testing.T) {
	testenv.ORT(t)
	c, ds, r := reproduceMethod(t, "splitbrain:15m")
	if r.Name != "splitbrain" || r.Steps != 2 || r.BudgetSec != 900 || !r.BNRecalibrated || r.Linear == nil || r.KNN == nil || r.LowShot == nil ||
		r.Linear.Best.Top1 < 0 || r.Linear.Best.Top1 > 1 {
		t.Fatalf("splitbrain row %+v", r)
	}
	var layers []string
	for _, l := range r.Linear.Layers {
		layers = append(layers, l.Layer)
	}
	if !slices.Contains(layers, "stage3_pool") || !slices.Contains(layers, "features") {
		t.Fatalf("probed layers %v", layers)
	}
	sess, p, ck := openExported(t, r.Model, filepath.Join(c.Out, "runs", "splitbrain"))
	if ck.Config.Arch != "resnet20c-split" || ck.Config.Pretext.Input != data.SpaceLab || p.Space != data.SpaceLab || p.Channels != 3 ||
		!slices.Equal(p.Mean, ck.Config.Pretext.Mean) || !slices.Equal(p.Std, ck.Config.Pretext.Std) {
		t.Fatalf("exported preprocessing %+v; run arch %s, input %q, mean %v", p, ck.Config.Arch, ck.Config.Pretext.Input, ck.Config.Pretext.Mean)
	}
	meta, err := sess.Metadata()
	if err != nil || meta["selfsup.bn_recalibrated"] != "true" || meta["selfsup.arch"] != "resnet20c-split" {
		t.Fatalf("metadata %v, %v", meta, err)
	}
	var dims []int64
	for _, o := range sess.Outputs() {
		if o.Name == "features" || o.Name == "stage3_pool" {
			dims = append(dims, o.Shape[1])
		}
	}
	if !slices.Equal(dims, []int64{64, 64 * 16}) {
		t.Fatalf("features and stage3_pool have %v values, expected the halves' 32 + 32 (times 4x4 cells)", dims)
	}
	// The recalibration saw Lab: redoing it on the RGB training images
	// through the same path gives the exported statistics; an RGB one
	// differs.
	all, err := data.Load(ds, "train", data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := BackboneFromCheckpoint(ck)
	if err != nil {
		t.Fatal(err)
	}
	opts := train.RecalibOptions{Images: 32, Seed: 1, Channels: 3, Space: data.SpaceLab, Size: b.Size, Mean: b.Mean, Std: b.Std}
	w, err := train.RecalibrateBN(b.Spec, b.Weights, all, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Space = ""
	rgb, err := train.RecalibrateBN(b.Spec, b.Weights, all, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Recalibrate(all, 32, 1); err != nil {
		t.Fatal(err)
	}
	const key = "ab.stem.bn.running_mean"
	if !slices.Equal(b.Weights[key].Data, w[key].Data) || slices.Equal(b.Weights[key].Data, rgb[key].Data) {
		t.Fatalf("%s: recalibrated %v, on Lab %v, on RGB %v", key, b.Weights[key].Data[:3], w[key].Data[:3], rgb[key].Data[:3])
	}
	for k, v := range w {
		if !slices.Equal(b.Weights[k].Data, v.Data) {
			t.Fatalf("%s differs from the recalibration on Lab", k)
		}
	}
	// The random init of the split architecture: Lab input, statistics
	// of the Lab images.
	rb, err := RandomBackbone("resnet20c-split", 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := rb.Recalibrate(all, 32, 1); err != nil {
		t.Fatal(err)
	}
	mean, _, _ := data.LabStats(all, data.StatsImages)
	if rb.Space != data.SpaceLab || !slices.Equal(rb.Mean, mean) {
		t.Fatalf("random-init split backbone: space %q, mean %v (Lab statistics %v)", rb.Space, rb.Mean, mean)
	}
	if _, err := RandomBackbone("resnet20c-split", 1, 1); err == nil {
		t.Fatal("a one-channel split backbone accepted")
	}
}
