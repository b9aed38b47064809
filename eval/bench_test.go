package eval

import (
	"math/rand"
	"testing"
)

// BenchmarkLinearProbe runs the full probe (five validation fits and a
// refit) on 50,000 x 512 random features with 10 classes from a noisy linear
// rule, scored on 10,000 test rows.
func BenchmarkLinearProbe(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	n, nt, d, k := 50000, 10000, 512, 10
	x, y := randomProblem(rng, n+nt, d, k, 10)
	b.ResetTimer()
	var res ProbeResult
	for b.Loop() {
		var err error
		res, err = LinearProbe(x[:n*d], y[:n], x[n*d:], y[n:], d, k, DefaultProbeConfig())
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(res.Top1, "top1")
	b.Logf("top-1 %.4f, l2 %g, val %v, final fit %d iterations (%s)", res.Top1, res.L2, res.ValTop1, res.Iterations, res.Stop)
}

// BenchmarkTrainLogReg fits one model on 60,000 x 784 random features, 10
// classes (MNIST's shape), with the default configuration.
func BenchmarkTrainLogReg(b *testing.B) {
	rng := rand.New(rand.NewSource(2))
	n, d, k := 60000, 784, 10
	x, y := randomProblem(rng, n, d, k, 10)
	b.ResetTimer()
	var m *LogReg
	for b.Loop() {
		var err error
		m, err = TrainLogReg(x, n, d, y, k, DefaultLogRegConfig())
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(m.Evaluations), "passes")
	b.Logf("%d iterations, %d passes, stop %s, loss %.6f, max-grad %.2e", m.Iterations, m.Evaluations, m.Stop, m.Loss, m.GradMax)
}

// BenchmarkKNN classifies 10,000 test rows against 50,000 training rows of
// 512 dimensions (about 0.5 TFLOP of similarities), K = 200.
func BenchmarkKNN(b *testing.B) {
	rng := rand.New(rand.NewSource(3))
	ntr, nte, d, k := 50000, 10000, 512, 10
	centres := randSlice(rng, k*d)
	trX, trY := clusteredData(rng, ntr, d, k, centres)
	teX, teY := clusteredData(rng, nte, d, k, centres)
	b.ResetTimer()
	var res KNNResult
	for b.Loop() {
		var err error
		res, err = KNN(trX, trY, teX, teY, d, k, DefaultKNNConfig())
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2*float64(ntr)*float64(nte)*float64(d)/res.Seconds/1e9, "GFLOP/s")
}
