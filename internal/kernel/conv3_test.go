package kernel

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// naive is the textbook 3×3, pad 1 convolution and its two gradients, in float64.
func naive(g Conv3, x, w, bias, dy []float32) (y, dx, dw []float64) {
	y = make([]float64, g.O*g.B*g.H*g.W)
	dx = make([]float64, len(x))
	dw = make([]float64, len(w))
	for o := 0; o < g.O; o++ {
		for b := 0; b < g.B; b++ {
			for r := 0; r < g.H; r++ {
				for s := 0; s < g.W; s++ {
					yi := ((o*g.B+b)*g.H+r)*g.W + s
					sum := float64(bias[o])
					for c := 0; c < g.C; c++ {
						for ky := 0; ky < 3; ky++ {
							for kx := 0; kx < 3; kx++ {
								ir, is := r+ky-1, s+kx-1
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

func randn(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func TestConv3MatchesNaive(t *testing.T) {
	if !Available() {
		t.Skip("no AVX-512 here (or NCSN_SIMD=off): the kernels cannot run; nn's tests cover the portable path")
	}
	for _, g := range []Conv3{
		{C: 1, O: 16, B: 3, H: 28, W: 28},
		{C: 16, O: 1, B: 2, H: 28, W: 28},
		{C: 5, O: 7, B: 4, H: 7, W: 7},
		{C: 64, O: 32, B: 2, H: 14, W: 14},
		{C: 3, O: 6, B: 1, H: 5, W: 11},
		{C: 2, O: 3, B: 9, H: 1, W: 1},
	} {
		r := rand.New(rand.NewPCG(1, uint64(g.C*100+g.O)))
		x := randn(r, g.C*g.B*g.H*g.W)
		w := randn(r, g.O*g.C*9)
		bias := randn(r, g.O)
		dy := randn(r, g.O*g.B*g.H*g.W)
		wy, wdx, wdw := naive(g, x, w, bias, dy)
		y := make([]float32, len(wy))
		dx := make([]float32, len(x))
		dw := make([]float32, len(w))
		for i := range y { // stale values must be overwritten
			y[i] = float32(math.NaN())
		}
		xp := make([]float32, g.PaddedLen())
		g.ForwardPadded(x, w, bias, y, xp)
		g.Backward(x, xp, w, dy, dx, dw)
		// The separate passes give the same numbers, bit for bit.
		y2 := make([]float32, len(y))
		dx2 := make([]float32, len(x))
		dw2 := make([]float32, len(w))
		g.Forward(x, w, bias, y2)
		g.BackwardX(w, dy, dx2)
		g.BackwardW(x, dy, dw2)
		for i := range y2 {
			if y2[i] != y[i] {
				t.Fatalf("%+v: Forward and ForwardPadded differ at %d", g, i)
			}
		}
		for i := range dx2 {
			if dx2[i] != dx[i] {
				t.Fatalf("%+v: BackwardX and Backward differ at %d", g, i)
			}
		}
		for i := range dw2 {
			if dw2[i] != dw[i] {
				t.Fatalf("%+v: BackwardW and Backward differ at %d", g, i)
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

// TestConv3SameOnAnyCoreCount: the work is split by output (forward) and by
// (output pair, input channel) (∂w), never by a sum, so one core and two give
// the same bits: a seed reproduces a run on any machine with the kernels.
func TestConv3SameOnAnyCoreCount(t *testing.T) {
	if !Available() {
		t.Skip("no AVX-512 here (or NCSN_SIMD=off)")
	}
	g := Conv3{C: 8, O: 6, B: 5, H: 9, W: 9}
	r := rand.New(rand.NewPCG(7, 7))
	x, w, bias := randn(r, g.C*g.B*g.H*g.W), randn(r, g.O*g.C*9), randn(r, g.O)
	dy := randn(r, g.O*g.B*g.H*g.W)
	run := func(procs int) (y, dx, dw []float32) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		y, dx, dw = make([]float32, len(dy)), make([]float32, len(x)), make([]float32, len(w))
		xp := make([]float32, g.PaddedLen())
		g.ForwardPadded(x, w, bias, y, xp)
		g.Backward(x, xp, w, dy, dx, dw)
		return
	}
	y1, dx1, dw1 := run(1)
	y3, dx3, dw3 := run(3)
	for _, p := range [][2][]float32{{y1, y3}, {dx1, dx3}, {dw1, dw3}} {
		for i := range p[0] {
			if p[0][i] != p[1][i] {
				t.Fatalf("1 core and 3 cores differ at %d: %g vs %g", i, p[0][i], p[1][i])
			}
		}
	}
}
