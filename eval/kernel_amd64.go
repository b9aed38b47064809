//go:build amd64 && !purego

package eval

// cpuid executes the CPUID instruction with the given leaf and sub-leaf.
func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

// xgetbv reads extended control register 0 (which register states the OS saves).
func xgetbv() (eax, edx uint32)

//go:noescape
func kernNT4x3AVX2(a0, a1, a2, a3, b0, b1, b2 *float32, k int, out *[12]float32)

//go:noescape
func kernTN4x24AVX2(a *float32, lda int, b *float32, ldb int, k int, c *float32, ldc int)

//go:noescape
func kernTN4x8AVX2(a *float32, lda int, b *float32, ldb int, k int, c *float32, ldc int)

// hasAVX2FMA reports whether the CPU and the OS support AVX2 and FMA3
// (the same test as Go's internal/cpu: CPUID leaves 1 and 7, plus XCR0 saying
// the OS saves the XMM and YMM registers).
func hasAVX2FMA() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const (
		fma     = 1 << 12
		osxsave = 1 << 27
		avx     = 1 << 28
	)
	if ecx1&fma == 0 || ecx1&osxsave == 0 || ecx1&avx == 0 {
		return false
	}
	xcr0, _ := xgetbv()
	if xcr0&6 != 6 {
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	const avx2 = 1 << 5
	return ebx7&avx2 != 0
}

func init() {
	if hasAVX2FMA() {
		asmNT4x3 = kernNT4x3AVX2
		asmTN4x24 = kernTN4x24AVX2
		asmTN4x8 = kernTN4x8AVX2
	}
}
