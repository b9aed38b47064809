package cluster

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
// row-major): from the eigendecomposition of the population covariance
// (1/n) * Xc^T Xc (float64; cost about n*d^2/2 multiply-adds plus a d x d
// eigendecomposition, so subsample large sets first), or, with fewer rows
// than dimensions and comps < n, from the n x n Gram matrix, which has the
// same non-zero eigenvalues (see fitGram). comps must be in [1, d].
func FitPCA(x []float32, n, d, comps int) (*PCA, error) {
	if err := checkMatrix("eval: pca: features", x, n, d); err != nil {
		return nil, err
	}
	if comps < 1 || comps > d {
		return nil, fmt.Errorf("eval: pca: %d components, want 1 to d = %d", comps, d)
	}
	if n < d && comps <= n-1 {
		return fitGram(x, n, d, comps)
	}
	return fitCovariance(x, n, d, comps)
}

// fitCovariance is FitPCA through the d x d covariance.
func fitCovariance(x []float32, n, d, comps int) (*PCA, error) {
	mean, xc, _ := centre(x, n, d)
	cov := mat.NewSymDense(d, nil)
	cov.SymOuterK(1/float64(n), xc.T())
	var eig mat.EigenSym
	if !eig.Factorize(cov, true) {
		return nil, fmt.Errorf("eval: pca: eigendecomposition of the %dx%d covariance did not converge", d, d)
	}
	vals := eig.Values(nil) // ascending
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	p := &PCA{Mean: mean}
	for j := 0; j < d; j++ {
		p.TotalVariance += cov.At(j, j)
	}
	for c := 0; c < comps; c++ {
		col := d - 1 - c
		v := mat.Col(nil, col, &vecs)
		signByLargest(v)
		p.Components = append(p.Components, v)
		p.Variance = append(p.Variance, max(vals[col], 0))
	}
	return p, nil
}

// fitGram is FitPCA for fewer rows than dimensions (n < d): the
// components come from the n x n Gram matrix of the centred rows, which
// has the covariance's non-zero eigenvalues (cost n^2 d + n^3 instead of
// n d^2 + d^3: for 8 images of resnet50's 2048 features, milliseconds
// instead of a minute). Components are signed as fitCovariance signs them;
// comps must be at most n-1.
func fitGram(x []float32, n, d, comps int) (*PCA, error) {
	if comps < 1 || comps > n-1 || len(x) != n*d {
		return nil, fmt.Errorf("pca: %d components of %d rows x %d dimensions (%d values)", comps, n, d, len(x))
	}
	p := &PCA{}
	var xc *mat.Dense
	p.Mean, xc, p.TotalVariance = centre(x, n, d)
	gram := mat.NewSymDense(n, nil)
	gram.SymOuterK(1/float64(n), xc)
	var eig mat.EigenSym
	if !eig.Factorize(gram, true) {
		return nil, fmt.Errorf("pca: eigendecomposition of the %dx%d Gram matrix did not converge", n, n)
	}
	vals := eig.Values(nil) // ascending
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	for c := 0; c < comps; c++ {
		col := n - 1 - c
		lambda := max(vals[col], 0)
		// v = Xc^T u / sqrt(n lambda): a unit eigenvector of the
		// covariance Xc^T Xc / n with eigenvalue lambda.
		v := make([]float64, d)
		if lambda > 0 {
			u := mat.Col(nil, col, &vecs)
			s := 1 / math.Sqrt(float64(n)*lambda)
			for i, ui := range u {
				for j, xv := range xc.RawRowView(i) {
					v[j] += ui * xv * s
				}
			}
		} else {
			v[c%d] = 1 // no variance left: any direction projects to ~0
		}
		signByLargest(v)
		p.Components = append(p.Components, v)
		p.Variance = append(p.Variance, lambda)
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
			var sum float64
			for j, v := range comp {
				sum += v * xc[j]
			}
			out[i*k+c] = sum
		}
	}
	return out, nil
}

// checkMatrix reports whether x holds an [n, d] matrix of finite values
// (the messages are eval's).
func checkMatrix(what string, x []float32, n, d int) error {
	switch {
	case n < 1:
		return fmt.Errorf("%s: empty set: n = %d, want at least 1 row", what, n)
	case d < 1:
		return fmt.Errorf("%s: feature dimension d = %d, want at least 1", what, d)
	case len(x) != n*d:
		return fmt.Errorf("%s: got %d values, want n*d = %d*%d = %d", what, len(x), n, d, n*d)
	}
	for i, v := range x {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%s: row %d, dim %d is %v, want a finite value", what, i/d, i%d, v)
		}
	}
	return nil
}

// signByLargest flips v so that its largest-magnitude entry is positive
// (the sign convention of PCA.Components).
func signByLargest(v []float64) {
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
}

// centre returns the column means of x ([n, d]), the centred rows and
// their total variance (the trace of the population covariance).
func centre(x []float32, n, d int) (mean []float64, xc *mat.Dense, total float64) {
	mean = make([]float64, d)
	for i := 0; i < n; i++ {
		for j, v := range x[i*d : (i+1)*d] {
			mean[j] += float64(v)
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	xc = mat.NewDense(n, d, nil)
	for i := 0; i < n; i++ {
		row := xc.RawRowView(i)
		for j, v := range x[i*d : (i+1)*d] {
			row[j] = float64(v) - mean[j]
			total += row[j] * row[j] / float64(n)
		}
	}
	return mean, xc, total
}
