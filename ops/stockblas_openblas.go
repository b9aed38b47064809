//go:build cgo && !purego

package ops

// #include <cblas.h>
// void openblas_set_num_threads(int);
import "C"

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
)

// openBLASForGorgonia is gonum's BLAS with the matrix products (Sgemm,
// Dgemm) taken from OpenBLAS: what stock Gorgonia multiplies with once
// gorgonia.Use is given it. Everything else stays gonum's.
type openBLASForGorgonia struct{ gonum.Implementation }

func (openBLASForGorgonia) Sgemm(ta, tb blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func (openBLASForGorgonia) Dgemm(ta, tb blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if m == 0 || n == 0 || k == 0 {
		gonum.Implementation{}.Dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	cta, ctb := uint32(C.CblasNoTrans), uint32(C.CblasNoTrans)
	if ta == blas.Trans {
		cta = uint32(C.CblasTrans)
	}
	if tb == blas.Trans {
		ctb = uint32(C.CblasTrans)
	}
	C.cblas_dgemm(C.CblasRowMajor, C.enum_CBLAS_TRANSPOSE(cta), C.enum_CBLAS_TRANSPOSE(ctb), C.blasint(m), C.blasint(n), C.blasint(k),
		C.double(alpha), (*C.double)(&a[0]), C.blasint(lda), (*C.double)(&b[0]), C.blasint(ldb), C.double(beta),
		(*C.double)(&c[0]), C.blasint(ldc))
}

// StockBLAS returns a BLAS for gorgonia.Use that runs stock Gorgonia's
// matrix products in OpenBLAS with the given number of threads, and its
// name. This sets OpenBLAS's thread count for the whole process (the ops
// here run it single-threaded), so call it only in a process that
// benchmarks the stock engine.
func StockBLAS(threads int) (G.BLAS, string, error) {
	if threads < 1 {
		return nil, "", fmt.Errorf("ops: stock blas: %d threads", threads)
	}
	C.openblas_set_num_threads(C.int(threads))
	return openBLASForGorgonia{}, fmt.Sprintf("openblas, %d threads", threads), nil
}
