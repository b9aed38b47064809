package train

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/models"
)

// imgSet is an in-memory labelled dataset for the recalibration tests.
type imgSet []data.Image

func (s imgSet) Len() int                        { return len(s) }
func (s imgSet) Image(i int) (data.Image, error) { return s[i], nil }
func (s imgSet) Label(int) int                   { return 0 }
func (s imgSet) Classes() []string               { return []string{"x"} }
func (s imgSet) Source(i int) string             { return fmt.Sprintf("mem#%d", i) }

func randomImages(n, c, size int, seed int64) imgSet {
	rng := rand.New(rand.NewSource(seed))
	out := make(imgSet, n)
	for i := range out {
		pix := make([]uint8, c*size*size)
		for j := range pix {
			pix[j] = uint8(rng.Intn(256))
		}
		out[i] = data.Image{C: c, H: size, W: size, Pix: pix}
	}
	return out
}

// channelMoments returns per-channel mean and unbiased variance of t
// [N, C, H, W].
func channelMoments(t models.Tensor) (mean, uvar []float64) {
	n, c, hw := t.Shape[0], t.Shape[1], t.Shape[2]*t.Shape[3]
	mean, uvar = make([]float64, c), make([]float64, c)
	for ch := 0; ch < c; ch++ {
		var s, sq float64
		for i := 0; i < n; i++ {
			for _, v := range t.Data[(i*c+ch)*hw : (i*c+ch+1)*hw] {
				s += float64(v)
				sq += float64(v) * float64(v)
			}
		}
		m := float64(n * hw)
		mean[ch] = s / m
		uvar[ch] = (sq - s*s/m) / (m - 1)
	}
	return mean, uvar
}

// TestRecalibrateBNMatchesReference checks, for every batch norm of
// resnet20c, that the recalibrated running statistics are the mean and
// unbiased variance of the batch norm's input over the images, computed
// by the plain float64 reference forward pass with the recalibrated
// weights (so the layers below are recalibrated alike), and that no
// learned weight changes.
func TestRecalibrateBNMatchesReference(t *testing.T) {
	const n, c, size = 16, 3, 12
	spec, err := models.New("resnet20c", c)
	if err != nil {
		t.Fatal(err)
	}
	w := models.InitWeights(spec, rand.New(rand.NewSource(3)))
	ds := randomImages(n, c, size, 5)
	mean, std := []float32{0.5, 0.4, 0.45}, []float32{0.25, 0.3, 0.2}
	got, err := RecalibrateBN(spec, w, ds, RecalibOptions{Images: n, Batch: n, Channels: c, Size: size, Mean: mean, Std: std})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range w {
		if isRunningStat(k) {
			continue
		}
		for i := range v.Data {
			if got[k].Data[i] != v.Data[i] {
				t.Fatalf("learned weight %s[%d] changed: %g -> %g", k, i, v.Data[i], got[k].Data[i])
			}
		}
	}
	// Every batch norm's input as an extra output of a copy of the spec.
	ref := *spec
	ref.Outputs = map[string]string{"features": spec.Outputs["features"]}
	var bns []models.Layer
	for _, l := range spec.Layers {
		if l.Op == models.OpBatchNorm {
			ref.Outputs[l.Name] = l.Inputs[0]
			bns = append(bns, l)
		}
	}
	x := make([]float32, 0, n*c*size*size)
	for _, img := range ds {
		tt, err := data.Normalize(data.Resize(data.ToTensor(img), size, size), mean, std)
		if err != nil {
			t.Fatal(err)
		}
		x = append(x, tt.Data...)
	}
	// The training-mode pass normalised each batch norm's input with the
	// batch mean and the biased batch variance; with one batch of all the
	// images those are the running mean and running_var*(m-1)/m (m values
	// per channel). The reference runs in inference mode, so it gets those
	// statistics to reproduce the pass exactly.
	train := models.Weights{}
	for k, v := range got {
		train[k] = v
	}
	inShape, err := models.Reference(&ref, got, x, n, size, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range bns {
		sh := inShape[l.Name].Shape
		m := float32(sh[0] * sh[2] * sh[3])
		rv := got[l.Name+".running_var"]
		bv := models.Tensor{Shape: rv.Shape, Data: make([]float32, len(rv.Data))}
		for i, v := range rv.Data {
			bv.Data[i] = v * (m - 1) / m
		}
		train[l.Name+".running_var"] = bv
	}
	acts, err := models.Reference(&ref, train, x, n, size, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for _, l := range bns {
		m, v := channelMoments(acts[l.Name])
		rm, rv := got[l.Name+".running_mean"].Data, got[l.Name+".running_var"].Data
		for ch := range m {
			em := math.Abs(float64(rm[ch])-m[ch]) / (1e-3 + math.Sqrt(v[ch]))
			ev := math.Abs(float64(rv[ch])-v[ch]) / (1e-3 + v[ch])
			worst = max(worst, em, ev)
			if em > 1e-3 || ev > 1e-3 {
				t.Fatalf("%s channel %d: running mean %g var %g, reference %g %g", l.Name, ch, rm[ch], rv[ch], m[ch], v[ch])
			}
		}
	}
	t.Logf("%d batch norms, worst relative error %.2g", len(bns), worst)
}

// TestRecalibrateBNCumulativeMean: over several equal batches the first
// batch norm's running mean is the mean over all images (the cumulative
// average of equal-sized batch means), whatever the batch order.
func TestRecalibrateBNCumulativeMean(t *testing.T) {
	const n, c, size = 24, 1, 8
	spec, err := models.New("resnet20c", c)
	if err != nil {
		t.Fatal(err)
	}
	w := models.InitWeights(spec, rand.New(rand.NewSource(4)))
	ds := randomImages(n, c, size, 6)
	mean, std := []float32{0.5}, []float32{0.3}
	got, err := RecalibrateBN(spec, w, ds, RecalibOptions{Images: n, Batch: 6, Channels: c, Size: size, Mean: mean, Std: std, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	var first models.Layer
	for _, l := range spec.Layers {
		if l.Op == models.OpBatchNorm {
			first = l
			break
		}
	}
	ref := *spec
	ref.Outputs = map[string]string{"features": spec.Outputs["features"], "in": first.Inputs[0]}
	x := make([]float32, 0, n*c*size*size)
	for _, img := range ds {
		tt, _ := data.Normalize(data.ToTensor(img), mean, std)
		x = append(x, tt.Data...)
	}
	acts, err := models.Reference(&ref, got, x, n, size, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, v := channelMoments(acts["in"])
	for ch, rm := range got[first.Name+".running_mean"].Data {
		if d := math.Abs(float64(rm)-m[ch]) / math.Sqrt(v[ch]); d > 1e-4 {
			t.Fatalf("channel %d: running mean %g, mean over all images %g", ch, rm, m[ch])
		}
	}
	if _, err := RecalibrateBN(spec, w, ds, RecalibOptions{Channels: 3, Size: size, Mean: mean, Std: std}); err == nil {
		t.Fatal("3-channel preprocessing for a 1-channel backbone was accepted")
	}
}
