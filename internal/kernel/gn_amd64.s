//go:build amd64 && !purego

#include "textflag.h"

// Constants of the vector sigmoid: exp by Cephes' expf polynomial with the
// power of two applied by VSCALEFPS, the reciprocal by VRCP14PS and one
// Newton step (relative error about 1e-7).
DATA sigc<>+0(SB)/4, $0xc2ae0000 // clo = -87.0
DATA sigc<>+4(SB)/4, $0x42ae0000 // chi = 87.0
DATA sigc<>+8(SB)/4, $0x3fb8aa3b // log2e = 1.4426950408889634
DATA sigc<>+12(SB)/4, $0x3f318000 // ln2hi = 0.693359375
DATA sigc<>+16(SB)/4, $0xb95e8083 // ln2lo = -0.00021219444
DATA sigc<>+20(SB)/4, $0x39506967 // p0 = 0.000198756915
DATA sigc<>+24(SB)/4, $0x3ab743ce // p1 = 0.0013981999507
DATA sigc<>+28(SB)/4, $0x3c088908 // p2 = 0.0083334519073
DATA sigc<>+32(SB)/4, $0x3d2aa9c1 // p3 = 0.041665795894
DATA sigc<>+36(SB)/4, $0x3e2aaaaa // p4 = 0.16666665459
DATA sigc<>+40(SB)/4, $0x3f000000 // p5 = 0.50000001201
DATA sigc<>+44(SB)/4, $0x3f800000 // one = 1.0
DATA sigc<>+48(SB)/4, $0x40000000 // two = 2.0
GLOBL sigc<>(SB), RODATA|NOPTR, $52

// LOADC loads the constants into Z18..Z31 (Z31 = 0).
#define LOADC \
	VPXORD Z31, Z31, Z31; \
	VBROADCASTSS sigc<>+0(SB), Z30; \
	VBROADCASTSS sigc<>+4(SB), Z29; \
	VBROADCASTSS sigc<>+8(SB), Z28; \
	VBROADCASTSS sigc<>+12(SB), Z27; \
	VBROADCASTSS sigc<>+16(SB), Z26; \
	VBROADCASTSS sigc<>+20(SB), Z25; \
	VBROADCASTSS sigc<>+24(SB), Z24; \
	VBROADCASTSS sigc<>+28(SB), Z23; \
	VBROADCASTSS sigc<>+32(SB), Z22; \
	VBROADCASTSS sigc<>+36(SB), Z21; \
	VBROADCASTSS sigc<>+40(SB), Z20; \
	VBROADCASTSS sigc<>+44(SB), Z19; \
	VBROADCASTSS sigc<>+48(SB), Z18

// SIGMOID sets O = 1/(1+exp(-A)); T, N, P are clobbered.
#define SIGMOID(A, O, T, N, P) \
	VSUBPS A, Z31, T; \
	VMAXPS Z30, T, T; \
	VMINPS Z29, T, T; \
	VMULPS Z28, T, N; \
	VRNDSCALEPS $0, N, N; \
	VFNMADD231PS Z27, N, T; \
	VFNMADD231PS Z26, N, T; \
	VMOVAPS Z25, P; \
	VFMADD213PS Z24, T, P; \
	VFMADD213PS Z23, T, P; \
	VFMADD213PS Z22, T, P; \
	VFMADD213PS Z21, T, P; \
	VFMADD213PS Z20, T, P; \
	VMULPS T, T, O; \
	VFMADD213PS T, O, P; \
	VADDPS Z19, P, P; \
	VSCALEFPS N, P, P; \
	VADDPS Z19, P, P; \
	VRCP14PS P, O; \
	VFNMADD213PS Z18, O, P; \
	VMULPS P, O, O

// TAILMASK sets K1 to the low (n mod 16) lanes from CX = n; AX and DX are
// clobbered.
#define TAILMASK \
	MOVQ CX, DX; \
	ANDQ $15, CX; \
	MOVQ $1, AX; \
	SHLQ CX, AX; \
	DECQ AX; \
	KMOVW AX, K1; \
	MOVQ DX, CX

// func siluAffine(x, y *float32, n int, sc, sh float32)
// y = a·sigmoid(a), a = x·sc + sh.
TEXT ·siluAffine(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	VBROADCASTSS sc+24(FP), Z16
	VBROADCASTSS sh+28(FP), Z17
	LOADC
	TAILMASK
	SHRQ $4, CX
	JZ silutail
siluloop:
	VMOVUPS (SI), Z0
	VFMADD213PS Z17, Z16, Z0
	SIGMOID(Z0, Z1, Z2, Z3, Z4)
	VMULPS Z1, Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ siluloop
silutail:
	KORTESTW K1, K1
	JZ silurdone
	VMOVUPS.Z (SI), K1, Z0
	VFMADD213PS Z17, Z16, Z0
	SIGMOID(Z0, Z1, Z2, Z3, Z4)
	VMULPS Z1, Z0, Z0
	VMOVUPS Z0, K1, (DI)
silurdone:
	VZEROUPPER
	RET

// BACK1 is one vector of gnBack1 on Z0 = x, Z5 = ∂y (zero in masked lanes).
#define BACK1 \
	VMOVAPS Z0, Z6; \
	VFMADD213PS Z12, Z11, Z6; \
	SIGMOID(Z6, Z1, Z2, Z3, Z4); \
	VSUBPS Z1, Z19, Z2; \
	VMULPS Z6, Z2, Z2; \
	VADDPS Z19, Z2, Z2; \
	VMULPS Z1, Z2, Z2; \
	VMULPS Z5, Z2, Z2; \
	VSUBPS Z14, Z0, Z3; \
	VMULPS Z15, Z3, Z3; \
	VADDPS Z2, Z8, Z8; \
	VFMADD231PS Z3, Z2, Z9; \
	VMULPS Z13, Z2, Z2

// func gnBack1(x, dy, dx *float32, n int, p *[5]float32, sums *[32]float32)
// With a = x·sc + sh, s = sigmoid(a): da = ∂y·s·(1 + a(1−s)), x̂ = (x−mean)·rstd;
// dx = γ·da, sums[0:16] += da and sums[16:32] += da·x̂ by lane.
// p = [sc, sh, γ, mean, rstd].
TEXT ·gnBack1(SB), NOSPLIT, $0-48
	MOVQ x+0(FP), SI
	MOVQ dy+8(FP), R8
	MOVQ dx+16(FP), DI
	MOVQ n+24(FP), CX
	MOVQ p+32(FP), R9
	MOVQ sums+40(FP), R10
	VBROADCASTSS 0(R9), Z11
	VBROADCASTSS 4(R9), Z12
	VBROADCASTSS 8(R9), Z13
	VBROADCASTSS 12(R9), Z14
	VBROADCASTSS 16(R9), Z15
	VMOVUPS 0(R10), Z8
	VMOVUPS 64(R10), Z9
	LOADC
	TAILMASK
	SHRQ $4, CX
	JZ back1tail
back1loop:
	VMOVUPS (SI), Z0
	VMOVUPS (R8), Z5
	BACK1
	VMOVUPS Z2, (DI)
	ADDQ $64, SI
	ADDQ $64, R8
	ADDQ $64, DI
	DECQ CX
	JNZ back1loop
back1tail:
	KORTESTW K1, K1
	JZ back1done
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (R8), K1, Z5
	BACK1
	VMOVUPS Z2, K1, (DI)
back1done:
	VMOVUPS Z8, 0(R10)
	VMOVUPS Z9, 64(R10)
	VZEROUPPER
	RET

// func gnBack2(x, dx *float32, n int, a, b, m, c float32)
// dx = dx·a + (x − m)·b + c.
TEXT ·gnBack2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ dx+8(FP), DI
	MOVQ n+16(FP), CX
	VBROADCASTSS a+24(FP), Z11
	VBROADCASTSS b+28(FP), Z12
	VBROADCASTSS m+32(FP), Z13
	VBROADCASTSS c+36(FP), Z14
	TAILMASK
	SHRQ $4, CX
	JZ back2tail
back2loop:
	VMOVUPS (DI), Z0
	VMOVUPS (SI), Z1
	VSUBPS Z13, Z1, Z1
	VFMADD213PS Z14, Z11, Z0
	VFMADD231PS Z12, Z1, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ back2loop
back2tail:
	KORTESTW K1, K1
	JZ back2done
	VMOVUPS.Z (DI), K1, Z0
	VMOVUPS.Z (SI), K1, Z1
	VSUBPS Z13, Z1, Z1
	VFMADD213PS Z14, Z11, Z0
	VFMADD231PS Z12, Z1, Z0
	VMOVUPS Z0, K1, (DI)
back2done:
	VZEROUPPER
	RET

// func sumSq(x *float32, n int, out *[16]float64)
// out[0:8] += x and out[8:16] += x² by lane, in float64.
TEXT ·sumSq(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	VMOVUPD 0(DI), Z8
	VMOVUPD 64(DI), Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	TAILMASK
	SHRQ $4, CX
	JZ sumtail
sumloop:
	VCVTPS2PD (SI), Z0
	VCVTPS2PD 32(SI), Z1
	VADDPD Z0, Z8, Z8
	VADDPD Z1, Z10, Z10
	VFMADD231PD Z0, Z0, Z9
	VFMADD231PD Z1, Z1, Z11
	ADDQ $64, SI
	DECQ CX
	JNZ sumloop
sumtail:
	KORTESTW K1, K1
	JZ sumdone
	VMOVUPS.Z (SI), K1, Z2
	VEXTRACTF32X8 $1, Z2, Y3
	VCVTPS2PD Y2, Z0
	VCVTPS2PD Y3, Z1
	VADDPD Z0, Z8, Z8
	VADDPD Z1, Z10, Z10
	VFMADD231PD Z0, Z0, Z9
	VFMADD231PD Z1, Z1, Z11
sumdone:
	VADDPD Z10, Z8, Z8
	VADDPD Z11, Z9, Z9
	VMOVUPD Z8, 0(DI)
	VMOVUPD Z9, 64(DI)
	VZEROUPPER
	RET
