package ops

import (
	"math"
	"math/rand"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// The BLAS handed to stock Gorgonia multiplies like gonum's, in both
// precisions and every transposition (row-major, with padded leading
// dimensions).
func TestStockBLASMatchesGonum(t *testing.T) {
	b, name, err := StockBLAS(2)
	if err != nil {
		t.Skip(err)
	}
	defer StockBLAS(1) // the ops run OpenBLAS single-threaded
	rng := rand.New(rand.NewSource(4))
	m, n, k := 7, 5, 9
	for _, ta := range []blas.Transpose{blas.NoTrans, blas.Trans} {
		for _, tb := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			ar, ac := m, k
			if ta == blas.Trans {
				ar, ac = k, m
			}
			br, bc := k, n
			if tb == blas.Trans {
				br, bc = n, k
			}
			lda, ldb, ldc := ac+2, bc+1, n+3
			a64, b64 := make([]float64, ar*lda), make([]float64, br*ldb)
			for i := range a64 {
				a64[i] = rng.NormFloat64()
			}
			for i := range b64 {
				b64[i] = rng.NormFloat64()
			}
			c0 := make([]float64, m*ldc)
			for i := range c0 {
				c0[i] = rng.NormFloat64()
			}
			want, got := append([]float64(nil), c0...), append([]float64(nil), c0...)
			gonum.Implementation{}.Dgemm(ta, tb, m, n, k, 1.5, a64, lda, b64, ldb, 0.5, want, ldc)
			b.Dgemm(ta, tb, m, n, k, 1.5, a64, lda, b64, ldb, 0.5, got, ldc)
			a32, b32, c32, w32 := f32(a64), f32(b64), f32(c0), f32(c0)
			gonum.Implementation{}.Sgemm(ta, tb, m, n, k, 1.5, a32, lda, b32, ldb, 0.5, w32, ldc)
			b.Sgemm(ta, tb, m, n, k, 1.5, a32, lda, b32, ldb, 0.5, c32, ldc)
			for i := range want {
				if math.Abs(got[i]-want[i]) > 1e-12*math.Max(1, math.Abs(want[i])) {
					t.Fatalf("%s dgemm %v %v: c[%d] = %v, gonum %v", name, ta, tb, i, got[i], want[i])
				}
				if math.Abs(float64(c32[i]-w32[i])) > 1e-5*math.Max(1, math.Abs(float64(w32[i]))) {
					t.Fatalf("%s sgemm %v %v: c[%d] = %v, gonum %v", name, ta, tb, i, c32[i], w32[i])
				}
			}
		}
	}
}

func f32(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}
