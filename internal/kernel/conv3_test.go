package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// naiveConv is the textbook 3×3, pad 1 convolution of the given stride and
// its two gradients, in float64: x (c,b,h,w), w (o,c,3,3), dy (o,b,oh,ow).
func naiveConv(c, o, b, h, w, stride int, x, wt, bias, dy []float32) (y, dx, dw []float64) {
	oh, ow := (h-1)/stride+1, (w-1)/stride+1
	y = make([]float64, o*b*oh*ow)
	dx = make([]float64, len(x))
	dw = make([]float64, len(wt))
	for oo := 0; oo < o; oo++ {
		for bi := 0; bi < b; bi++ {
			for r := 0; r < oh; r++ {
				for s := 0; s < ow; s++ {
					yi := ((oo*b+bi)*oh+r)*ow + s
					sum := float64(bias[oo])
					for cc := 0; cc < c; cc++ {
						for ky := 0; ky < 3; ky++ {
							for kx := 0; kx < 3; kx++ {
								ir, is := stride*r+ky-1, stride*s+kx-1
								if ir < 0 || ir >= h || is < 0 || is >= w {
									continue
								}
								xi := ((cc*b+bi)*h+ir)*w + is
								wi := ((oo*c+cc)*3+ky)*3 + kx
								sum += float64(wt[wi]) * float64(x[xi])
								dx[xi] += float64(wt[wi]) * float64(dy[yi])
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

// poisonPool fills every pooled buffer, and a few new ones, with NaN: a
// kernel that reads a scratch position it did not write shows it.
func poisonPool() {
	for i := 0; i < 4; i++ {
		put32(make([]float32, 1<<20))
		put64(make([]float64, 1<<18))
	}
	pool.Lock()
	defer pool.Unlock()
	for _, b := range pool.f32 {
		b = b[:cap(b)]
		for i := range b {
			b[i] = float32(math.NaN())
		}
	}
	for _, b := range pool.f64 {
		b = b[:cap(b)]
		for i := range b {
			b[i] = math.NaN()
		}
	}
}

// near fails t where got strays from want by more than 1e-5·scale.
func near(t *testing.T, what string, got []float32, want []float64, scale float64) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); !(d <= 1e-5*scale) {
			t.Fatalf("%s[%d] = %g, want %g", what, i, got[i], want[i])
		}
	}
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
		poisonPool()
		r := rand.New(rand.NewPCG(1, uint64(g.C*100+g.O)))
		x := randn(r, g.C*g.B*g.H*g.W)
		w := randn(r, g.O*g.C*9)
		bias := randn(r, g.O)
		dy := randn(r, g.O*g.B*g.H*g.W)
		wy, wdx, wdw := naiveConv(g.C, g.O, g.B, g.H, g.W, 1, x, w, bias, dy)
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
		name := fmt.Sprintf("%+v ", g)
		near(t, name+"y", y, wy, math.Sqrt(float64(g.C*9))+1)
		near(t, name+"dx", dx, wdx, math.Sqrt(float64(g.O*9))+1)
		near(t, name+"dw", dw, wdw, math.Sqrt(float64(g.B*g.H*g.W))+1)
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
