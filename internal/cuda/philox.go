package cuda

import "math"

// Philox4x32 is the Philox4x32-10 counter-based generator (Salmon et al.,
// "Parallel random numbers: as easy as 1, 2, 3", SC 2011): ten rounds over a
// 128-bit counter under a 64-bit key. It is the Go reference of the GPU
// kernels' generator (kernels.cu, philox), which give every element of a
// tensor its own counter, so that a seed gives the same numbers whatever the
// launch geometry.
func Philox4x32(ctr [4]uint32, key [2]uint32) [4]uint32 {
	const m0, m1 = 0xD2511F53, 0xCD9E8D57
	const w0, w1 = 0x9E3779B9, 0xBB67AE85
	for r := 0; r < 10; r++ {
		p0 := uint64(m0) * uint64(ctr[0])
		p1 := uint64(m1) * uint64(ctr[2])
		ctr = [4]uint32{uint32(p1>>32) ^ ctr[1] ^ key[0], uint32(p1), uint32(p0>>32) ^ ctr[3] ^ key[1], uint32(p0)}
		key[0] += w0
		key[1] += w1
	}
	return ctr
}

// Normal is standard normal number i of the stream of a seed, as the
// kernels compute it (in float64 here, float32 there): Philox block
// q = i/4 under the seed gives four 24-bit uniforms in (0, 1); lanes 0, 1
// (and 2, 3) are the Box–Muller pair of the first (and last) two.
func Normal(seed, i uint64) float64 {
	q := i / 4
	w := Philox4x32([4]uint32{uint32(q), uint32(q >> 32), 0, 0}, [2]uint32{uint32(seed), uint32(seed >> 32)})
	lane := i % 4
	a, b := w[lane&2], w[lane&2+1]
	u1 := (float64(a>>8) + 0.5) / (1 << 24)
	u2 := (float64(b>>8) + 0.5) / (1 << 24)
	r := math.Sqrt(-2 * math.Log(u1))
	if lane&1 == 0 {
		return r * math.Cos(2*math.Pi*u2)
	}
	return r * math.Sin(2*math.Pi*u2)
}
