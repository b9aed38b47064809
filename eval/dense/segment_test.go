package dense

import (
	"math"
	"math/rand"
	"testing"
)

func randMaps(rng *rand.Rand, n, c, h, w int) *Maps {
	m := &Maps{N: n, C: c, H: h, W: w, Data: make([]float32, n*c*h*w)}
	for i := range m.Data {
		m.Data[i] = float32(rng.NormFloat64())
	}
	return m
}

func TestUpsample(t *testing.T) {
	// 1 x 2 -> 1 x 4, align_corners=False: [a, .75a+.25b, .25a+.75b, b].
	got := Upsample([]float32{0, 4}, 1, 1, 2, 1, 4)
	want := []float32{0, 1, 3, 4}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("Upsample = %v, want %v", got, want)
		}
	}
	x := []float32{1, 2, 3, 4, 5, 6}
	if same := Upsample(x, 1, 2, 3, 2, 3); same[4] != 5 {
		t.Errorf("same size changed values: %v", same)
	}
}

func TestSegGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	m := randMaps(rng, 2, 3, 3, 4)
	r := 5
	labels := make([][]int, 2)
	for i := range labels {
		labels[i] = make([]int, r*r)
		for p := range labels[i] {
			labels[i][p] = rng.Intn(4) - 1 // -1 ignored
		}
	}
	h := NewSegHead([]int{1, 7, 9}, 3)
	for i := range h.P {
		h.P[i] = float32(rng.NormFloat64() * 0.5)
	}
	g := make([]float64, len(h.P))
	h.Objective(m, labels, r, []int{0, 1}, 0.3, g)
	tmp := make([]float64, len(h.P))
	for j := range h.P {
		old := h.P[j]
		const eps = 1e-2
		h.P[j] = old + eps
		up := h.Objective(m, labels, r, []int{0, 1}, 0.3, tmp)
		h.P[j] = old - eps
		down := h.Objective(m, labels, r, []int{0, 1}, 0.3, tmp)
		h.P[j] = old
		fd := (up - down) / (2 * eps)
		if math.Abs(fd-g[j]) > 2e-3*math.Max(1, math.Abs(fd)) {
			t.Errorf("parameter %d: gradient %g, finite difference %g", j, g[j], fd)
		}
	}
}

func TestSegTrainSeparable(t *testing.T) {
	// Channel 0's sign decides the class: a linear head must learn it.
	rng := rand.New(rand.NewSource(2))
	m := randMaps(rng, 6, 2, 4, 4)
	labels := make([][]int, m.N)
	for i := range labels {
		labels[i] = make([]int, 16)
		for p := range labels[i] {
			if m.At(i)[p] > 0 {
				labels[i][p] = 1
			}
		}
	}
	h := NewSegHead([]int{3, 5}, 2)
	if err := TrainSeg(h, m, labels, 4, []int{0, 1, 2, 3, 4, 5}, SegTrainConfig{Epochs: 200, LR: 0.05, Batch: 2, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	right := 0
	for i := 0; i < m.N; i++ {
		pred := h.Predict(m.At(i), 4, 4, 4, 4)
		for p, l := range labels[i] {
			if pred[p] == []int{3, 5}[l] {
				right++
			}
		}
	}
	if right < 90 {
		t.Errorf("%d of 96 pixels right on a separable problem", right)
	}
}

func TestScoreSeg(t *testing.T) {
	// Image 0: truth [1 1 2 0], pred [1 2 2 5]; image 1: truth [2 2], pred [2 1].
	c := []SegCounts{CountSeg([]int{1, 1, 2, 0}, []int{1, 2, 2, 5}), CountSeg([]int{2, 2}, []int{2, 1})}
	m := ScoreSeg(c, []int{0, 1})
	// class 1: TP 1, FN 1, FP 1 -> IoU 1/3; class 2: TP 2, FP 1, FN 1 -> 1/2.
	if math.Abs(m.MIoU-(1.0/3+0.5)/2) > 1e-12 || math.Abs(m.PixelAcc-3.0/5) > 1e-12 {
		t.Errorf("mIoU %v pixel acc %v", m.MIoU, m.PixelAcc)
	}
	// Per image: class 1 in image 0 IoU 1/2 (TP1 FN1), dice 2/3; class 2 in
	// image 0: TP1 FP1 -> IoU 1/2, dice 2/3; in image 1: TP1 FN1 -> 1/2, 2/3.
	if math.Abs(m.Jaccard-0.5) > 1e-12 || math.Abs(m.Dice-2.0/3) > 1e-12 {
		t.Errorf("jaccard %v dice %v", m.Jaccard, m.Dice)
	}
	ci := Bootstrap(2, 200, 1, func(idx []int) float64 { return ScoreSeg(c, idx).PixelAcc })
	if !(ci[0] <= 0.6 && ci[1] >= 0.5 && ci[0] <= ci[1]) {
		t.Errorf("bootstrap interval %v", ci)
	}
}
