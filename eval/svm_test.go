package eval

import (
	"math"
	"math/rand"
	"slices"
	"testing"
)

// refSVMObjective is the one-vs-rest squared-hinge objective in LinearSVC's
// form, written as plainly as possible in float64: for every class c,
// (1/2)*||w_c||^2 + C * sum_i a_i * max(0, 1 - t_ic*(w_c . x_i + b_c))^2.
func refSVMObjective(x []float32, n, d int, y []int, k int, C, pos float64, theta []float64) float64 {
	var f float64
	for c := 0; c < k; c++ {
		for j := 0; j < d; j++ {
			f += 0.5 * theta[c*d+j] * theta[c*d+j]
		}
		for i := 0; i < n; i++ {
			s := theta[k*d+c]
			for j := 0; j < d; j++ {
				s += theta[c*d+j] * float64(x[i*d+j])
			}
			t, a := -1.0, 1.0
			if y[i] == c {
				t, a = 1, pos
			}
			if m := 1 - t*s; m > 0 {
				f += C * a * m * m
			}
		}
	}
	return f
}

func TestSVMObjectiveGradient(t *testing.T) {
	withKernels(t, func(t *testing.T) {
		rng := rand.New(rand.NewSource(31))
		n, d, k, C, pos := 700, 13, 5, 0.05, 2.0
		x, y := randomProblem(rng, n, d, k, 1)
		theta := make([]float64, k*d+k)
		for i := range theta {
			theta[i] = 0.3 * rng.NormFloat64()
		}
		obj := newLinObjective(x, n, d, y, k, 1/(C*float64(n)), 2, squaredHingeOvR(pos))
		grad := make([]float64, len(theta))
		f := obj.eval(theta, grad)
		th32 := slices.Clone(theta)
		for i := range th32[:k*d] {
			th32[i] = float64(float32(th32[i]))
		}
		// The objective is the reference divided by C*n.
		scale := C * float64(n)
		if ref := refSVMObjective(x, n, d, y, k, C, pos, th32) / scale; math.Abs(f-ref) > 1e-5*math.Abs(ref) {
			t.Fatalf("objective %v, reference %v", f, ref)
		}
		// Central differences of the reference (piecewise quadratic, so exact
		// up to rounding away from the kinks).
		for _, i := range []int{0, 7, k*d - 1, k * d, k*d + k - 1} {
			h := 1e-4
			tp, tm := slices.Clone(th32), slices.Clone(th32)
			tp[i] += h
			tm[i] -= h
			fd := (refSVMObjective(x, n, d, y, k, C, pos, tp) - refSVMObjective(x, n, d, y, k, C, pos, tm)) / (2 * h) / scale
			if math.Abs(fd-grad[i]) > 1e-4*(1+math.Abs(fd)) {
				t.Fatalf("gradient[%d] = %v, finite difference %v", i, grad[i], fd)
			}
		}
	})
}

// Two rows x = -1 (class 0) and x = +1 (class 1), already standardised.
// For class 1, t*x = 1 for both rows; with weights a (positive) and 1
// (negative), setting the derivatives of
// (1/2)w^2 + C*[a*(1-w-b)^2 + (1-w+b)^2] to zero gives
// w = 8Ca/(1+a+8Ca) and b = (a-1)(1-w)/(a+1); class 0 is the mirror image
// (w0 = -w1, b0 = b1).
func TestSVMSeparableClosedForm(t *testing.T) {
	for _, tc := range []struct{ C, a float64 }{{1, 1}, {0.5, 2}, {0.05, 1}, {3, 0.5}} {
		x := []float32{-1, 1}
		y := []int{0, 1}
		m, err := TrainSVM(x, 2, 1, y, 2, SVMConfig{C: tc.C, PositiveWeight: tc.a, Tol: 1e-9, MaxIter: 1000})
		if err != nil {
			t.Fatal(err)
		}
		w := 8 * tc.C * tc.a / (1 + tc.a + 8*tc.C*tc.a)
		b := (tc.a - 1) * (1 - w) / (tc.a + 1)
		got := []float32{m.W[0], m.W[1], m.B[0], m.B[1]}
		want := []float64{-w, w, b, b}
		for i := range got {
			if math.Abs(float64(got[i])-want[i]) > 1e-5 {
				t.Fatalf("C=%v a=%v: (w0, w1, b0, b1) = %v, want %v (stop %s)", tc.C, tc.a, got, want, m.Stop)
			}
		}
		pred, err := m.Predict(x, 2)
		if err != nil {
			t.Fatal(err)
		}
		if pred[0] != 0 || pred[1] != 1 {
			t.Fatalf("C=%v: predictions %v on separable data, want [0 1]", tc.C, pred)
		}
	}
}

// Eight rows at x = -1 (three of class 0, one of class 1) and x = +1 (three
// of class 1, one of class 0): no hyperplane separates them. The problem is
// symmetric in b, so b = 0, and for class 1 the objective is
// (1/2)w^2 + C*[6(1-w)^2 + 2(1+w)^2] for |w| < 1, minimised at
// w = 8C/(1+16C).
func TestSVMNonSeparableClosedForm(t *testing.T) {
	x := []float32{-1, -1, -1, -1, 1, 1, 1, 1}
	y := []int{0, 0, 0, 1, 1, 1, 1, 0}
	for _, C := range []float64{0.01, 1, 100} {
		m, err := TrainSVM(x, 8, 1, y, 2, SVMConfig{C: C, Tol: 1e-10, MaxIter: 1000})
		if err != nil {
			t.Fatal(err)
		}
		w := 8 * C / (1 + 16*C)
		if math.Abs(float64(m.W[1])-w) > 1e-5 || math.Abs(float64(m.W[0])+w) > 1e-5 || math.Abs(float64(m.B[0])) > 1e-5 || math.Abs(float64(m.B[1])) > 1e-5 {
			t.Fatalf("C=%v: w = %v, b = %v; want w = [%v %v], b = 0 (stop %s)", C, m.W, m.B, -w, w, m.Stop)
		}
		acc, err := m.Accuracy(x, 8, y, 1)
		if err != nil {
			t.Fatal(err)
		}
		if acc != 0.75 {
			t.Fatalf("C=%v: accuracy %v, want 0.75 (the Bayes rate)", C, acc)
		}
	}
}

// At the optimum of a random problem the gradient of the plain reference
// objective vanishes: the fit is the reference's minimiser, not just a good
// classifier.
func TestSVMReachesStationaryPoint(t *testing.T) {
	rng := rand.New(rand.NewSource(32))
	n, d, k, C := 500, 7, 4, 0.02
	x, y := randomProblem(rng, n, d, k, 1.5)
	m, err := TrainSVM(x, n, d, y, k, SVMConfig{C: C, PositiveWeight: 2, Tol: 1e-7, MaxIter: 2000})
	if err != nil {
		t.Fatal(err)
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
	f0 := refSVMObjective(xs, n, d, y, k, C, 2, theta)
	for i := range theta {
		h := 1e-3
		tp, tm := slices.Clone(theta), slices.Clone(theta)
		tp[i] += h
		tm[i] -= h
		fd := (refSVMObjective(xs, n, d, y, k, C, 2, tp) - refSVMObjective(xs, n, d, y, k, C, 2, tm)) / (2 * h)
		if math.Abs(fd) > 1e-3*(1+f0/float64(n)) {
			t.Fatalf("gradient of the reference at the fit: entry %d is %v (objective %v, stop %s after %d iterations)", i, fd, f0, m.Stop, m.Iterations)
		}
	}
}

func TestSVMSameResultAnyWorkers(t *testing.T) {
	rng := rand.New(rand.NewSource(33))
	n, d, k := 3000, 20, 6
	x, y := randomProblem(rng, n, d, k, 1)
	var ref *SVM
	for _, w := range []int{1, 2, 5} {
		m, err := TrainSVM(x, n, d, y, k, SVMConfig{C: 0.01, Workers: w})
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = m
			continue
		}
		if !slices.Equal(m.W, ref.W) || !slices.Equal(m.B, ref.B) {
			t.Fatalf("workers=%d changed the fit", w)
		}
	}
}

func TestSVMProbe(t *testing.T) {
	rng := rand.New(rand.NewSource(34))
	centres := randSlice(rng, 5*16)
	for i := range centres {
		centres[i] *= 2
	}
	trX, trY := clusteredData(rng, 2000, 16, 5, centres)
	teX, teY := clusteredData(rng, 500, 16, 5, centres)
	cfg := DefaultProbeConfig()
	cfg.Classifier = ClassifierSVM
	svm, err := LinearProbe(trX, trY, teX, teY, 16, 5, cfg)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := LinearProbe(trX, trY, teX, teY, 16, 5, DefaultProbeConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("svm: top-1 %.4f, mAP %.4f, C %g, val %v; logreg: top-1 %.4f, mAP %.4f", svm.Top1, svm.MAP, svm.C, svm.ValTop1, lr.Top1, lr.MAP)
	if svm.Classifier != ClassifierSVM || svm.C == 0 || len(svm.CGrid) != len(cfg.CGrid) || svm.L2Grid != nil || svm.Model == nil {
		t.Fatalf("svm probe result: %+v", svm)
	}
	// The SVM chose the C with the best validation accuracy, smallest on ties.
	best := 0
	for i := range svm.CGrid {
		if svm.ValTop1[i] > svm.ValTop1[best] || (svm.ValTop1[i] == svm.ValTop1[best] && svm.CGrid[i] < svm.CGrid[best]) {
			best = i
		}
	}
	if svm.C != svm.CGrid[best] {
		t.Fatalf("chose C %v, best on validation is %v (%v)", svm.C, svm.CGrid[best], svm.ValTop1)
	}
	// Both linear classifiers are near the Bayes rate of this problem, so
	// they agree to a few points.
	if math.Abs(svm.Top1-lr.Top1) > 0.03 || svm.Top1 < 0.5 {
		t.Fatalf("svm top-1 %v, logistic regression %v", svm.Top1, lr.Top1)
	}
	// The final model's scores give the reported accuracy.
	acc, err := svm.Model.Accuracy(teX, len(teY), teY, 1)
	if err != nil || acc != svm.Top1 {
		t.Fatalf("model accuracy %v (%v), reported %v", acc, err, svm.Top1)
	}
}
