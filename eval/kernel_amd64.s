//go:build amd64 && !purego

#include "textflag.h"

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv() (eax, edx uint32)
TEXT ·xgetbv(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	MOVL DX, edx+4(FP)
	RET

// HSUM reduces the eight lanes of y (whose low half is x) and stores the
// float32 sum at off(DX). Order: (l0+l4)+(l1+l5) + (l2+l6)+(l3+l7).
#define HSUM(y, x, off) \
	VEXTRACTF128 $1, y, X15; \
	VADDPS       X15, x, x;  \
	VHADDPS      x, x, x;    \
	VHADDPS      x, x, x;    \
	VMOVSS       x, off(DX)

// func kernNT4x3AVX2(a0, a1, a2, a3, b0, b1, b2 *float32, k int, out *[12]float32)
//
// out[3*i+j] = sum_{p<k} a_i[p] * b_j[p]; k is a multiple of 8.
TEXT ·kernNT4x3AVX2(SB), NOSPLIT, $0-72
	MOVQ a0+0(FP), SI
	MOVQ a1+8(FP), R8
	MOVQ a2+16(FP), R9
	MOVQ a3+24(FP), R10
	MOVQ b0+32(FP), DI
	MOVQ b1+40(FP), R11
	MOVQ b2+48(FP), R12
	MOVQ k+56(FP), CX
	MOVQ out+64(FP), DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	SHLQ $2, CX
	XORQ AX, AX
	CMPQ AX, CX
	JGE  ntreduce

ntloop:
	VMOVUPS     (DI)(AX*1), Y12
	VMOVUPS     (R11)(AX*1), Y13
	VMOVUPS     (R12)(AX*1), Y14
	VMOVUPS     (SI)(AX*1), Y15
	VFMADD231PS Y12, Y15, Y0
	VFMADD231PS Y13, Y15, Y1
	VFMADD231PS Y14, Y15, Y2
	VMOVUPS     (R8)(AX*1), Y15
	VFMADD231PS Y12, Y15, Y3
	VFMADD231PS Y13, Y15, Y4
	VFMADD231PS Y14, Y15, Y5
	VMOVUPS     (R9)(AX*1), Y15
	VFMADD231PS Y12, Y15, Y6
	VFMADD231PS Y13, Y15, Y7
	VFMADD231PS Y14, Y15, Y8
	VMOVUPS     (R10)(AX*1), Y15
	VFMADD231PS Y12, Y15, Y9
	VFMADD231PS Y13, Y15, Y10
	VFMADD231PS Y14, Y15, Y11
	ADDQ        $32, AX
	CMPQ        AX, CX
	JLT         ntloop

ntreduce:
	HSUM(Y0, X0, 0)
	HSUM(Y1, X1, 4)
	HSUM(Y2, X2, 8)
	HSUM(Y3, X3, 12)
	HSUM(Y4, X4, 16)
	HSUM(Y5, X5, 20)
	HSUM(Y6, X6, 24)
	HSUM(Y7, X7, 28)
	HSUM(Y8, X8, 32)
	HSUM(Y9, X9, 36)
	HSUM(Y10, X10, 40)
	HSUM(Y11, X11, 44)
	VZEROUPPER
	RET

// func kernTN4x24AVX2(a *float32, lda int, b *float32, ldb int, k int, c *float32, ldc int)
//
// c[i*ldc+j] += sum_{p<k} a[p*lda+i] * b[p*ldb+j] for i < 4, j < 24.
TEXT ·kernTN4x24AVX2(SB), NOSPLIT, $0-56
	MOVQ a+0(FP), SI
	MOVQ lda+8(FP), R8
	MOVQ b+16(FP), DI
	MOVQ ldb+24(FP), R9
	MOVQ k+32(FP), CX
	MOVQ c+40(FP), DX
	MOVQ ldc+48(FP), R10
	SHLQ $2, R8
	SHLQ $2, R9
	SHLQ $2, R10
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	TESTQ CX, CX
	JLE   tn24store

tn24loop:
	VMOVUPS      (DI), Y12
	VMOVUPS      32(DI), Y13
	VMOVUPS      64(DI), Y14
	VBROADCASTSS (SI), Y15
	VFMADD231PS  Y12, Y15, Y0
	VFMADD231PS  Y13, Y15, Y1
	VFMADD231PS  Y14, Y15, Y2
	VBROADCASTSS 4(SI), Y15
	VFMADD231PS  Y12, Y15, Y3
	VFMADD231PS  Y13, Y15, Y4
	VFMADD231PS  Y14, Y15, Y5
	VBROADCASTSS 8(SI), Y15
	VFMADD231PS  Y12, Y15, Y6
	VFMADD231PS  Y13, Y15, Y7
	VFMADD231PS  Y14, Y15, Y8
	VBROADCASTSS 12(SI), Y15
	VFMADD231PS  Y12, Y15, Y9
	VFMADD231PS  Y13, Y15, Y10
	VFMADD231PS  Y14, Y15, Y11
	ADDQ         R8, SI
	ADDQ         R9, DI
	DECQ         CX
	JNZ          tn24loop

tn24store:
	VADDPS  (DX), Y0, Y0
	VMOVUPS Y0, (DX)
	VADDPS  32(DX), Y1, Y1
	VMOVUPS Y1, 32(DX)
	VADDPS  64(DX), Y2, Y2
	VMOVUPS Y2, 64(DX)
	ADDQ    R10, DX
	VADDPS  (DX), Y3, Y3
	VMOVUPS Y3, (DX)
	VADDPS  32(DX), Y4, Y4
	VMOVUPS Y4, 32(DX)
	VADDPS  64(DX), Y5, Y5
	VMOVUPS Y5, 64(DX)
	ADDQ    R10, DX
	VADDPS  (DX), Y6, Y6
	VMOVUPS Y6, (DX)
	VADDPS  32(DX), Y7, Y7
	VMOVUPS Y7, 32(DX)
	VADDPS  64(DX), Y8, Y8
	VMOVUPS Y8, 64(DX)
	ADDQ    R10, DX
	VADDPS  (DX), Y9, Y9
	VMOVUPS Y9, (DX)
	VADDPS  32(DX), Y10, Y10
	VMOVUPS Y10, 32(DX)
	VADDPS  64(DX), Y11, Y11
	VMOVUPS Y11, 64(DX)
	VZEROUPPER
	RET

// func kernTN4x8AVX2(a *float32, lda int, b *float32, ldb int, k int, c *float32, ldc int)
//
// c[i*ldc+j] += sum_{p<k} a[p*lda+i] * b[p*ldb+j] for i < 4, j < 8.
TEXT ·kernTN4x8AVX2(SB), NOSPLIT, $0-56
	MOVQ a+0(FP), SI
	MOVQ lda+8(FP), R8
	MOVQ b+16(FP), DI
	MOVQ ldb+24(FP), R9
	MOVQ k+32(FP), CX
	MOVQ c+40(FP), DX
	MOVQ ldc+48(FP), R10
	SHLQ $2, R8
	SHLQ $2, R9
	SHLQ $2, R10
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	TESTQ CX, CX
	JLE   tn8store

tn8loop:
	VMOVUPS      (DI), Y12
	VBROADCASTSS (SI), Y13
	VFMADD231PS  Y12, Y13, Y0
	VBROADCASTSS 4(SI), Y14
	VFMADD231PS  Y12, Y14, Y1
	VBROADCASTSS 8(SI), Y13
	VFMADD231PS  Y12, Y13, Y2
	VBROADCASTSS 12(SI), Y14
	VFMADD231PS  Y12, Y14, Y3
	ADDQ         R8, SI
	ADDQ         R9, DI
	DECQ         CX
	JNZ          tn8loop

tn8store:
	VADDPS  (DX), Y0, Y0
	VMOVUPS Y0, (DX)
	ADDQ    R10, DX
	VADDPS  (DX), Y1, Y1
	VMOVUPS Y1, (DX)
	ADDQ    R10, DX
	VADDPS  (DX), Y2, Y2
	VMOVUPS Y2, (DX)
	ADDQ    R10, DX
	VADDPS  (DX), Y3, Y3
	VMOVUPS Y3, (DX)
	VZEROUPPER
	RET
