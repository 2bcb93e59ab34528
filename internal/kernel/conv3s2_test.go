package kernel

import (
	"math"
	"math/rand/v2"
	"testing"
)

// naiveS2 is the textbook 3×3, stride 2, pad 1 convolution and its gradients.
func naiveS2(g Conv3S2, x, w, bias, dy []float32) (y, dx, dw []float64) {
	oh, ow := g.H/2, g.W/2
	y = make([]float64, g.O*g.B*oh*ow)
	dx = make([]float64, len(x))
	dw = make([]float64, len(w))
	for o := 0; o < g.O; o++ {
		for b := 0; b < g.B; b++ {
			for r := 0; r < oh; r++ {
				for s := 0; s < ow; s++ {
					yi := ((o*g.B+b)*oh+r)*ow + s
					sum := float64(bias[o])
					for c := 0; c < g.C; c++ {
						for ky := 0; ky < 3; ky++ {
							for kx := 0; kx < 3; kx++ {
								ir, is := 2*r+ky-1, 2*s+kx-1
								if ir < 0 || ir >= g.H || is < 0 || is >= g.W {
									continue
								}
								xi := ((c*g.B+b)*g.H+ir)*g.W + is
								wi := ((o*g.C+c)*3+ky)*3 + kx
								sum += float64(w[wi]) * float64(x[xi])
								dx[xi] += float64(w[wi]) * float64(dy[yi])
								dw[wi] += float64(x[xi]) * float64(dy[yi])
							}
						}
					}
					y[yi] = sum
				}
			}
		}
	}
	return
}

func TestConv3S2MatchesNaive(t *testing.T) {
	if !Available() {
		t.Skip("no AVX-512 here (or NCSN_SIMD=off)")
	}
	for _, g := range []Conv3S2{
		{C: 16, O: 16, B: 3, H: 28, W: 28},
		{C: 32, O: 32, B: 2, H: 14, W: 14},
		{C: 3, O: 5, B: 4, H: 6, W: 10},
		{C: 1, O: 1, B: 2, H: 2, W: 2},
	} {
		r := rand.New(rand.NewPCG(11, uint64(g.C*100+g.O)))
		x := randn(r, g.C*g.B*g.H*g.W)
		w := randn(r, g.O*g.C*9)
		bias := randn(r, g.O)
		dy := randn(r, g.O*g.B*g.H*g.W/4)
		wy, wdx, wdw := naiveS2(g, x, w, bias, dy)
		y := make([]float32, len(wy))
		dx := make([]float32, len(x))
		dw := make([]float32, len(w))
		for i := range dx { // stale values must be overwritten
			dx[i] = float32(math.NaN())
		}
		xp := make([]float32, g.PaddedLen())
		g.ForwardPadded(x, w, bias, y, xp)
		g.Backward(x, xp, w, dy, dx, dw)
		dw2 := make([]float32, len(w))
		g.Backward(x, nil, w, dy, dx, dw2)
		for i := range dw {
			if dw[i] != dw2[i] {
				t.Fatalf("%+v: Backward with and without the kept phases differ at %d", g, i)
			}
		}
		check := func(name string, got []float32, want []float64, scale float64) {
			t.Helper()
			for i := range want {
				if d := math.Abs(float64(got[i]) - want[i]); !(d <= 1e-5*scale) {
					t.Fatalf("%+v %s[%d] = %g, want %g", g, name, i, got[i], want[i])
				}
			}
		}
		check("y", y, wy, math.Sqrt(float64(g.C*9))+1)
		check("dx", dx, wdx, math.Sqrt(float64(g.O*9))+1)
		check("dw", dw, wdw, math.Sqrt(float64(g.B*g.H*g.W))+1)
	}
}
