//go:build cgo && !purego

package ops

// #cgo LDFLAGS: -lopenblas
// #include <cblas.h>
// void openblas_set_num_threads(int);
import "C"

import (
	"unsafe"

	"gonum.org/v1/gonum/blas"
)

// Backend names the single-precision GEMM in use: OpenBLAS through cgo
// (Debian libopenblas-dev, installed by scripts/setup.sh). Build with
// -tags purego for the pure-Go path.
const Backend = "openblas"

// OpenBLAS runs single-threaded: the ops split work across images on their
// own goroutines, and a threaded BLAS underneath would oversubscribe the
// cores.
func init() { C.openblas_set_num_threads(1) }

func sgemm(ta, tb blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				row[j] *= beta
			}
		}
		return
	}
	if err := checkKernelSize("openblas sgemm", m, n, k, lda, ldb, ldc, m*k, k*n, m*n); err != nil {
		panic(err) // sgemm has no error result; a panic beats a wild write
	}
	cta, ctb := uint32(C.CblasNoTrans), uint32(C.CblasNoTrans)
	if ta == blas.Trans {
		cta = uint32(C.CblasTrans)
	}
	if tb == blas.Trans {
		ctb = uint32(C.CblasTrans)
	}
	C.cblas_sgemm(C.CblasRowMajor, C.enum_CBLAS_TRANSPOSE(cta), C.enum_CBLAS_TRANSPOSE(ctb), C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), (*C.float)(unsafe.Pointer(&a[0])), C.blasint(lda),
		(*C.float)(unsafe.Pointer(&b[0])), C.blasint(ldb), C.float(beta),
		(*C.float)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}
