package kernel

import (
	"math"
	"math/rand/v2"
	"testing"
)

func sig(a float64) float64 { return 1 / (1 + math.Exp(-a)) }

func TestRowKernels(t *testing.T) {
	eachSet(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, n := range []int{1, 7, 15, 16, 17, 49, 196, 784} {
			x := randn(r, n)
			dy := randn(r, n)
			x[0] = 120 // far beyond the clamps of exp
			if n > 1 {
				x[1] = -120
			}
			sc, sh, g, mean, rstd := float32(1.3), float32(-0.2), float32(0.7), float32(0.1), float32(1.9)

			var ws, wq float64
			for _, v := range x {
				ws += float64(v)
				wq += float64(v) * float64(v)
			}
			s, q := SumSq(x)
			if math.Abs(s-ws) > 1e-9*wq || math.Abs(q-wq) > 1e-9*wq {
				t.Fatalf("n=%d: SumSq = %g, %g, want %g, %g", n, s, q, ws, wq)
			}

			y := nanFilled(n + 1) // every value written, none read
			y[n] = 42             // beyond the row: must be left alone
			SiLUAffine(x, y[:n], sc, sh)
			for i, v := range x {
				a := float64(v*sc + sh)
				if want := a * sig(a); math.Abs(float64(y[i])-want) > 1e-6*(1+math.Abs(want)) {
					t.Fatalf("n=%d: silu[%d](%g) = %g, want %g", n, i, a, y[i], want)
				}
			}
			if y[n] != 42 {
				t.Fatalf("n=%d: SiLUAffine wrote past the row", n)
			}

			dx := nanFilled(n + 1)
			dx[n] = 42
			sa, sx := GNSiLUBack1(x, dy, dx[:n], sc, sh, g, mean, rstd)
			var wa, wx float64
			for i, v := range x {
				a := float64(v*sc + sh)
				s := sig(a)
				da := float64(dy[i]) * s * (1 + a*(1-s))
				wa += da
				wx += da * float64((v-mean)*rstd)
				if want := float64(g) * da; math.Abs(float64(dx[i])-want) > 1e-5*(1+math.Abs(want)) {
					t.Fatalf("n=%d: back1 dx[%d] = %g, want %g", n, i, dx[i], want)
				}
			}
			if math.Abs(sa-wa) > 1e-4*(1+math.Abs(wa)) || math.Abs(sx-wx) > 1e-4*(1+math.Abs(wx)) {
				t.Fatalf("n=%d: back1 sums %g, %g, want %g, %g", n, sa, sx, wa, wx)
			}
			if dx[n] != 42 {
				t.Fatalf("n=%d: GNSiLUBack1 wrote past the row", n)
			}

			want := make([]float64, n)
			for i := range want {
				want[i] = float64(dx[i])*0.5 + float64(x[i]-3)*-2 + 0.25
			}
			Affine2(x, dx[:n], 0.5, -2, 3, 0.25)
			for i := range want {
				if math.Abs(float64(dx[i])-want[i]) > 1e-5*(1+math.Abs(want[i])) {
					t.Fatalf("n=%d: affine[%d] = %g, want %g", n, i, dx[i], want[i])
				}
			}
			if dx[n] != 42 {
				t.Fatalf("n=%d: Affine2 wrote past the row", n)
			}
		}
	})
}

// TestSigmoidSweep bounds the vector sigmoid over the whole range that matters.
func TestSigmoidSweep(t *testing.T) {
	eachSet(t, func(t *testing.T) {
		const n = 20001
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(-50 + 100*float64(i)/(n-1))
		}
		y := make([]float32, n)
		SiLUAffine(x, y, 1, 0)
		var worst float64
		for i, v := range x {
			want := float64(v) * sig(float64(v))
			// relative to max(1, |a|): float32 rounding of a·s is |a|·6e-8
			if e := math.Abs(float64(y[i])-want) / math.Max(1, math.Abs(float64(v))); e > worst {
				worst = e
			}
		}
		if worst > 3e-7 {
			t.Fatalf("silu error %g relative to max(1,|a|)", worst)
		}
		t.Logf("worst silu error %.2g relative to max(1,|a|)", worst)
	})
}

// nanFilled is n NaNs: an output buffer that a kernel reading it before
// writing (adding into it, say) would leave NaN.
func nanFilled(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(math.NaN())
	}
	return out
}
