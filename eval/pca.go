package eval

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// PCA is a principal-component projection fitted on a set of features
// (Pearson 1901; Hotelling 1933).
type PCA struct {
	// Mean is the per-dimension mean [d] subtracted before projecting.
	Mean []float64 `json:"mean"`
	// Components are unit vectors [comps][d], in order of decreasing
	// variance; each is signed so that its largest-magnitude entry is
	// positive.
	Components [][]float64 `json:"components"`
	// Variance is the variance of the data along each component (the
	// eigenvalues of the population covariance), [comps].
	Variance []float64 `json:"variance"`
	// TotalVariance is the trace of the covariance: Variance[i] /
	// TotalVariance is the share explained by component i.
	TotalVariance float64 `json:"total_variance"`
}

// FitPCA computes the top comps principal components of x ([n, d],
// row-major) from the eigendecomposition of the population covariance
// (1/n) * Xc^T Xc (float64; cost about n*d^2/2 multiply-adds plus a d x d
// eigendecomposition, so subsample large sets first). comps must be in
// [1, d].
func FitPCA(x []float32, n, d, comps int) (*PCA, error) {
	if err := checkMatrix("eval: pca: features", x, n, d); err != nil {
		return nil, err
	}
	if comps < 1 || comps > d {
		return nil, fmt.Errorf("eval: pca: %d components, want 1 to d = %d", comps, d)
	}
	std := fitStandardizer(x, n, d, nil)
	xc := mat.NewDense(n, d, nil)
	for i := 0; i < n; i++ {
		row := xc.RawRowView(i)
		for j, v := range x[i*d : (i+1)*d] {
			row[j] = float64(v) - std.Mean[j]
		}
	}
	cov := mat.NewSymDense(d, nil)
	cov.SymOuterK(1/float64(n), xc.T())
	var eig mat.EigenSym
	if !eig.Factorize(cov, true) {
		return nil, fmt.Errorf("eval: pca: eigendecomposition of the %dx%d covariance did not converge", d, d)
	}
	vals := eig.Values(nil) // ascending
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	p := &PCA{Mean: std.Mean}
	for j := 0; j < d; j++ {
		p.TotalVariance += cov.At(j, j)
	}
	for c := 0; c < comps; c++ {
		col := d - 1 - c
		v := mat.Col(nil, col, &vecs)
		big := 0
		for j := range v {
			if math.Abs(v[j]) > math.Abs(v[big]) {
				big = j
			}
		}
		if v[big] < 0 {
			for j := range v {
				v[j] = -v[j]
			}
		}
		p.Components = append(p.Components, v)
		p.Variance = append(p.Variance, max(vals[col], 0))
	}
	return p, nil
}

// Project returns the coordinates [n, comps] of the rows of x ([n, d]) along
// the components, after subtracting Mean.
func (p *PCA) Project(x []float32, n int) ([]float64, error) {
	d := len(p.Mean)
	if err := checkMatrix("eval: pca: project", x, n, d); err != nil {
		return nil, err
	}
	k := len(p.Components)
	out := make([]float64, n*k)
	xc := make([]float64, d)
	for i := 0; i < n; i++ {
		for j, v := range x[i*d : (i+1)*d] {
			xc[j] = float64(v) - p.Mean[j]
		}
		for c, comp := range p.Components {
			out[i*k+c] = dot(comp, xc)
		}
	}
	return out, nil
}
