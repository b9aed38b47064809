package dense

import (
	"math/rand"
	"runtime"
	"testing"

	"github.com/selfsup/selfsup/data"
)

// The heads' objectives run their rows in parallel; the loss and the
// gradient must be bit-identical to adding the rows one after another
// (one core), so a probe's numbers do not depend on the machine.
func TestObjectivesSameOnAnyCores(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	m := randMaps(rng, 7, 3, 5, 6)
	r := 6
	labels := make([][]int, m.N)
	targets := make([]DetTarget, m.N)
	for i := range labels {
		labels[i] = make([]int, r*r)
		for p := range labels[i] {
			labels[i][p] = rng.Intn(4) - 1
		}
		targets[i] = MakeTarget([]data.Box{{Class: i % 2, X0: 3, Y0: 4, X1: 30 + float64(i), Y1: 25}}, 60, 50, 2, 5, 6)
	}
	seg := NewSegHead([]int{1, 7, 9}, 3)
	det := NewDetHead(2, 3, 2, 1)
	for _, p := range [][]float32{seg.P, det.P} {
		for i := range p {
			p[i] = float32(rng.NormFloat64() * 0.5)
		}
	}
	rows := []int{6, 0, 3, 2, 5, 1, 4}
	run := func(procs int) (ls, ld float64, gs, gd []float64) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		gs, gd = make([]float64, len(seg.P)), make([]float64, len(det.P))
		return seg.Objective(m, labels, r, rows, 0.1, gs), det.Objective(m, targets, rows, 0.1, gd), gs, gd
	}
	// The sequential reference: each row's lossGrad into the same buffer.
	refS, refD := make([]float64, len(seg.P)), make([]float64, len(det.P))
	var sumS, sumD float64
	for _, i := range rows {
		l, _ := seg.lossGrad(m.At(i), m.H, m.W, labels[i], r, refS)
		sumS += l
		sumD += det.lossGrad(m.At(i), m.H, m.W, targets[i], refD)
	}
	ls1, ld1, gs1, gd1 := run(1)
	ls4, ld4, gs4, gd4 := run(4)
	if ls1 != ls4 || ld1 != ld4 {
		t.Fatalf("losses on 1 and 4 cores: segment %v vs %v, detect %v vs %v", ls1, ls4, ld1, ld4)
	}
	sameBits(t, "segment gradient on 1 and 4 cores", gs1, gs4)
	sameBits(t, "detect gradient on 1 and 4 cores", gd1, gd4)
	// And sumRows on 3 cores is the sequential sum, bit for bit.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	g, h := make([]float64, len(seg.P)), make([]float64, len(det.P))
	gotS := sumRows(rows, g, func(i int, g []float64) float64 { l, _ := seg.lossGrad(m.At(i), m.H, m.W, labels[i], r, g); return l })
	gotD := sumRows(rows, h, func(i int, g []float64) float64 { return det.lossGrad(m.At(i), m.H, m.W, targets[i], g) })
	if gotS != sumS || gotD != sumD {
		t.Fatalf("sumRows on 3 cores: %v, %v; sequential %v, %v", gotS, gotD, sumS, sumD)
	}
	sameBits(t, "segment: sumRows on 3 cores vs sequential", g, refS)
	sameBits(t, "detect: sumRows on 3 cores vs sequential", h, refD)
}

// sameBits fails t at the first entry where a and b differ.
func sameBits(t *testing.T, what string, a, b []float64) {
	t.Helper()
	for j := range a {
		if a[j] != b[j] {
			t.Fatalf("%s: entry %d: %v vs %v", what, j, a[j], b[j])
		}
	}
}
