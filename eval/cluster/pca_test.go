package cluster

import (
	"math"
	"math/rand"
	"testing"
)

// Points on a line a + t*u (u a unit vector) plus small noise orthogonal to
// it: the first component is u, its variance the population variance of t,
// and the projections are t - mean(t).
func TestPCALine(t *testing.T) {
	rng := rand.New(rand.NewSource(71))
	n, d := 500, 6
	u := []float64{1, -2, 0.5, 3, 0, -1}
	var norm float64
	for _, v := range u {
		norm += v * v
	}
	for j := range u {
		u[j] /= math.Sqrt(norm)
	}
	// A second direction orthogonal to u for the noise.
	v := []float64{2, 1, 0, 0, 0, 0}
	var uv, vv float64
	for j := range v {
		uv += u[j] * v[j]
	}
	for j := range v {
		v[j] -= uv * u[j]
		vv += v[j] * v[j]
	}
	for j := range v {
		v[j] /= math.Sqrt(vv)
	}
	a := []float64{5, -1, 2, 0, 7, 3}
	x := make([]float32, n*d)
	ts := make([]float64, n)
	var tMean float64
	for i := 0; i < n; i++ {
		ts[i] = 4 * rng.NormFloat64()
		e := 0.01 * rng.NormFloat64()
		tMean += ts[i] / float64(n)
		for j := 0; j < d; j++ {
			x[i*d+j] = float32(a[j] + ts[i]*u[j] + e*v[j])
		}
	}
	var tVar float64
	for _, tv := range ts {
		tVar += (tv - tMean) * (tv - tMean) / float64(n)
	}
	p, err := FitPCA(x, n, d, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Sign convention: the largest |entry| of u is u[3] > 0, so +u.
	for j := range u {
		if math.Abs(p.Components[0][j]-u[j]) > 1e-3 {
			t.Fatalf("first component %v, want %v", p.Components[0], u)
		}
	}
	if math.Abs(p.Variance[0]-tVar) > 1e-3*tVar {
		t.Fatalf("variance %v, want %v", p.Variance[0], tVar)
	}
	if p.Variance[1] > 1e-3 || p.Variance[1] < 0 {
		t.Fatalf("second variance %v, want about 0.01^2", p.Variance[1])
	}
	if math.Abs(p.TotalVariance-p.Variance[0]-p.Variance[1]) > 1e-3*p.TotalVariance {
		t.Fatalf("total variance %v, components %v: the rest should be ~0", p.TotalVariance, p.Variance)
	}
	proj, err := p.Project(x, n)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if math.Abs(proj[2*i]-(ts[i]-tMean)) > 1e-3*(1+math.Abs(ts[i])) {
			t.Fatalf("row %d: projection %v, want %v", i, proj[2*i], ts[i]-tMean)
		}
	}
	if _, err := FitPCA(x, n, d, 7); err == nil {
		t.Fatal("7 components of 6 dimensions accepted")
	}
}

// Independent axes with known variances: the components are the axes in
// order of variance.
func TestPCAAxes(t *testing.T) {
	rng := rand.New(rand.NewSource(72))
	n, d := 20000, 3
	sd := []float64{1, 3, 2}
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(sd[i%d] * rng.NormFloat64())
	}
	p, err := FitPCA(x, n, d, 3)
	if err != nil {
		t.Fatal(err)
	}
	for c, axis := range []int{1, 2, 0} {
		if math.Abs(math.Abs(p.Components[c][axis])-1) > 1e-2 {
			t.Fatalf("component %d = %v, want axis %d", c, p.Components[c], axis)
		}
		if want := sd[axis] * sd[axis]; math.Abs(p.Variance[c]-want) > 0.05*want {
			t.Fatalf("variance %d = %v, want about %v", c, p.Variance[c], want)
		}
	}
}

// The Gram-matrix path (fewer rows than dimensions) gives the
// covariance path's components and variances, and FitPCA takes it.
func TestFitPCAGramMatchesCovariance(t *testing.T) {
	const n, d, comps = 9, 20, 6
	rng := rand.New(rand.NewSource(2))
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * float64(1+i%d)) // distinct variances
	}
	got, err := FitPCA(x, n, d, comps)
	if err != nil {
		t.Fatal(err)
	}
	want, err := fitCovariance(x, n, d, comps)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got.TotalVariance-want.TotalVariance) > 1e-9*want.TotalVariance {
		t.Fatalf("total variance %v, FitPCA %v", got.TotalVariance, want.TotalVariance)
	}
	for c := 0; c < comps; c++ {
		if math.Abs(got.Variance[c]-want.Variance[c]) > 1e-9*want.Variance[0] {
			t.Fatalf("variance %d: %v, FitPCA %v", c, got.Variance[c], want.Variance[c])
		}
		for j := 0; j < d; j++ {
			if math.Abs(got.Components[c][j]-want.Components[c][j]) > 1e-7 {
				t.Fatalf("component %d[%d]: %v, FitPCA %v", c, j, got.Components[c][j], want.Components[c][j])
			}
		}
	}
	if _, err := fitGram(x, n, d, n); err == nil {
		t.Fatal("expected an error for n components of n rows")
	}
}
