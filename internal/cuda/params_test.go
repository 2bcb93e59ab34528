//go:build linux

package cuda

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ncsn-go/ncsn/optim"
)

// TestParamSet: Adam with the EMA on a set of tensors (sizes around a
// chunk's) in one launch gives optim's values bit for bit, as the kernels
// of one tensor do; the gradients' sum of squares is their float64 sum's;
// mismatched buffers are refused.
func TestParamSet(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	// More chunks than a block of ncsn_sum has threads, in the largest.
	sizes := []int{1, 600, chunkValues, chunkValues + 1, 2*chunkValues + 77, 300*chunkValues + 5}
	for name, d := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ref := optim.New(1e-3, sizes)
			var ws, emas [][]float32
			var bw, bg, bm, bv, bema []Buffer
			for _, n := range sizes {
				w := randn(r, n, 1)
				ws, emas = append(ws, w), append(emas, append([]float32(nil), w...))
				bw, bema = append(bw, upload(t, d, w)), append(bema, upload(t, d, w))
				bm, bv = append(bm, upload(t, d, make([]float32, n))), append(bv, upload(t, d, make([]float32, n)))
				bg = append(bg, alloc(t, d, n))
			}
			p, err := d.NewParamSet(bw, bg, bm, bv, bema)
			if err != nil {
				t.Fatal(err)
			}
			defer d.FreeParamSet(p)
			for step, scale := range []float64{1, 0.5, 1} {
				ref.Begin()
				dec := optim.EMADecay(0.999, ref.T, true)
				var want float64
				for k, n := range sizes {
					g := randn(r, n, float64(step+1))
					if err := d.Upload(bg[k], g); err != nil {
						t.Fatal(err)
					}
					for _, v := range g {
						want += float64(v) * float64(v)
					}
					ref.UpdateScaled(k, ws[k], g, scale)
					optim.UpdateEMA(emas[k], ws[k], dec)
				}
				sq, err := d.GradSumSquares(p)
				if err != nil {
					t.Fatal(err)
				}
				if math.Abs(sq-want) > 1e-12*want {
					t.Fatalf("Σg² = %g, want %g", sq, want)
				}
				if err := d.AdamEMA(p, AdamStep{T: ref.T, LR: ref.LR, Beta1: ref.Beta1, Beta2: ref.Beta2, Eps: ref.Eps, Scale: scale}, dec); err != nil {
					t.Fatal(err)
				}
			}
			// A norm beyond float32's √max (1.8e19) is still finite: Σg²
			// was stored in float32 and overflowed to +Inf.
			for k, n := range sizes {
				g := make([]float32, n)
				if k == 1 {
					g[7] = 2e19
				}
				if err := d.Upload(bg[k], g); err != nil {
					t.Fatal(err)
				}
			}
			big := float64(float32(2e19))
			if sq, err := d.GradSumSquares(p); err != nil || sq != big*big {
				t.Fatalf("Σg² of one gradient 2e19: %g, %v", sq, err)
			}
			for k := range sizes {
				for _, c := range []struct {
					what      string
					got, want []float32
				}{{"w", download(t, d, bw[k]), ws[k]}, {"m", download(t, d, bm[k]), ref.M[k]}, {"v", download(t, d, bv[k]), ref.V[k]}, {"ema", download(t, d, bema[k]), emas[k]}} {
					for i := range c.want {
						if math.Float32bits(c.got[i]) != math.Float32bits(c.want[i]) {
							t.Fatalf("tensor %d: %s[%d] = %g, optim's %g", k, c.what, i, c.got[i], c.want[i])
						}
					}
				}
			}
			if _, err := d.NewParamSet(bw[:2], bg[:2], bm[:2], bv[1:3], bema[:2]); err == nil {
				t.Fatal("a set of mismatched buffers was accepted")
			}
		})
	}
}
