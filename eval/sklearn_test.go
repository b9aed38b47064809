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
	"strings"
	"testing"

	"github.com/selfsup/selfsup/internal/testenv"
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

// pythonWithSklearn returns a Python with scikit-learn and numpy (see
// testenv.Python).
func pythonWithSklearn(t *testing.T) string { return testenv.Python(t, "sklearn", "numpy") }

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

// The scikit-learn side of TestSVMMatchesScikitLearn: standardise as
// Standardizer, fit one binary LinearSVC (squared hinge, L2, primal solver)
// per class with class_weight {1: pos, 0: 1}. liblinear penalises the
// intercept as a feature of value intercept_scaling; a large scaling makes
// that penalty negligible, as in our objective (bias unpenalised). Also
// scores the test rows and computes average_precision_score per class.
const sklearnSVMScript = `
import json, sys, numpy as np
from sklearn.svm import LinearSVC
from sklearn.preprocessing import StandardScaler
from sklearn.metrics import average_precision_score
d, n, nt, k, C, pos = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
x = np.fromfile(sys.argv[1] + "/x.f32", dtype="<f4").reshape(n, d).astype(np.float64)
y = np.fromfile(sys.argv[1] + "/y.i64", dtype="<i8")
xt = np.fromfile(sys.argv[1] + "/xt.f32", dtype="<f4").reshape(nt, d).astype(np.float64)
yt = np.fromfile(sys.argv[1] + "/yt.i64", dtype="<i8")
sc = StandardScaler().fit(x)
xs, xts = sc.transform(x), sc.transform(xt)
W, B, S = [], [], []
for c in range(k):
    m = LinearSVC(C=C, loss="squared_hinge", penalty="l2", dual=False, tol=1e-12, max_iter=100000,
                  intercept_scaling=1000.0, class_weight={1: pos, 0: 1.0}).fit(xs, (y == c).astype(int))
    W.append(m.coef_.ravel().tolist()); B.append(float(m.intercept_[0])); S.append(m.decision_function(xts))
S = np.stack(S, axis=1)
ap = [float(average_precision_score(yt == c, S[:, c])) for c in range(k)]
print(json.dumps({"w": W, "b": B, "pred": S.argmax(axis=1).tolist(), "ap": ap}))
`

func writeProblem(t *testing.T, dir, name string, x []float32, y []int) {
	t.Helper()
	xb := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(xb[4*i:], math.Float32bits(v))
	}
	yb := make([]byte, 8*len(y))
	for i, v := range y {
		binary.LittleEndian.PutUint64(yb[8*i:], uint64(v))
	}
	if err := os.WriteFile(filepath.Join(dir, name+".f32"), xb, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "y"+strings.TrimPrefix(name, "x")+".i64"), yb, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSVMMatchesScikitLearn(t *testing.T) {
	py := pythonWithSklearn(t)
	rng := rand.New(rand.NewSource(17))
	n, nt, d, k, C, pos := 2000, 1000, 12, 4, 0.01, 2.0
	x, y := randomProblem(rng, n+nt, d, k, 2)
	for j := 0; j < d; j++ { // different scales and offsets per dimension
		for i := 0; i < n+nt; i++ {
			x[i*d+j] = x[i*d+j]*float32(j+1) + float32(j)
		}
	}
	xt, yt := x[n*d:], y[n:]
	x, y = x[:n*d], y[:n]
	dir := t.TempDir()
	writeProblem(t, dir, "x", x, y)
	writeProblem(t, dir, "xt", xt, yt)
	args := []string{"-c", sklearnSVMScript, dir}
	for _, v := range []float64{float64(d), float64(n), float64(nt), float64(k), C, pos} {
		args = append(args, strconv.FormatFloat(v, 'g', -1, 64))
	}
	out, err := exec.Command(py, args...).Output()
	if err != nil {
		t.Fatalf("scikit-learn: %v", err)
	}
	var sk struct {
		W    [][]float64
		B    []float64
		Pred []int
		AP   []float64
	}
	if err := json.Unmarshal(out, &sk); err != nil {
		t.Fatalf("scikit-learn output %q: %v", out, err)
	}
	m, err := TrainSVM(x, n, d, y, k, SVMConfig{C: C, PositiveWeight: pos, Tol: 1e-9, MaxIter: 5000})
	if err != nil {
		t.Fatal(err)
	}
	var wmax, wdiff, bdiff float64
	for c := 0; c < k; c++ {
		for j := 0; j < d; j++ {
			wmax = max(wmax, math.Abs(sk.W[c][j]))
			wdiff = max(wdiff, math.Abs(float64(m.W[c*d+j])-sk.W[c][j]))
		}
		bdiff = max(bdiff, math.Abs(float64(m.B[c])-sk.B[c]))
	}
	scores, err := m.Scores(xt, nt)
	if err != nil {
		t.Fatal(err)
	}
	pred := argmaxRows(scores, k)
	agree, hits, skHits := 0, 0, 0
	for i := range pred {
		if pred[i] == sk.Pred[i] {
			agree++
		}
		if pred[i] == yt[i] {
			hits++
		}
		if sk.Pred[i] == yt[i] {
			skHits++
		}
	}
	col := make([]float64, nt)
	isPos := make([]bool, nt)
	var apDiff float64
	for c := 0; c < k; c++ {
		for i := range col {
			col[i], isPos[i] = float64(scores[i*k+c]), yt[i] == c
		}
		apDiff = max(apDiff, math.Abs(AveragePrecision(col, isPos)-sk.AP[c]))
	}
	t.Logf("vs scikit-learn LinearSVC: max |dW| %.2e (max |W| %.3f), max |dB| %.2e, test predictions agree %d/%d, top-1 %.4f vs %.4f, max |dAP| %.2e (stop %s after %d iterations)",
		wdiff, wmax, bdiff, agree, nt, float64(hits)/float64(nt), float64(skHits)/float64(nt), apDiff, m.Stop, m.Iterations)
	if wdiff > 2e-3*wmax || bdiff > 2e-3*(1+wmax) {
		t.Fatalf("parameters differ from scikit-learn: max |dW| %v, max |dB| %v", wdiff, bdiff)
	}
	if math.Abs(float64(hits-skHits))/float64(nt) > 0.005 || agree < nt-5 {
		t.Fatalf("test top-1 %d vs scikit-learn %d of %d; predictions agree on %d", hits, skHits, nt, agree)
	}
	if apDiff > 1e-3 {
		t.Fatalf("average precision differs from scikit-learn by %v", apDiff)
	}
}
