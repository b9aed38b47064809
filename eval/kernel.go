package eval

// Single-precision matrix kernels used by the linear probe and kNN.
//
// Two products are needed, both on row-major float32 matrices:
//
//	gemmNT: C = A * B^T   (A [m, K], B [n, K]: dot products of rows; logits, similarities)
//	gemmTN: C += A^T * B  (A [K, m], B [K, n]: sums of outer products; gradients)
//
// On amd64 CPUs with AVX2 and FMA3 the inner tiles run in assembly
// (kernel_amd64.s); elsewhere, or with the purego build tag, plain Go loops do
// the same work. Every output element is computed by one fixed sequence of
// operations, so results do not depend on how callers split work across
// goroutines.

// The assembly tiles, installed by kernel_amd64.go when the CPU supports them.
// Tests set them to nil to exercise the pure-Go path.
var (
	// asmNT4x3 sets out[3*i+j] = sum_{p<k} a_i[p]*b_j[p] for i<4, j<3; k%8 == 0.
	asmNT4x3 func(a0, a1, a2, a3, b0, b1, b2 *float32, k int, out *[12]float32)
	// asmTN4x24 adds sum_{p<k} a[p*lda+i]*b[p*ldb+j] to c[i*ldc+j] for i<4, j<24.
	asmTN4x24 func(a *float32, lda int, b *float32, ldb int, k int, c *float32, ldc int)
	// asmTN4x8 is asmTN4x24 for j<8.
	asmTN4x8 func(a *float32, lda int, b *float32, ldb int, k int, c *float32, ldc int)
)

// gemmNT sets c[i*ldc+j] = sum_{p<kk} a[i*lda+p] * b[j*ldb+p] for i < m, j < n.
// It walks 4x3 tiles of C, columns outermost, so that three rows of B stay in
// L1 while the rows of A stream past; callers keep A small enough for L2.
func gemmNT(m, n, kk int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m <= 0 || n <= 0 {
		return
	}
	if kk <= 0 {
		for i := 0; i < m; i++ {
			clear(c[i*ldc : i*ldc+n])
		}
		return
	}
	// Bounds, checked once here because the assembly does not check them.
	_ = a[(m-1)*lda+kk-1]
	_ = b[(n-1)*ldb+kk-1]
	_ = c[(m-1)*ldc+n-1]
	k8 := kk &^ 7
	if asmNT4x3 == nil {
		k8 = 0
	}
	var out [12]float32
	var ar [4][]float32
	var br [3][]float32
	for j0 := 0; j0 < n; j0 += 3 {
		nj := min(3, n-j0)
		for t := range 3 {
			// Past the edge, repeat the last row; those outputs are dropped.
			j := j0 + min(t, nj-1)
			br[t] = b[j*ldb : j*ldb+kk]
		}
		for i0 := 0; i0 < m; i0 += 4 {
			ni := min(4, m-i0)
			for t := range 4 {
				i := i0 + min(t, ni-1)
				ar[t] = a[i*lda : i*lda+kk]
			}
			if k8 > 0 {
				asmNT4x3(&ar[0][0], &ar[1][0], &ar[2][0], &ar[3][0], &br[0][0], &br[1][0], &br[2][0], k8, &out)
			} else {
				out = [12]float32{}
			}
			if k8 < kk {
				ntTileGo(&ar, &br, k8, kk, &out)
			}
			for ii := 0; ii < ni; ii++ {
				copy(c[(i0+ii)*ldc+j0:(i0+ii)*ldc+j0+nj], out[3*ii:3*ii+nj])
			}
		}
	}
}

// ntTileGo adds sum_{from<=p<to} a_i[p]*b_j[p] to out[3*i+j].
func ntTileGo(ar *[4][]float32, br *[3][]float32, from, to int, out *[12]float32) {
	b0 := br[0][from:to]
	b1 := br[1][from:to]
	b2 := br[2][from:to]
	b1 = b1[:len(b0)]
	b2 = b2[:len(b0)]
	for i := range 4 {
		a := ar[i][from:to]
		a = a[:len(b0)]
		s0, s1, s2 := out[3*i], out[3*i+1], out[3*i+2]
		for p, x := range a {
			s0 += x * b0[p]
			s1 += x * b1[p]
			s2 += x * b2[p]
		}
		out[3*i], out[3*i+1], out[3*i+2] = s0, s1, s2
	}
}

// gemmTN adds sum_{p<kk} a[p*lda+i] * b[p*ldb+j] to c[i*ldc+j] for i < m,
// j < n. It is fastest when m is a multiple of 4 (callers pad A with zero
// columns); leftover rows take a plain loop.
func gemmTN(m, n, kk int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m <= 0 || n <= 0 || kk <= 0 {
		return
	}
	_ = a[(kk-1)*lda+m-1]
	_ = b[(kk-1)*ldb+n-1]
	_ = c[(m-1)*ldc+n-1]
	m4 := m &^ 3
	for i := m4; i < m; i++ {
		crow := c[i*ldc : i*ldc+n]
		for p := 0; p < kk; p++ {
			ap := a[p*lda+i]
			bp := b[p*ldb : p*ldb+n]
			for j, x := range bp {
				crow[j] += ap * x
			}
		}
	}
	for i0 := 0; i0 < m4; i0 += 4 {
		j := 0
		if asmTN4x24 != nil {
			for ; j+24 <= n; j += 24 {
				asmTN4x24(&a[i0], lda, &b[j], ldb, kk, &c[i0*ldc+j], ldc)
			}
			for ; j+8 <= n; j += 8 {
				asmTN4x8(&a[i0], lda, &b[j], ldb, kk, &c[i0*ldc+j], ldc)
			}
		}
		if j < n {
			tnTileGo(i0, j, n, kk, a, lda, b, ldb, c, ldc)
		}
	}
}

// tnTileGo adds sum_p a[p*lda+i]*b[p*ldb+j] to c[i*ldc+j] for i0 <= i < i0+4
// and j0 <= j < n, in blocks of columns so that the four rows of C stay in L1.
func tnTileGo(i0, j0, n, kk int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	const block = 512
	for jb := j0; jb < n; jb += block {
		je := min(n, jb+block)
		c0 := c[(i0+0)*ldc+jb : (i0+0)*ldc+je]
		c1 := c[(i0+1)*ldc+jb : (i0+1)*ldc+je]
		c2 := c[(i0+2)*ldc+jb : (i0+2)*ldc+je]
		c3 := c[(i0+3)*ldc+jb : (i0+3)*ldc+je]
		c1 = c1[:len(c0)]
		c2 = c2[:len(c0)]
		c3 = c3[:len(c0)]
		for p := 0; p < kk; p++ {
			ap := a[p*lda+i0 : p*lda+i0+4]
			a0, a1, a2, a3 := ap[0], ap[1], ap[2], ap[3]
			bp := b[p*ldb+jb : p*ldb+je]
			bp = bp[:len(c0)]
			for j, x := range bp {
				c0[j] += a0 * x
				c1[j] += a1 * x
				c2[j] += a2 * x
				c3[j] += a3 * x
			}
		}
	}
}
