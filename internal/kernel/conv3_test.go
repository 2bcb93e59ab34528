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
	eachSet(t, func(t *testing.T) {
		for _, g := range []Conv3{
			{C: 1, O: 16, B: 3, H: 28, W: 28},
			{C: 16, O: 1, B: 2, H: 28, W: 28},
			{C: 5, O: 7, B: 4, H: 7, W: 7},
			{C: 64, O: 32, B: 2, H: 14, W: 14},
			{C: 3, O: 6, B: 1, H: 5, W: 11},
			{C: 2, O: 3, B: 9, H: 1, W: 1},
			{C: 3, O: 5, B: 2, H: 3, W: 100}, // rows wider than a 96-pixel block
			{C: 2, O: 4, B: 1, H: 2, W: 200},
		} {
			poisonPool()
			r := rand.New(rand.NewPCG(1, uint64(g.C*100+g.O)))
			x := randn(r, g.C*g.B*g.H*g.W)
			w := randn(r, g.O*g.C*9)
			bias := randn(r, g.O)
			dy := randn(r, g.O*g.B*g.H*g.W)
			wy, wdx, wdw := naiveConv(g.C, g.O, g.B, g.H, g.W, 1, x, w, bias, dy)
			// Stale values, the padding's among them, must be overwritten.
			y, dx, dw := nanFilled(len(wy)), nanFilled(len(x)), nanFilled(len(w))
			xp := nanFilled(g.PaddedLen())
			g.ForwardPadded(x, w, bias, y, xp)
			g.Backward(x, xp, w, dy, dx, dw)
			// The separate passes give the same numbers, bit for bit.
			y2, dx2, dw2 := nanFilled(len(y)), nanFilled(len(x)), nanFilled(len(w))
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
	})
}

// TestConv3SameOnAnyCoreCount: the work is split by output (forward) and by
// (output pair, input channel) (∂w), never by a sum, so one core and two give
// the same bits: a seed reproduces a run on any machine with the kernels.
// conv3 is what TestConv3SameOnAnyCoreCount runs of Conv3 and Conv3S2.
type conv3 interface {
	PaddedLen() int
	ForwardPadded(x, w, bias, y, xp []float32)
	Backward(x, xp, w, dy, dx, dw []float32)
}

func TestConv3SameOnAnyCoreCount(t *testing.T) {
	eachSet(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 7))
		w, bias := randn(r, 6*8*9), randn(r, 6)
		for _, c := range []struct {
			name  string
			g     conv3
			x, dy []float32
		}{
			{"stride 1", Conv3{C: 8, O: 6, B: 5, H: 9, W: 9}, randn(r, 8*5*9*9), randn(r, 6*5*9*9)},
			{"stride 2", Conv3S2{C: 8, O: 6, B: 5, H: 10, W: 10}, randn(r, 8*5*10*10), randn(r, 6*5*5*5)},
		} {
			run := func(procs int) [3][]float32 {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				y, dx, dw := make([]float32, len(c.dy)), make([]float32, len(c.x)), make([]float32, len(w))
				xp := make([]float32, c.g.PaddedLen())
				c.g.ForwardPadded(c.x, w, bias, y, xp)
				c.g.Backward(c.x, xp, w, c.dy, dx, dw)
				return [3][]float32{y, dx, dw}
			}
			one := run(1)
			for _, procs := range []int{3, 64} { // 64: more cores than work items
				got := run(procs)
				for k, what := range []string{"y", "dx", "dw"} {
					for i := range one[k] {
						if one[k][i] != got[k][i] {
							t.Fatalf("%s: %s: 1 core and %d cores differ at %d: %g vs %g", c.name, what, procs, i, one[k][i], got[k][i])
						}
					}
				}
			}
		}
	})
}

// eachSet runs f once for each kernel set this CPU supports (AVX-512 and
// AVX2 here), with that set chosen, whatever NCSN_SIMD says.
func eachSet(t *testing.T, f func(t *testing.T)) {
	sets := supported()
	if len(sets) == 0 {
		t.Skip("no AVX2 or AVX-512 here: the kernels cannot run; nn's tests cover the portable path")
	}
	defer func(c *set) { cur = c }(cur)
	for _, k := range sets {
		cur = k
		t.Run(k.name, f)
	}
}

// TestSetsAgree: the AVX2 forward kernels add the same products in the same
// order as the AVX-512 ones, so y and ∂x are the same bits; ∂w's partial
// sums run in lanes of another width, so it agrees to float32 rounding.
func TestSetsAgree(t *testing.T) {
	if !haveAVX512 || !haveAVX2 {
		t.Skip("needs a CPU with both AVX-512 and AVX2")
	}
	defer func(c *set) { cur = c }(cur)
	for _, g := range []Conv3{{C: 16, O: 5, B: 3, H: 28, W: 28}, {C: 7, O: 32, B: 2, H: 7, W: 7}} {
		r := rand.New(rand.NewPCG(5, uint64(g.C)))
		x, w, bias := randn(r, g.C*g.B*g.H*g.W), randn(r, g.O*g.C*9), randn(r, g.O)
		dy := randn(r, g.O*g.B*g.H*g.W)
		var ys, dxs, dws [2][]float32
		for i, k := range []*set{avx512Set, avx2Set} {
			cur = k
			ys[i], dxs[i], dws[i] = make([]float32, len(dy)), make([]float32, len(x)), make([]float32, len(w))
			g.Forward(x, w, bias, ys[i])
			g.Backward(x, nil, w, dy, dxs[i], dws[i])
		}
		for i := range ys[0] {
			if ys[0][i] != ys[1][i] {
				t.Fatalf("%+v: y[%d] avx512 %g, avx2 %g", g, i, ys[0][i], ys[1][i])
			}
		}
		for i := range dxs[0] {
			if dxs[0][i] != dxs[1][i] {
				t.Fatalf("%+v: dx[%d] avx512 %g, avx2 %g", g, i, dxs[0][i], dxs[1][i])
			}
		}
		for i := range dws[0] {
			if d := math.Abs(float64(dws[0][i] - dws[1][i])); d > 1e-5*math.Sqrt(float64(g.B*g.H*g.W)) {
				t.Fatalf("%+v: dw[%d] avx512 %g, avx2 %g", g, i, dws[0][i], dws[1][i])
			}
		}
	}
	// Stride 2 (the phases' stride-1 kernels): y and ∂x the same bits too.
	for _, g := range []Conv3S2{{C: 16, O: 5, B: 3, H: 28, W: 28}, {C: 7, O: 32, B: 2, H: 6, W: 130}} {
		r := rand.New(rand.NewPCG(6, uint64(g.C)))
		x, w, bias := randn(r, g.C*g.B*g.H*g.W), randn(r, g.O*g.C*9), randn(r, g.O)
		dy := randn(r, g.O*g.B*g.H*g.W/4)
		var ys, dxs [2][]float32
		for i, k := range []*set{avx512Set, avx2Set} {
			cur = k
			ys[i], dxs[i] = make([]float32, len(dy)), make([]float32, len(x))
			xp := make([]float32, g.PaddedLen())
			g.ForwardPadded(x, w, bias, ys[i], xp)
			g.Backward(x, xp, w, dy, dxs[i], make([]float32, len(w)))
		}
		for _, p := range [][2][]float32{ys, dxs} {
			for i := range p[0] {
				if p[0][i] != p[1][i] {
					t.Fatalf("stride 2 %+v: avx512 and avx2 differ at %d: %g vs %g", g, i, p[0][i], p[1][i])
				}
			}
		}
	}
}

// TestChooseSet: the best set by default, the one asked for where the CPU
// has it, else the best with a note; on CPUs with both sets, AVX2 only, and
// neither.
func TestChooseSet(t *testing.T) {
	both, avx2, none := []*set{avx512Set, avx2Set}, []*set{avx2Set}, []*set(nil)
	for _, c := range []struct {
		env  string
		sup  []*set
		want *set
		note bool
	}{
		{"", both, avx512Set, false},
		{"auto", both, avx512Set, false},
		{"avx2", both, avx2Set, false},
		{"avx512", both, avx512Set, false},
		{"off", both, nil, false},
		{"sse", both, avx512Set, true},
		{"", avx2, avx2Set, false}, // a CPU without AVX-512 gets AVX2
		{"avx512", avx2, avx2Set, true},
		{"off", avx2, nil, false},
		{"", none, nil, false},
		{"avx2", none, nil, true},
	} {
		k, note := choose(c.env, c.sup)
		if k != c.want || (note != "") != c.note {
			t.Errorf("NCSN_SIMD=%q on %d sets: got %v, note %q", c.env, len(c.sup), k, note)
		}
	}
}
