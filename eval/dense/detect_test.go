package dense

import (
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/selfsup/selfsup/data"
)

func TestDetGradient(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	m := randMaps(rng, 2, 3, 5, 6)
	boxes := [][]data.Box{{{Class: 0, X0: 2, Y0: 3, X1: 20, Y1: 18}, {Class: 1, X0: 30, Y0: 10, X1: 58, Y1: 48}}, {{Class: 1, X0: 0, Y0: 0, X1: 12, Y1: 40}}}
	targets := []DetTarget{MakeTarget(boxes[0], 60, 50, 2, 5, 6), MakeTarget(boxes[1], 60, 50, 2, 5, 6)}
	if targets[0].Objects != 2 || targets[0].Heat[targets[0].Cell[0]] != 1 {
		t.Fatalf("targets %+v", targets[0])
	}
	for _, hidden := range []int{0, 2} {
		d := NewDetHead(2, 3, hidden, 1)
		for i := range d.P {
			d.P[i] = float32(rng.NormFloat64() * 0.5)
		}
		g := make([]float64, len(d.P))
		d.Objective(m, targets, []int{0, 1}, 0.1, g)
		tmp := make([]float64, len(d.P))
		bad := 0
		for j := range d.P {
			old := d.P[j]
			const eps = 1e-3
			d.P[j] = old + eps
			up := d.Objective(m, targets, []int{0, 1}, 0.1, tmp)
			d.P[j] = old - eps
			down := d.Objective(m, targets, []int{0, 1}, 0.1, tmp)
			d.P[j] = old
			fd := (up - down) / (2 * eps)
			if math.Abs(fd-g[j]) > 5e-3*math.Max(1, math.Abs(fd)) {
				bad++
				if bad < 5 {
					t.Errorf("hidden %d, parameter %d of %d: gradient %g, finite difference %g", hidden, j, len(d.P), g[j], fd)
				}
			}
		}
	}
}

func TestDetTrainAndDecode(t *testing.T) {
	// One bright channel marks each object's centre cell; a linear head
	// must find the objects, and decode their boxes.
	rng := rand.New(rand.NewSource(4))
	const n, h, w = 8, 8, 8
	m := &Maps{N: n, C: 2, H: h, W: w, Data: make([]float32, n*2*h*w)}
	var targets []DetTarget
	var truth [][]data.Box
	for i := 0; i < n; i++ {
		x, y := 1+rng.Intn(6), 1+rng.Intn(6)
		b := data.Box{Class: 0, X0: float64(x*8 - 8), Y0: float64(y*8 - 8), X1: float64(x*8 + 16), Y1: float64(y*8 + 16)}
		truth = append(truth, []data.Box{b})
		targets = append(targets, MakeTarget(truth[i], 64, 64, 1, h, w))
		m.At(i)[targets[i].Cell[0]] = 3
		for p := 0; p < h*w; p++ {
			m.At(i)[h*w+p] = 1
		}
	}
	d := NewDetHead(1, 2, 0, 1)
	if err := TrainDet(d, m, targets, seq(n), DetTrainConfig{Epochs: 300, Batch: 4, LR: 0.05, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		p := d.Decode(m.At(i), h, w, 64, 64, 100)
		if len(p) == 0 {
			t.Fatal("no detections")
		}
		b, want := p[0].Box, truth[i][0]
		if math.Abs(b.X0-want.X0) > 4 || math.Abs(b.Y1-want.Y1) > 4 {
			t.Errorf("image %d: top box %+v, want %+v", i, b, want)
		}
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// InitFromTargets starts the size and offset outputs at the objects' mean:
// on all-zero features both heads then decode every peak as a box of the
// mean size (in pixels) centred at the mean offset.
func TestDetInitFromTargets(t *testing.T) {
	const h, w = 8, 8
	boxes := [][]data.Box{{{X0: 0, Y0: 0, X1: 16, Y1: 8}}, {{X0: 20, Y0: 20, X1: 28, Y1: 44}, {X0: 40, Y0: 8, X1: 64, Y1: 24}}}
	var targets []DetTarget
	for _, b := range boxes {
		targets = append(targets, MakeTarget(b, 64, 64, 1, h, w))
	}
	// Sizes in cells of 8 px: (2,1), (1,3), (3,2): mean (2, 2); centre
	// offsets in their cells (0,0.5), (0,0), (0.5,0): mean (1/6, 1/6).
	zero := make([]float32, 3*h*w)
	for _, hidden := range []int{0, 4} {
		d := NewDetHead(1, 3, hidden, 1)
		d.InitFromTargets(targets, []int{0, 1})
		b := d.outBias()
		if math.Abs(float64(b[1])-2) > 1e-6 || math.Abs(float64(b[2])-2) > 1e-6 || math.Abs(float64(b[3])-1.0/6) > 1e-6 || math.Abs(float64(b[4])-1.0/6) > 1e-6 || b[0] != -2.19 {
			t.Fatalf("hidden %d: biases %v", hidden, b)
		}
		inside := 0
		for _, p := range d.Decode(zero, h, w, 64, 64, h*w) { // all cells tie: every one is a peak
			if p.Box.X0 <= 0 || p.Box.Y0 <= 0 || p.Box.X1 >= 64 || p.Box.Y1 >= 64 {
				continue // clamped at the image's edge
			}
			inside++
			if math.Abs(p.Box.W()-16) > 1e-4 || math.Abs(p.Box.H()-16) > 1e-4 {
				t.Fatalf("hidden %d: decoded %+v, want a 16 x 16 px box", hidden, p.Box)
			}
		}
		if inside == 0 {
			t.Fatalf("hidden %d: no box inside the image", hidden)
		}
	}
	d := NewDetHead(1, 3, 0, 1)
	before := append([]float32(nil), d.P...)
	d.InitFromTargets(targets, nil)
	if !slices.Equal(before, d.P) {
		t.Error("InitFromTargets without objects changed the head")
	}
}
