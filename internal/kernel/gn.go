package kernel

// Row kernels of GroupNorm followed by SiLU, over one (channel, image) row of
// the channel-major layout. They need Available().

// SumSq returns Σx and Σx² over row, accumulated in float64.
func SumSq(row []float32) (sum, sumSq float64) {
	if len(row) == 0 {
		return 0, 0
	}
	var acc [16]float64
	sumSq16(row, &acc)
	for i := 0; i < 8; i++ {
		sum += acc[i]
		sumSq += acc[8+i]
	}
	return sum, sumSq
}

// sumSq16 and GNSiLUBack1 call the kernels directly, not through the set's
// function values: an indirect call makes every pointer argument escape,
// and the small arrays they pass would then be allocated on the heap at
// every row (62,000 allocations per forward pass of the default network).
// Like every kernel here they are called only where Available (cur is the
// AVX-512 or the AVX2 set).
func sumSq16(row []float32, acc *[16]float64) {
	if cur == avx512Set {
		sumSq(&row[0], len(row), acc)
	} else {
		sumSqA(&row[0], len(row), acc)
	}
}

// SiLUAffine writes y = a·sigmoid(a), a = x·sc + sh.
func SiLUAffine(x, y []float32, sc, sh float32) {
	if len(x) == 0 {
		return
	}
	_ = y[len(x)-1]
	cur.siluAffine(&x[0], &y[0], len(x), sc, sh)
}

// GNSiLUBack1 is the first backward pass over a row: with a = x·sc + sh and
// s = sigmoid(a), da = ∂y·s·(1 + a(1−s)) and x̂ = (x − mean)·rstd, it writes
// dx = γ·da and returns Σda and Σda·x̂.
func GNSiLUBack1(x, dy, dx []float32, sc, sh, gamma, mean, rstd float32) (sumDa, sumDaXh float64) {
	if len(x) == 0 {
		return 0, 0
	}
	_, _ = dy[len(x)-1], dx[len(x)-1]
	p := [5]float32{sc, sh, gamma, mean, rstd}
	var sums [32]float32
	if cur == avx512Set {
		gnBack1(&x[0], &dy[0], &dx[0], len(x), &p, &sums)
	} else {
		gnBack1A(&x[0], &dy[0], &dx[0], len(x), &p, &sums)
	}
	for i := 0; i < 16; i++ {
		sumDa += float64(sums[i])
		sumDaXh += float64(sums[16+i])
	}
	return sumDa, sumDaXh
}

// Affine2 writes dx = dx·a + (x − m)·b + c.
func Affine2(x, dx []float32, a, b, m, c float32) {
	if len(x) == 0 {
		return
	}
	_ = dx[len(x)-1]
	cur.gnBack2(&x[0], &dx[0], len(x), a, b, m, c)
}
