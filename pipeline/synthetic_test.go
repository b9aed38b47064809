package pipeline

import (
	"path/filepath"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
)

// TestReproduceSynthetic: reproduce takes synthetic as a method with a
// budget of its own (synthetic:DURATION, here overridden by Steps): it
// pretrains on rendered scenes, recalibrates the backbone on the RGB
// training images, exports it with the images' own preprocessing, and
// the row has every probe.
func TestReproduceSynthetic(t *testing.T) {
	testenv.ORT(t)
	c, _, r := reproduceMethod(t, "synthetic:15m")
	if r.Name != "synthetic" || r.BudgetSec != 900 || r.Steps != 2 || !r.BNRecalibrated || r.Linear == nil || r.KNN == nil || r.LowShot == nil ||
		r.Linear.Best.Top1 < 0 || r.Linear.Best.Top1 > 1 || r.PretextAcc < 0 || r.PretextAcc > 1 {
		t.Fatalf("synthetic row %+v", r)
	}
	sess, p, ck := openExported(t, r.Model, filepath.Join(c.Out, "runs", "synthetic"))
	if p.Space != "" || p.Channels != 3 || p.Mean[0] != ck.Config.Pretext.Mean[0] || ck.Config.Pretext.Synthetic == nil {
		t.Fatalf("exported preprocessing %+v, run config %+v", p, ck.Config.Pretext)
	}
	meta, err := sess.Metadata()
	if err != nil || meta["selfsup.bn_recalibrated"] != "true" || meta["selfsup.task"] != "synthetic" {
		t.Fatalf("metadata %v, %v", meta, err)
	}
}
