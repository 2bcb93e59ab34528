package kernel

import (
	"math/rand/v2"
	"testing"
)

func BenchmarkPad(b *testing.B) {
	b.ReportAllocs()
	g := Conv3{C: 16, O: 16, B: 128, H: 28, W: 28}
	x := randn(rand.New(rand.NewPCG(1, 1)), g.C*g.B*g.H*g.W)
	xp := make([]float32, g.PaddedLen())
	for b.Loop() {
		g.pad(x, g.C, xp)
	}
	b.ReportMetric(float64(8*len(x))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}
