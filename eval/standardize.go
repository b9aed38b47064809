package eval

import (
	"fmt"
	"math"
)

// StdFloor is the smallest standard deviation a Standardizer divides by. A
// dimension that is constant on the training set maps to 0 there; the linear
// probe never moves its weight away from 0 (its gradient is exactly 0), so
// such a dimension cannot affect predictions on other sets.
const StdFloor = 1e-6

// Standardizer maps features to zero mean and unit variance per dimension,
// z = (x - Mean) / Std, with statistics taken from training features only.
// Std is the population standard deviation, floored at StdFloor.
type Standardizer struct {
	Mean []float64 `json:"mean"`
	Std  []float64 `json:"std"`
}

// FitStandardizer computes per-dimension mean and standard deviation of x
// ([n, d], row-major) in float64, two passes.
func FitStandardizer(x []float32, n, d int) (*Standardizer, error) {
	if err := checkMatrix("eval: standardizer: features", x, n, d); err != nil {
		return nil, err
	}
	return fitStandardizer(x, n, d, nil), nil
}

// fitStandardizer is FitStandardizer on checked features, over the rows
// listed in rows (all n rows when rows is nil).
func fitStandardizer(x []float32, n, d int, rows []int) *Standardizer {
	row := func(i int) []float32 {
		if rows != nil {
			i = rows[i]
		}
		return x[i*d : (i+1)*d]
	}
	if rows != nil {
		n = len(rows)
	}
	mean := make([]float64, d)
	for i := 0; i < n; i++ {
		for j, v := range row(i) {
			mean[j] += float64(v)
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	std := make([]float64, d)
	for i := 0; i < n; i++ {
		for j, v := range row(i) {
			dv := float64(v) - mean[j]
			std[j] += dv * dv
		}
	}
	for j := range std {
		std[j] = max(math.Sqrt(std[j]/float64(n)), StdFloor)
	}
	return &Standardizer{Mean: mean, Std: std}
}

// Dim is the feature dimension d the standardizer was fitted on.
func (s *Standardizer) Dim() int { return len(s.Mean) }

// Transform returns a new [n, d] matrix (x - Mean) / Std.
func (s *Standardizer) Transform(x []float32, n int) ([]float32, error) {
	d := s.Dim()
	if len(s.Std) != d || d == 0 {
		return nil, fmt.Errorf("eval: standardizer: %d means and %d deviations, want the same positive number", d, len(s.Std))
	}
	if err := checkMatrix("eval: standardizer: features", x, n, d); err != nil {
		return nil, err
	}
	out := make([]float32, n*d)
	s.transformRows(out, x)
	return out, nil
}

// transformRows writes the standardised rows of x (a multiple of d values,
// already checked) into dst.
func (s *Standardizer) transformRows(dst, x []float32) {
	d := s.Dim()
	for i := 0; i+d <= len(x); i += d {
		row := x[i : i+d]
		out := dst[i : i+d]
		for j, v := range row {
			out[j] = float32((float64(v) - s.Mean[j]) / s.Std[j])
		}
	}
}
