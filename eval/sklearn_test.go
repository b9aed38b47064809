package eval

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// The scikit-learn side of TestLogRegMatchesScikitLearn: read the problem,
// standardise with StandardScaler (population std, as Standardizer), fit
// multinomial L-BFGS logistic regression with C = 1/(l2*n) (its objective
// C*sum(CE) + ||W||^2/2 has the same minimiser as ours), print the fit.
const sklearnScript = `
import json, sys, numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
d, n, k, l2 = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
x = np.fromfile(sys.argv[1] + "/x.f32", dtype="<f4").reshape(n, d).astype(np.float64)
y = np.fromfile(sys.argv[1] + "/y.i64", dtype="<i8")
xs = StandardScaler().fit_transform(x)
m = LogisticRegression(C=1.0 / (l2 * n), tol=1e-10, max_iter=10000).fit(xs, y)
print(json.dumps({"w": m.coef_.ravel().tolist(), "b": m.intercept_.tolist(), "pred": m.predict(xs).tolist()}))
`

// pythonWithSklearn returns an interpreter that imports sklearn:
// $SELFSUP_PYTHON, else the project's .venv; it skips the test otherwise.
func pythonWithSklearn(t *testing.T) string {
	t.Helper()
	py := os.Getenv("SELFSUP_PYTHON")
	if py == "" {
		py = filepath.Join("..", ".venv", "bin", "python")
	}
	if _, err := os.Stat(py); err != nil {
		t.Skipf("no Python at %s (set SELFSUP_PYTHON): %v", py, err)
	}
	if out, err := exec.Command(py, "-c", "import sklearn, numpy").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import sklearn and numpy: %v: %s", py, err, out)
	}
	return py
}

func TestLogRegMatchesScikitLearn(t *testing.T) {
	py := pythonWithSklearn(t)
	rng := rand.New(rand.NewSource(13))
	n, d, k, l2 := 3000, 20, 4, 1e-3
	x, y := randomProblem(rng, n, d, k, 2)
	for j := 0; j < d; j++ { // give the dimensions different scales and offsets
		for i := 0; i < n; i++ {
			x[i*d+j] = x[i*d+j]*float32(j+1) + float32(j)
		}
	}
	dir := t.TempDir()
	xb := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(xb[4*i:], math.Float32bits(v))
	}
	yb := make([]byte, 8*len(y))
	for i, v := range y {
		binary.LittleEndian.PutUint64(yb[8*i:], uint64(v))
	}
	if err := os.WriteFile(filepath.Join(dir, "x.f32"), xb, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "y.i64"), yb, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", sklearnScript, dir, strconv.Itoa(d), strconv.Itoa(n), strconv.Itoa(k), strconv.FormatFloat(l2, 'g', -1, 64)).Output()
	if err != nil {
		t.Fatalf("scikit-learn: %v", err)
	}
	var sk struct {
		W, B []float64
		Pred []int
	}
	if err := json.Unmarshal(out, &sk); err != nil {
		t.Fatalf("scikit-learn output %q: %v", out, err)
	}
	m, err := TrainLogReg(x, n, d, y, k, LogRegConfig{L2: l2, Tol: 1e-8, MaxIter: 2000})
	if err != nil {
		t.Fatal(err)
	}
	var wmax, wdiff float64
	for i, v := range m.W {
		wmax = max(wmax, math.Abs(sk.W[i]))
		wdiff = max(wdiff, math.Abs(float64(v)-sk.W[i]))
	}
	// Biases are defined up to a common shift; compare centred values.
	var mb, ms float64
	for c := range m.B {
		mb += float64(m.B[c]) / float64(k)
		ms += sk.B[c] / float64(k)
	}
	var bdiff float64
	for c := range m.B {
		bdiff = max(bdiff, math.Abs(float64(m.B[c])-mb-(sk.B[c]-ms)))
	}
	pred, err := m.Predict(x, n)
	if err != nil {
		t.Fatal(err)
	}
	agree := 0
	for i := range pred {
		if pred[i] == sk.Pred[i] {
			agree++
		}
	}
	t.Logf("vs scikit-learn: max |dW| %.2e (max |W| %.2f), max |dB| %.2e, predictions agree on %d/%d", wdiff, wmax, bdiff, agree, n)
	if wdiff > 1e-3*wmax || bdiff > 1e-3*(1+wmax) {
		t.Fatalf("parameters differ from scikit-learn: max |dW| %v, max |dB| %v", wdiff, bdiff)
	}
	if agree < n-2 {
		t.Fatalf("predictions agree with scikit-learn on %d of %d rows", agree, n)
	}
}
