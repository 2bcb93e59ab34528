package nn

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/ncsn-go/ncsn/internal/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BenchmarkConv3x3 is the layer of ../shared/notes/cpu-speed.md: a 3×3
// convolution, 64→64 channels, 16×16, batch 64, forward and backward (∂x
// and ∂w), reported in GFLOP/s (2·9·64·64·256·64 multiply-adds per pass,
// three passes).
func BenchmarkConv3x3(b *testing.B) {
	b.ReportAllocs()
	const c, o, n, hw = 64, 64, 64, 16
	r := rand.New(rand.NewPCG(1, 1))
	g := G.NewGraph()
	mk := func(name string, s ...int) *G.Node {
		v := make([]float32, tensor.Shape(s).TotalSize())
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return G.NewTensor(g, G.Float32, len(s), G.WithShape(s...), G.WithName(name), G.WithValue(tensor.New(tensor.WithShape(s...), tensor.WithBacking(v))))
	}
	x, w, bias := mk("x", c, n, hw, hw), mk("w", o, c, 3, 3), mk("b", o)
	y, err := Conv2D(x, w, bias, ConvGeom{3, 1, 1})
	if err != nil {
		b.Fatal(err)
	}
	rw := mk("r", o, n, hw, hw)
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(y, rw))))
	if _, err := G.Grad(loss, x, w); err != nil {
		b.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
	}
	flops := 3 * 2.0 * 9 * c * o * hw * hw * n
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkSgemm is the machine's product peak as this project calls it.
func BenchmarkSgemm(b *testing.B) {
	b.ReportAllocs()
	for _, s := range []int{1024, 2048} {
		b.Run(strconv.Itoa(s), func(b *testing.B) {
			b.ReportAllocs()
			a := make([]float32, s*s)
			for i := range a {
				a[i] = float32(i%7) * 0.1
			}
			c := make([]float32, s*s)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				blas.Gemm(false, false, s, s, s, 1, a, s, a, s, 0, c, s)
			}
			b.ReportMetric(2*float64(s)*float64(s)*float64(s)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
