package models

import (
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/ops"
)

// TestSplitSpec: resnet20c-split is two resnet20c of half width (8, 16,
// 32 channels) whose parameters carry their half's prefix, together as
// wide as resnet20c (64 features, stages of 16, 32, 64 channels), with a
// slice of the input for each half and taps for each half's outputs;
// split forms are not listed by Names, need two input channels and exist
// only for registered architectures.
func TestSplitSpec(t *testing.T) {
	s, err := New("resnet20c-split", 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(nil); err != nil {
		t.Fatal(err)
	}
	if s.Arch != "resnet20c-split" || s.InC != 3 || s.InputSize != 32 || s.FeatureDim != 64 || !IsSplit(s.Arch) || IsSplit("resnet20c") {
		t.Fatalf("spec %s: %d channels, %d px, %d features", s.Arch, s.InC, s.InputSize, s.FeatureDim)
	}
	full, _ := New("resnet20c", 3)
	l, _ := New("resnet20c", 1)
	ab, _ := New("resnet20c", 2)
	lh, err := HalfWidth(l)
	if err != nil {
		t.Fatal(err)
	}
	abh, _ := HalfWidth(ab)
	want := map[string][]int{}
	for _, p := range lh.Params() {
		want["l."+p.Name] = p.Shape
	}
	for _, p := range abh.Params() {
		want["ab."+p.Name] = p.Shape
	}
	got := s.Params()
	if len(got) != len(want) || len(got) != 2*len(full.Params()) {
		t.Fatalf("%d parameters, expected %d (twice resnet20c's %d)", len(got), len(want), len(full.Params()))
	}
	for _, p := range got {
		if !slices.Equal(want[p.Name], p.Shape) {
			t.Fatalf("parameter %s has shape %v, expected %v", p.Name, p.Shape, want[p.Name])
		}
	}
	for name, shape := range map[string][]int{"l.stem.conv.weight": {8, 1, 3, 3}, "ab.stem.conv.weight": {8, 2, 3, 3},
		"l.layer3.2.2.conv.weight": {32, 32, 3, 3}, "ab.layer2.0.down.conv.weight": {16, 8, 1, 1}, "ab.layer3.2.2.bn.running_var": {32}} {
		if !slices.Equal(want[name], shape) {
			t.Errorf("%s: shape %v, expected %v", name, want[name], shape)
		}
	}
	for _, o := range []string{"features", "stage1", "stage2", "stage3"} {
		if _, ok := s.Outputs[o]; !ok {
			t.Errorf("no output %s", o)
		}
		for _, h := range SplitHalves {
			if _, ok := s.Taps[h+"."+o]; !ok {
				t.Errorf("no tap %s.%s", h, o)
			}
		}
	}
	if len(s.Outputs) != 4 || len(s.Taps) != 8 {
		t.Errorf("outputs %v, taps %v", s.Outputs, s.Taps)
	}
	for _, n := range Names() {
		if strings.Contains(n, SplitSuffix) {
			t.Errorf("Names lists %s", n)
		}
	}
	if _, err := New("resnet20c-split", 1); err == nil {
		t.Error("a split backbone with one input channel accepted")
	}
	if _, err := New("resnet999-split", 3); err == nil {
		t.Error("the split form of an unknown architecture accepted")
	}
	bad := *s
	bad.Layers = append([]Layer(nil), s.Layers...)
	bad.Layers[0].To = 4
	if err := bad.Validate(nil); err == nil {
		t.Error("a slice past the input channels accepted")
	}
	odd := &Spec{Arch: "odd", InC: 1, Outputs: map[string]string{"features": "c"}, Layers: []Layer{{Name: "c", Op: OpConv, Inputs: []string{InputName}, Kernel: 1, Stride: 1, InC: 1, OutC: 3}}}
	if _, err := HalfWidth(odd); err == nil {
		t.Error("halving 3 channels accepted")
	}
}

// TestSplitIsTwoHalves: the reference forward of resnet20c-split on a
// 3-channel input is, output by output, the channel concatenation of two
// independent half-width resnet20c run on channel 0 and on channels 1-2
// with the weights of each half; the taps are each half's outputs.
func TestSplitIsTwoHalves(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	s, _ := New("resnet20c-split", 3)
	w := InitWeights(s, rng)
	randomiseBN(s, w, rng)
	const n, h = 2, 16
	x := make([]float32, n*3*h*h)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	names := []string{"features", "stage1", "stage2", "stage3"}
	ref, err := Reference(s, w, x, n, h, h, append(names, "l.stage2", "ab.features"))
	if err != nil {
		t.Fatal(err)
	}
	halves := map[string]map[string]Tensor{}
	for i, half := range SplitHalves {
		from, to := []int{0, 1}[i], []int{1, 3}[i]
		base, _ := New("resnet20c", to-from)
		hs, _ := HalfWidth(base)
		hw := Weights{}
		for k, v := range w {
			if rest, ok := strings.CutPrefix(k, half+"."); ok {
				hw[rest] = v
			}
		}
		var xi []float32
		for b := 0; b < n; b++ {
			xi = append(xi, x[(b*3+from)*h*h:(b*3+to)*h*h]...)
		}
		if halves[half], err = Reference(hs, hw, xi, n, h, h, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range names {
		l, ab := halves["l"][o], halves["ab"][o]
		got := ref[o]
		if got.Shape[1] != l.Shape[1]+ab.Shape[1] {
			t.Fatalf("%s: shape %v from halves %v and %v", o, got.Shape, l.Shape, ab.Shape)
		}
		per := len(got.Data) / n
		for b := 0; b < n; b++ {
			want := append(append([]float32(nil), l.Data[b*len(l.Data)/n:(b+1)*len(l.Data)/n]...), ab.Data[b*len(ab.Data)/n:(b+1)*len(ab.Data)/n]...)
			if !slices.Equal(got.Data[b*per:(b+1)*per], want) {
				t.Fatalf("%s of image %d is not the concatenation of the halves'", o, b)
			}
		}
	}
	if !slices.Equal(ref["l.stage2"].Data, halves["l"]["stage2"].Data) || !slices.Equal(ref["ab.features"].Data, halves["ab"]["features"].Data) {
		t.Fatal("the taps are not the halves' outputs")
	}
}

// TestSplitGradientsAreTheHalves': a training step of resnet20c-split
// (batch statistics, the running statistics updated) gives each half's
// parameters the gradients, and its batch norms the statistics, of the
// half trained alone on its channels with the same output gradients.
func TestSplitGradientsAreTheHalves(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	s, _ := New("resnet20c-split", 3)
	w := InitWeights(s, rng)
	const n, h = 3, 8
	x := make([]float32, n*3*h*h)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	ref, err := Reference(s, w, x, n, h, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := map[string][]float32{}
	for name, o := range ref {
		r[name] = make([]float32, len(o.Data))
		for i := range r[name] {
			r[name][i] = float32(rng.NormFloat64())
		}
	}
	split := runLayout(t, s, w, x, n, h, r, ops.NCHW)
	for i, half := range SplitHalves {
		from, to := []int{0, 1}[i], []int{1, 3}[i]
		base, _ := New("resnet20c", to-from)
		hs, _ := HalfWidth(base)
		hw := Weights{}
		for k, v := range w {
			if rest, ok := strings.CutPrefix(k, half+"."); ok {
				hw[rest] = v
			}
		}
		var xi []float32
		for b := 0; b < n; b++ {
			xi = append(xi, x[(b*3+from)*h*h:(b*3+to)*h*h]...)
		}
		// The half's share of every output gradient: its channels.
		hr := map[string][]float32{}
		for name, o := range ref {
			c, inner := o.Shape[1], len(o.Data)/(n*o.Shape[1])
			lo, hi := 0, c/2
			if i == 1 {
				lo, hi = c/2, c
			}
			for b := 0; b < n; b++ {
				hr[name] = append(hr[name], r[name][(b*c+lo)*inner:(b*c+hi)*inner]...)
			}
		}
		alone := runLayout(t, hs, hw, xi, n, h, hr, ops.NCHW)
		for name, g := range alone.grads {
			if d := maxRelDiff(split.grads[half+"."+name], g); d > 1e-5 {
				t.Errorf("gradient of %s.%s: split vs alone relative difference %g", half, name, d)
			}
		}
		for name, v := range alone.bn {
			if d := maxRelDiff(split.bn[half+"."+name].Data, v.Data); d > 1e-6 {
				t.Errorf("%s.%s after the step: split vs alone relative difference %g", half, name, d)
			}
		}
	}
}
