//go:build purego || !cgo

package ops

import "gonum.org/v1/gonum/blas"

// Backend names the single-precision GEMM in use: the pure-Go path.
const Backend = "gonum"

func sgemm(ta, tb blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	impl.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
