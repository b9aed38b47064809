package export_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/export"
	"github.com/selfsup/selfsup/models"
	"github.com/selfsup/selfsup/runtime"
)

// poolStage averages a stage map [N, C, H, W] over the windows PoolWindow
// documents (cell i of an axis covers [i*s, i*s+k)), in float64 with plain
// loops, and returns [N, C*gh*gw] in C order.
func poolStage(t *testing.T, m models.Tensor) models.Tensor {
	t.Helper()
	if len(m.Shape) != 4 {
		t.Fatalf("stage map shape %v, expected [N, C, H, W]", m.Shape)
	}
	N, C, H, W := m.Shape[0], m.Shape[1], m.Shape[2], m.Shape[3]
	gh, kh, sh := export.PoolWindow(H)
	gw, kw, sw := export.PoolWindow(W)
	out := models.Tensor{Shape: []int{N, C * gh * gw}, Data: make([]float32, N*C*gh*gw)}
	for p := 0; p < N*C; p++ {
		plane := m.Data[p*H*W : (p+1)*H*W]
		for i := 0; i < gh; i++ {
			for j := 0; j < gw; j++ {
				var sum float64
				for y := i * sh; y < i*sh+kh; y++ {
					for x := j * sw; x < j*sw+kw; x++ {
						sum += float64(plane[y*W+x])
					}
				}
				out.Data[(p*gh+i)*gw+j] = float32(sum / float64(kh*kw))
			}
		}
	}
	return out
}

// TestPooledParityORT exports networks with every output (AllOutputs: the
// features, the stage maps and their pooled forms), runs them with ONNX
// Runtime through runtime.Session and checks each pooled output three ways:
// against the pooling of ORT's own stage map (the pooling alone, max |diff|
// <= 1e-6 * scale), against the in-repo interpreter export.Run on the same
// file (<= 1e-5 * scale), and against the pooling of the stage map of the
// Gorgonia inference forward pass that training uses (<= 1e-4 * scale, as
// TestParityORTvsGorgonia). resnet20c at 32 px tiles its 32/16/8 maps;
// at 28 px the 14 and 7 maps use overlapping windows; resnet18 at 56 px has
// 14/7/4/2 maps (a 2x2 grid on stage4); resnet20c-split's stage maps are
// the concatenations of its halves' (8 + 8, 16 + 16, 32 + 32 channels).
func TestPooledParityORT(t *testing.T) {
	needORT(t)
	for _, c := range []struct {
		arch       string
		n, size    int
		fold       bool
		wantShapes map[string][]int64
	}{
		{"resnet20c", 2, 32, true, map[string][]int64{"stage1_pool": {2, 256}, "stage2_pool": {2, 512}, "stage3_pool": {2, 1024}}},
		{"resnet20c", 1, 28, false, map[string][]int64{"stage1_pool": {1, 256}, "stage2_pool": {1, 512}, "stage3_pool": {1, 1024}}},
		{"resnet18", 1, 56, true, map[string][]int64{"stage1_pool": {1, 1024}, "stage2_pool": {1, 2048}, "stage3_pool": {1, 4096}, "stage4_pool": {1, 2048}}},
		{"resnet20c-split", 2, 32, true, map[string][]int64{"stage1_pool": {2, 256}, "stage2_pool": {2, 512}, "stage3_pool": {2, 1024}}},
	} {
		name := fmt.Sprintf("%s/%dpx/fold=%v", c.arch, c.size, c.fold)
		t.Run(name, func(t *testing.T) {
			spec, w := parityNet(t, c.arch, 11)
			outs := export.AllOutputs(spec, false)
			m, err := export.Build(spec, w, export.Options{Outputs: outs, FoldBN: c.fold, InputSize: c.size})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "model.onnx")
			if err := export.Write(path, m); err != nil {
				t.Fatal(err)
			}
			x := normalInput(13, c.n*spec.InC*c.size*c.size)
			if runtime.PooledSuffix != export.PoolSuffix {
				t.Fatalf("runtime.PooledSuffix %q differs from export.PoolSuffix %q", runtime.PooledSuffix, export.PoolSuffix)
			}
			shape := []int{c.n, spec.InC, c.size, c.size}
			sess, err := runtime.Open(path, runtime.Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := sess.Run(x, shape64(shape), outs...)
			layers, lerr := runtime.LayerOutputs(sess, "all")
			var wantLayers []string
			for _, o := range outs {
				if strings.HasSuffix(o, export.PoolSuffix) {
					wantLayers = append(wantLayers, o)
				}
			}
			wantLayers = append(wantLayers, export.FeaturesOutput)
			if lerr != nil || strings.Join(layers, ",") != strings.Join(wantLayers, ",") {
				t.Errorf("runtime.LayerOutputs(all) = %v, %v; expected %v", layers, lerr, wantLayers)
			}
			if cerr := sess.Close(); cerr != nil {
				t.Error(cerr)
			}
			if err != nil {
				t.Fatal(err)
			}
			loaded, err := export.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			interp, err := export.Run(loaded, x, shape)
			if err != nil {
				t.Fatal(err)
			}
			gorg := gorgoniaForward(t, spec, w, x, c.n, c.size, c.size)
			for _, o := range outs {
				stage, ok := strings.CutSuffix(o, export.PoolSuffix)
				if !ok {
					continue
				}
				ort := got[o]
				if want := c.wantShapes[o]; !equal64(ort.Shape, want) {
					t.Fatalf("%s: ORT shape %v, expected %v", o, ort.Shape, want)
				}
				ortMap := models.Tensor{Shape: int64s(got[stage].Shape), Data: got[stage].Data}
				for _, cmp := range []struct {
					what string
					ref  []float32
					tol  float64
				}{
					{"pool(ORT " + stage + ")", poolStage(t, ortMap).Data, 1e-6},
					{"export.Run", interp[o].Data, 1e-5},
					{"pool(Gorgonia " + stage + ")", poolStage(t, gorg[stage]).Data, 1e-4},
				} {
					d, scale := maxDiff(t, o+" vs "+cmp.what, ort.Data, cmp.ref)
					if scale == 0 {
						t.Errorf("%s vs %s: reference is all zeros; the comparison proves nothing", o, cmp.what)
					}
					if d > cmp.tol*scale {
						t.Errorf("%s %v: max |ORT - %s| %.3g exceeds %.0e * scale %.3g", o, ort.Shape, cmp.what, d, cmp.tol, scale)
					}
					t.Logf("%s %v: max |ORT - %s| %.2g, scale %.3g (ratio %.1e)", o, ort.Shape, cmp.what, d, scale, d/scale)
				}
			}
		})
	}
}

func int64s(s []int64) []int {
	r := make([]int, len(s))
	for i, v := range s {
		r[i] = int(v)
	}
	return r
}
