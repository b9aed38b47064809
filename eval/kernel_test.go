package eval

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// withKernels runs f once with the assembly tiles (when this machine has
// them) and once with the pure-Go tiles.
func withKernels(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	nt, tn24, tn8 := asmNT4x3, asmTN4x24, asmTN4x8
	defer func() { asmNT4x3, asmTN4x24, asmTN4x8 = nt, tn24, tn8 }()
	if nt != nil {
		t.Run("asm", f)
	} else {
		t.Log("no assembly kernels on this machine; testing pure Go only")
	}
	asmNT4x3, asmTN4x24, asmTN4x8 = nil, nil, nil
	t.Run("go", f)
}

func TestGemmNTAgainstLoops(t *testing.T) {
	withKernels(t, func(t *testing.T) {
		rng := rand.New(rand.NewSource(1))
		for _, sz := range [][3]int{{1, 1, 1}, {4, 3, 8}, {5, 7, 9}, {13, 10, 784}, {9, 11, 37}, {8, 6, 0}, {3, 2, 16}} {
			m, n, kk := sz[0], sz[1], sz[2]
			lda, ldb, ldc := kk+3, kk+1, n+2
			a := randSlice(rng, m*lda)
			b := randSlice(rng, n*ldb)
			c := randSlice(rng, m*ldc) // garbage that must be overwritten
			c0 := append([]float32(nil), c...)
			gemmNT(m, n, kk, a, lda, b, ldb, c, ldc)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					var want, mag float64
					for p := 0; p < kk; p++ {
						v := float64(a[i*lda+p]) * float64(b[j*ldb+p])
						want += v
						mag += math.Abs(v)
					}
					if got := float64(c[i*ldc+j]); math.Abs(got-want) > 1e-6*(mag+1) {
						t.Fatalf("size %v: c[%d,%d] = %v, want %v", sz, i, j, got, want)
					}
				}
				// Padding columns of C are left alone.
				for j := n; j < ldc; j++ {
					if c[i*ldc+j] != c0[i*ldc+j] {
						t.Fatalf("size %v: padding c[%d,%d] changed", sz, i, j)
					}
				}
			}
		}
	})
}

func TestGemmTNAgainstLoops(t *testing.T) {
	withKernels(t, func(t *testing.T) {
		rng := rand.New(rand.NewSource(2))
		for _, sz := range [][3]int{{4, 24, 1}, {4, 8, 5}, {12, 784, 256}, {6, 50, 17}, {3, 5, 2}, {8, 33, 40}} {
			m, n, kk := sz[0], sz[1], sz[2]
			lda, ldb, ldc := m+1, n+5, n+3
			a := randSlice(rng, kk*lda)
			b := randSlice(rng, kk*ldb)
			c := randSlice(rng, m*ldc)
			c0 := append([]float32(nil), c...)
			gemmTN(m, n, kk, a, lda, b, ldb, c, ldc)
			for i := 0; i < m; i++ {
				for j := 0; j < ldc; j++ {
					want, mag := float64(c0[i*ldc+j]), math.Abs(float64(c0[i*ldc+j]))
					if j < n {
						for p := 0; p < kk; p++ {
							v := float64(a[p*lda+i]) * float64(b[p*ldb+j])
							want += v
							mag += math.Abs(v)
						}
					}
					if got := float64(c[i*ldc+j]); math.Abs(got-want) > 1e-6*(mag+1) {
						t.Fatalf("size %v: c[%d,%d] = %v, want %v", sz, i, j, got, want)
					}
				}
			}
		}
	})
}

func BenchmarkGemmNT(b *testing.B) {
	for _, sz := range [][3]int{{256, 1536, 512}, {256, 12, 784}} {
		m, n, kk := sz[0], sz[1], sz[2]
		rng := rand.New(rand.NewSource(1))
		x := randSlice(rng, m*kk)
		y := randSlice(rng, n*kk)
		c := make([]float32, m*n)
		b.Run(fmt.Sprint(sz), func(b *testing.B) {
			for b.Loop() {
				gemmNT(m, n, kk, x, kk, y, kk, c, n)
			}
			b.ReportMetric(float64(2*m*n*kk)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func BenchmarkGemmTN(b *testing.B) {
	m, n, kk := 12, 784, 256
	rng := rand.New(rand.NewSource(1))
	x := randSlice(rng, kk*m)
	y := randSlice(rng, kk*n)
	c := make([]float32, m*n)
	for b.Loop() {
		gemmTN(m, n, kk, x, m, y, n, c, n)
	}
	b.ReportMetric(float64(2*m*n*kk)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
