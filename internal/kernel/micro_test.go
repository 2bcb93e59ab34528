package kernel

import "testing"

// The micro-benchmarks run one kernel of the chosen set (NCSN_SIMD) on one
// core over data in L1/L2: the ceiling that the layer benchmarks are
// measured against.
func BenchmarkMicroFwd(b *testing.B) {
	b.ReportAllocs()
	if !Available() {
		b.Skip("no SIMD kernels here")
	}
	c := 16
	x := make([]float32, c*4096)
	w := make([]float32, c*36)
	y := make([]float32, 4*2048)
	tab := make([][4]uint16, 1024/16+6)
	for i := range tab {
		tab[i] = [4]uint16{0xffff, 0xffff, 64}
	}
	bias := make([]float32, 4)
	for b.Loop() {
		for q := 0; q < 960; q += 96 {
			cur.fwd(&x[q], &w[0], &y[q], c, 4096, 30, 2048, &tab[q/16], &bias[0])
		}
	}
	fl := 2.0 * 4 * 96 * 9 * float64(c) * 10 * float64(b.N)
	b.ReportMetric(fl/b.Elapsed().Seconds()/1e9, "GFLOP/s-1core")
}

func BenchmarkMicroDw(b *testing.B) {
	b.ReportAllocs()
	if !Available() {
		b.Skip("no SIMD kernels here")
	}
	x := make([]float32, 8192)
	dy := make([]float32, 2*4096)
	acc := make([]float64, cur.dwOut*9*cur.lanes)
	for b.Loop() {
		cur.dw(&dy[0], &x[0], &acc[0], 128, 4096, 30)
	}
	fl := 2.0 * 9 * float64(cur.dwOut) * 128 * 16 * float64(b.N)
	b.ReportMetric(fl/b.Elapsed().Seconds()/1e9, "GFLOP/s-1core")
}
