package eval

import (
	"math/rand"
	"slices"
	"testing"
)

// The validation split comes from the training set alone: changing the test
// set (labels permuted, features replaced) changes neither the validation
// accuracies nor the chosen L2.
func TestLinearProbeNeverLooksAtTest(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	n, d, k := 800, 30, 4
	allX, allY := randomProblem(rng, n+300, d, k, 1)
	x, y, testX, testY := allX[:n*d], allY[:n], allX[n*d:], allY[n:]
	cfg := ProbeConfig{MaxIter: 40, Seed: 1, Workers: 2}
	ref, err := LinearProbe(x, y, testX, testY, d, k, cfg)
	if err != nil {
		t.Fatal(err)
	}
	permY := slices.Clone(testY)
	rng.Shuffle(len(permY), func(i, j int) { permY[i], permY[j] = permY[j], permY[i] })
	otherX := randSlice(rng, len(testX))
	for name, tc := range map[string]struct {
		x []float32
		y []int
	}{"permuted labels": {testX, permY}, "other features": {otherX, testY}} {
		got, err := LinearProbe(x, y, tc.x, tc.y, d, k, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got.L2 != ref.L2 || !slices.Equal(got.ValTop1, ref.ValTop1) || got.Iterations != ref.Iterations {
			t.Fatalf("%s: chosen l2 %v, val %v; with the real test set %v, %v", name, got.L2, got.ValTop1, ref.L2, ref.ValTop1)
		}
	}
	// A permuted test set is scored as such: the test figures do move.
	perm, _ := LinearProbe(x, y, testX, permY, d, k, cfg)
	if perm.Top1 == ref.Top1 {
		t.Fatalf("test top-1 %v unchanged by permuting test labels", ref.Top1)
	}
	if ref.Top1 < 0.7 {
		t.Fatalf("test top-1 %v on a nearly linear problem, want >= 0.7", ref.Top1)
	}
}

func TestLinearProbeChoosesBestValidation(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	// Few rows, many noisy dimensions: the penalty matters.
	n, d, k := 120, 60, 3
	allX, allY := randomProblem(rng, n+200, d, k, 8)
	x, y, testX, testY := allX[:n*d], allY[:n], allX[n*d:], allY[n:]
	grid := []float64{1e-4, 1e-2, 1, 0.3}
	res, err := LinearProbe(x, y, testX, testY, d, k, ProbeConfig{L2Grid: grid, ValFraction: 0.25, MaxIter: 200})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ValTop1) != len(grid) || !slices.Equal(res.L2Grid, grid) {
		t.Fatalf("val accuracies %v for grid %v", res.ValTop1, res.L2Grid)
	}
	best := slices.Max(res.ValTop1)
	var want float64 = -1
	for i, v := range res.ValTop1 {
		if v == best && grid[i] > want {
			want = grid[i] // ties go to the stronger penalty
		}
	}
	if res.L2 != want {
		t.Fatalf("chose l2 %v with val %v over grid %v; want %v", res.L2, res.ValTop1, grid, want)
	}
	if res.NVal != 30 || res.NTrain != n || res.TopK != 3 || res.Top5 != 1 {
		t.Fatalf("n_val %d n_train %d top-%d %v; want 30, %d, top-3 = 1", res.NVal, res.NTrain, res.TopK, res.Top5, n)
	}
}

func TestSplitTrainVal(t *testing.T) {
	fit, val := SplitTrainVal(10, 0.25, rand.New(rand.NewSource(1)))
	if len(val) != 3 || len(fit) != 7 {
		t.Fatalf("split sizes %d/%d, want 7/3", len(fit), len(val))
	}
	all := slices.Sorted(slices.Values(append(slices.Clone(fit), val...)))
	for i, v := range all {
		if v != i {
			t.Fatalf("split %v + %v is not a partition of 0..9", fit, val)
		}
	}
	fit2, val2 := SplitTrainVal(10, 0.25, rand.New(rand.NewSource(1)))
	if !slices.Equal(fit, fit2) || !slices.Equal(val, val2) {
		t.Fatal("same seed, different split")
	}
	if _, v := SplitTrainVal(3, 0.01, rand.New(rand.NewSource(1))); len(v) != 1 {
		t.Fatalf("tiny fraction held out %d rows, want at least 1", len(v))
	}
}

func TestLinearProbeMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("MNIST linear probe takes about 15 s; skipped with -short")
	}
	tr, te := loadMNIST(t)
	res, err := LinearProbe(tr.x, tr.y, te.x, te.y, 784, 10, DefaultProbeConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MNIST pixels, linear probe: top-1 %.4f, top-5 %.4f, l2 %g (val %v), %d iterations (%s), %.1f s",
		res.Top1, res.Top5, res.L2, res.ValTop1, res.Iterations, res.Stop, res.Seconds)
	// Multinomial logistic regression on raw pixels reaches about 92.5%.
	if res.Top1 < 0.915 {
		t.Fatalf("top-1 %v, want >= 0.915", res.Top1)
	}
}
