package eval

import (
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"
)

// refObjective is the logistic-regression objective written as plainly as
// possible in float64: mean cross-entropy + (l2/2)*||W||^2, theta = [W, B].
func refObjective(x []float32, n, d int, y []int, k int, l2 float64, theta []float64) float64 {
	var loss float64
	z := make([]float64, k)
	for i := 0; i < n; i++ {
		for c := 0; c < k; c++ {
			z[c] = theta[k*d+c]
			for j := 0; j < d; j++ {
				z[c] += theta[c*d+j] * float64(x[i*d+j])
			}
		}
		m := slices.Max(z)
		var s float64
		for _, v := range z {
			s += math.Exp(v - m)
		}
		loss += m + math.Log(s) - z[y[i]]
	}
	var ww float64
	for _, v := range theta[:k*d] {
		ww += v * v
	}
	return loss/float64(n) + 0.5*l2*ww
}

// randomProblem draws n rows of d standard-normal features whose labels
// follow a random linear rule plus noise.
func randomProblem(rng *rand.Rand, n, d, k int, noise float64) ([]float32, []int) {
	x := randSlice(rng, n*d)
	w := make([]float64, k*d)
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	y := make([]int, n)
	s := make([]float64, k)
	for i := range y {
		for c := 0; c < k; c++ {
			s[c] = noise * rng.NormFloat64()
			for j := 0; j < d; j++ {
				s[c] += w[c*d+j] * float64(x[i*d+j])
			}
		}
		y[i] = argmax(s)
	}
	return x, y
}

func TestLRObjectiveGradient(t *testing.T) {
	withKernels(t, func(t *testing.T) {
		rng := rand.New(rand.NewSource(3))
		// 700 rows: three chunks, the last one partial; k = 5 pads to 8.
		n, d, k, l2 := 700, 13, 5, 0.03
		x, y := randomProblem(rng, n, d, k, 1)
		theta := make([]float64, k*d+k)
		for i := range theta {
			theta[i] = 0.3 * rng.NormFloat64()
		}
		obj := newLinObjective(x, n, d, y, k, l2, 2, softmaxCE)
		grad := make([]float64, len(theta))
		f := obj.eval(theta, grad)
		// The objective's weights pass through float32; the reference sees the
		// same rounded weights.
		th32 := slices.Clone(theta)
		for i := range th32[:k*d] {
			th32[i] = float64(float32(th32[i]))
		}
		if want := refObjective(x, n, d, y, k, l2, th32); math.Abs(f-want) > 1e-6*math.Abs(want) {
			t.Fatalf("objective %v, reference %v", f, want)
		}
		const h = 1e-5
		for i := range theta {
			tp, tm := slices.Clone(theta), slices.Clone(theta)
			tp[i] += h
			tm[i] -= h
			fd := (refObjective(x, n, d, y, k, l2, tp) - refObjective(x, n, d, y, k, l2, tm)) / (2 * h)
			if math.Abs(grad[i]-fd) > 2e-6*(1+math.Abs(fd)) {
				t.Fatalf("gradient[%d] = %v, central difference %v", i, grad[i], fd)
			}
		}
		// The same problem on other worker counts gives the same bits.
		for _, w := range []int{1, 3} {
			g2 := make([]float64, len(theta))
			f2 := newLinObjective(x, n, d, y, k, l2, w, softmaxCE).eval(theta, g2)
			if f2 != f || !slices.Equal(g2, grad) {
				t.Fatalf("workers=%d: objective or gradient differs from workers=2", w)
			}
		}
	})
}

func TestLogRegSeparable(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	n, d := 400, 6
	x := randSlice(rng, n*d)
	y := make([]int, n)
	for i := range y {
		// Label by the side of a hyperplane; push points off it for a margin.
		s := 0.7*x[i*d] - 1.3*x[i*d+2] + 0.4*x[i*d+5] + 0.2
		if s >= 0 {
			y[i] = 1
			x[i*d] += 0.5
		} else {
			x[i*d] -= 0.5
		}
	}
	m, err := TrainLogReg(x, n, d, y, 2, LogRegConfig{L2: 1e-6, MaxIter: 500})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := m.Accuracy(x, n, y, 1)
	if err != nil {
		t.Fatal(err)
	}
	if acc != 1 {
		t.Fatalf("train accuracy on separable data %v, want 1 (stop %s after %d iterations)", acc, m.Stop, m.Iterations)
	}
}

// With constant features the weights get no gradient, and the optimal bias
// makes the predicted distribution equal the class frequencies.
func TestLogRegConstantFeaturesGivePriors(t *testing.T) {
	counts := []int{50, 30, 15, 5}
	n, d, k := 100, 3, len(counts)
	x := make([]float32, n*d)
	var y []int
	for c, m := range counts {
		for range m {
			y = append(y, c)
		}
	}
	for i := 0; i < n; i++ {
		x[i*d], x[i*d+1], x[i*d+2] = 2.5, -1, 0
	}
	for _, l2 := range []float64{0, 0.1} {
		m, err := TrainLogReg(x, n, d, y, k, LogRegConfig{L2: l2, Tol: 1e-9, MaxIter: 200})
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range m.W {
			if w != 0 {
				t.Fatalf("l2=%v: weight %d = %v, want 0", l2, i, w)
			}
		}
		s, err := m.Scores(x[:d], 1)
		if err != nil {
			t.Fatal(err)
		}
		p := softmax(s)
		for c := range counts {
			if want := float64(counts[c]) / float64(n); math.Abs(p[c]-want) > 1e-4 {
				t.Fatalf("l2=%v: p(class %d) = %v, want prior %v", l2, c, p[c], want)
			}
		}
		// The minimum is the entropy of the priors.
		var h float64
		for _, c := range counts {
			q := float64(c) / float64(n)
			h -= q * math.Log(q)
		}
		if math.Abs(m.Loss-h) > 1e-8 {
			t.Fatalf("l2=%v: final loss %v, want entropy of priors %v", l2, m.Loss, h)
		}
	}
}

func softmax(s []float32) []float64 {
	p := make([]float64, len(s))
	m := float64(slices.Max(s))
	var sum float64
	for i, v := range s {
		p[i] = math.Exp(float64(v) - m)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// The stationarity condition of the penalised objective: at the optimum the
// gradient vanishes, which the reference objective confirms independently.
func TestLogRegReachesStationaryPoint(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	n, d, k, l2 := 300, 8, 3, 1e-2
	x, y := randomProblem(rng, n, d, k, 2)
	m, err := TrainLogReg(x, n, d, y, k, LogRegConfig{L2: l2, Tol: 1e-7, MaxIter: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if m.Stop != StopGradient && m.Stop != StopObjective {
		t.Fatalf("stopped by %s after %d iterations, max|g| %v", m.Stop, m.Iterations, m.GradMax)
	}
	xs, err := m.Std.Transform(x, n)
	if err != nil {
		t.Fatal(err)
	}
	theta := make([]float64, k*d+k)
	for i, v := range m.W {
		theta[i] = float64(v)
	}
	for c, v := range m.B {
		theta[k*d+c] = float64(v)
	}
	const h = 1e-5
	for i := range theta {
		tp, tm := slices.Clone(theta), slices.Clone(theta)
		tp[i] += h
		tm[i] -= h
		fd := (refObjective(xs, n, d, y, k, l2, tp) - refObjective(xs, n, d, y, k, l2, tm)) / (2 * h)
		if math.Abs(fd) > 1e-5 {
			t.Fatalf("d objective / d theta[%d] = %v at the returned optimum, want about 0", i, fd)
		}
	}
}

func TestLogRegSameResultAnyWorkers(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	n, d, k := 1500, 20, 4
	x, y := randomProblem(rng, n, d, k, 1)
	var ref *LogReg
	for _, w := range []int{1, 2, 5} {
		m, err := TrainLogReg(x, n, d, y, k, LogRegConfig{L2: 1e-3, MaxIter: 30, Workers: w})
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = m
			continue
		}
		if !slices.Equal(m.W, ref.W) || !slices.Equal(m.B, ref.B) || m.Iterations != ref.Iterations {
			t.Fatalf("workers=%d: model differs from workers=1", w)
		}
	}
}

func TestLogRegPredictMatchesScores(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	n, d, k := 600, 9, 6
	x, y := randomProblem(rng, n, d, k, 0.5)
	m, err := TrainLogReg(x, n, d, y, k, DefaultLogRegConfig())
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Scores(x, n)
	if err != nil {
		t.Fatal(err)
	}
	pred, err := m.Predict(x, n)
	if err != nil {
		t.Fatal(err)
	}
	// Scores against a plain loop over the stored parameters.
	for i := 0; i < n; i++ {
		for c := 0; c < k; c++ {
			want := float64(m.B[c])
			for j := 0; j < d; j++ {
				want += float64(m.W[c*d+j]) * (float64(x[i*d+j]) - m.Std.Mean[j]) / m.Std.Std[j]
			}
			if math.Abs(float64(s[i*k+c])-want) > 1e-4*(1+math.Abs(want)) {
				t.Fatalf("score[%d,%d] = %v, want %v", i, c, s[i*k+c], want)
			}
		}
		if pred[i] != argmax(s[i*k:(i+1)*k]) {
			t.Fatalf("prediction %d = %d, argmax of scores is %d", i, pred[i], argmax(s[i*k:(i+1)*k]))
		}
	}
	acc, _ := m.Accuracy(x, n, y, 1)
	if acc < 0.9 {
		t.Fatalf("train accuracy %v on a nearly linear problem, want >= 0.9", acc)
	}
}

func TestTopKAccuracy(t *testing.T) {
	scores := []float32{
		0.1, 0.5, 0.2, // ranks: 1 0 2
		3, 3, 1, // tie between 0 and 1: 0 first
		0, 0, 0, // all tied: index order
	}
	y := []int{2, 1, 2}
	for _, tc := range []struct {
		top  int
		want float64
	}{{1, 0}, {2, 2.0 / 3}, {3, 1}, {10, 1}} {
		got, err := TopKAccuracy(scores, 3, 3, y, tc.top)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("top-%d accuracy %v, want %v", tc.top, got, tc.want)
		}
	}
	if _, err := TopKAccuracy(scores, 3, 3, y, 0); err == nil {
		t.Error("top = 0 accepted")
	}
}

func TestStandardizer(t *testing.T) {
	x := []float32{
		1, 5, 2,
		3, 5, 4,
		5, 5, 9,
	}
	s, err := FitStandardizer(x, 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	wantMean := []float64{3, 5, 5}
	wantStd := []float64{math.Sqrt(8.0 / 3), StdFloor, math.Sqrt(26.0 / 3)}
	for j := range wantMean {
		if math.Abs(s.Mean[j]-wantMean[j]) > 1e-12 || math.Abs(s.Std[j]-wantStd[j]) > 1e-12 {
			t.Fatalf("dim %d: mean %v std %v, want %v %v", j, s.Mean[j], s.Std[j], wantMean[j], wantStd[j])
		}
	}
	z, err := s.Transform([]float32{3, 5.5, 5}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if z[0] != 0 || math.Abs(float64(z[1])-0.5/StdFloor) > 1e-3 || z[2] != 0 {
		t.Fatalf("transform %v", z)
	}
	if _, err := s.Transform([]float32{1, 2}, 1); err == nil {
		t.Fatal("transform accepted a row of the wrong width")
	}
}

func TestInputErrors(t *testing.T) {
	x := []float32{1, 2, 3, 4, 5, 6}
	nan := []float32{1, 2, float32(math.NaN()), 4, 5, 6}
	good := []int{0, 1, 0}
	for _, tc := range []struct {
		name, want string
		err        error
	}{
		{"logreg short x", "want n*d", errOf(TrainLogReg(x, 4, 2, []int{0, 1, 0, 1}, 2, LogRegConfig{}))},
		{"logreg labels", "out of range", errOf(TrainLogReg(x, 3, 2, []int{0, 2, 1}, 2, LogRegConfig{}))},
		{"logreg label count", "labels for 3 rows", errOf(TrainLogReg(x, 3, 2, []int{0, 1}, 2, LogRegConfig{}))},
		{"logreg one class", "at least 2", errOf(TrainLogReg(x, 3, 2, []int{0, 0, 0}, 1, LogRegConfig{}))},
		{"logreg empty", "empty set", errOf(TrainLogReg(nil, 0, 2, nil, 2, LogRegConfig{}))},
		{"logreg nan", "row 1, dim 0 is NaN", errOf(TrainLogReg(nan, 3, 2, good, 2, LogRegConfig{}))},
		{"logreg l2", "l2", errOf(TrainLogReg(x, 3, 2, good, 2, LogRegConfig{L2: -1}))},
		{"probe test shape", "test: got 5 feature values", errOf(LinearProbe(x, good, x[:5], good, 2, 2, ProbeConfig{}))},
		{"probe empty test", "test: empty set", errOf(LinearProbe(x, good, nil, nil, 2, 2, ProbeConfig{}))},
		{"probe test label", "test: label 3", errOf(LinearProbe(x, good, x, []int{0, 3, 1}, 2, 2, ProbeConfig{}))},
		{"probe fraction", "validation fraction", errOf(LinearProbe(x, good, x, good, 2, 2, ProbeConfig{ValFraction: 1}))},
		{"probe one row", "at least 2", errOf(LinearProbe(x[:2], []int{0}, x, good, 2, 2, ProbeConfig{}))},
		{"knn train shape", "train: got 6 feature values for 2 labels", errOf(KNN(x, []int{0, 1}, x, good, 2, 2, KNNConfig{}))},
		{"knn classes", "1 classes", errOf(KNN(x, good, x, good, 2, 1, KNNConfig{}))},
		{"knn empty train", "train: empty set", errOf(KNN(nil, nil, x, good, 2, 2, KNNConfig{}))},
		{"knn nan", "test features: row 1, dim 0 is NaN", errOf(KNN(x, good, nan, good, 2, 2, KNNConfig{}))},
		{"knn temperature", "temperature", errOf(KNN(x, good, x, good, 2, 2, KNNConfig{Temperature: -1}))},
		{"knn dim", "dimension", errOf(KNN(x, good, x, good, 0, 2, KNNConfig{}))},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		msg := tc.err.Error()
		if !strings.HasPrefix(msg, "eval: ") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q, want one line starting with \"eval: \" and containing %q", tc.name, msg, tc.want)
		}
	}
}

func errOf[T any](_ T, err error) error { return err }
