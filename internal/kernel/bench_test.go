package kernel

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkConv3 is the layer of issue 4: 64→64 channels, 16×16, batch 64,
// forward + ∂x + ∂w (3 × 2·O·C·9·B·H·W flops).
func BenchmarkConv3(b *testing.B) {
	b.ReportAllocs()
	if !Available() {
		b.Skip("no SIMD kernels here")
	}
	g := Conv3{C: 64, O: 64, B: 64, H: 16, W: 16}
	r := rand.New(rand.NewPCG(1, 2))
	x := randn(r, g.C*g.B*g.H*g.W)
	w := randn(r, g.O*g.C*9)
	bias := randn(r, g.O)
	y := make([]float32, g.O*g.B*g.H*g.W)
	dx := make([]float32, len(x))
	dw := make([]float32, len(w))
	flops := 3 * 2 * float64(g.O*g.C*9*g.B*g.H*g.W)
	for _, part := range []string{"fwd", "dx", "dw", "all"} {
		b.Run(part, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				switch part {
				case "fwd":
					g.Forward(x, w, bias, y)
				case "dx":
					g.BackwardX(w, y, dx)
				case "dw":
					g.BackwardW(x, y, dw)
				default:
					g.Forward(x, w, bias, y)
					g.BackwardX(w, y, dx)
					g.BackwardW(x, y, dw)
				}
			}
			f := flops / 3
			if part == "all" {
				f = flops
			}
			b.ReportMetric(f*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkConv3Net runs the shapes of the default MNIST network at batch 128.
func BenchmarkConv3Net(b *testing.B) {
	b.ReportAllocs()
	if !Available() {
		b.Skip("no SIMD kernels here")
	}
	for _, g := range []Conv3{
		{C: 16, O: 16, B: 128, H: 28, W: 28},
		{C: 32, O: 16, B: 128, H: 28, W: 28},
		{C: 32, O: 32, B: 128, H: 14, W: 14},
		{C: 64, O: 32, B: 128, H: 14, W: 14},
		{C: 32, O: 32, B: 128, H: 7, W: 7},
	} {
		r := rand.New(rand.NewPCG(1, 2))
		x := randn(r, g.C*g.B*g.H*g.W)
		w := randn(r, g.O*g.C*9)
		bias := randn(r, g.O)
		y := make([]float32, g.O*g.B*g.H*g.W)
		dx := make([]float32, len(x))
		dw := make([]float32, len(w))
		flops := 2 * float64(g.O*g.C*9*g.B*g.H*g.W)
		name := func(p string) string { return fmt.Sprintf("%s/%dx%d@%d", p, g.C, g.O, g.H) }
		b.Run(name("fwd"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g.Forward(x, w, bias, y)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(name("dx"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g.BackwardX(w, y, dx)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(name("dw"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g.BackwardW(x, y, dw)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
