//go:build linux

package cuda

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/optim"
)

// TestCapture: a captured graph runs nothing while it is captured; each
// Launch runs its launches, products (α recorded by value) and copies on
// the buffers' current contents; uploads, allocations and a capture inside
// the capture are errors that leave the device working; a reallocated
// workspace makes graphs stale.
func TestCapture(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	const m, k, n = 3, 4, 5
	for name, d := range backends(t) {
		t.Run(name, func(t *testing.T) {
			x, w := upload(t, d, make([]float32, m*k)), upload(t, d, randn(r, k*n, 1))
			y, z, p := upload(t, d, make([]float32, m*k)), upload(t, d, make([]float32, m*k)), upload(t, d, make([]float32, m*n))
			q := upload(t, d, make([]float32, m*k))
			g, err := d.Capture(func() error {
				if err := d.SiLU(y, x); err != nil {
					return err
				}
				if err := d.Copy(z, 0, y); err != nil {
					return err
				}
				if err := d.Gemm(false, false, m, n, k, 2, y, w, 0, p); err != nil {
					return err
				}
				return d.Add(q, y, x) // another kernel's arguments after SiLU's
			})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if err := d.Synchronize(); err != nil {
				t.Fatal(err)
			}
			for _, v := range download(t, d, z) {
				if v != 0 {
					t.Fatal("the capture ran its work")
				}
			}
			wh := download(t, d, w)
			for run := range 2 {
				xs := randn(r, m*k, 2)
				if err := d.Upload(x, xs); err != nil {
					t.Fatal(err)
				}
				if err := g.Launch(); err != nil {
					t.Fatal(err)
				}
				want := make([]float64, len(xs))
				for i, v := range xs {
					want[i] = float64(v) / (1 + math.Exp(-float64(v)))
				}
				near(t, "silu", download(t, d, y), want, 1e-6)
				near(t, "copy", download(t, d, z), want, 1e-6)
				sum := make([]float64, len(xs))
				for i, v := range xs {
					sum[i] = want[i] + float64(v)
				}
				near(t, "add", download(t, d, q), sum, 1e-6)
				prod := make([]float64, m*n)
				for i := range m {
					for j := range n {
						for q := range k {
							prod[i*n+j] += 2 * want[i*k+q] * float64(wh[q*n+j])
						}
					}
				}
				near(t, "product", download(t, d, p), prod, 1e-5)
				t.Logf("launch %d matches", run+1)
			}
			for what, f := range map[string]func() error{
				"an upload":     func() error { return d.Upload(x, make([]float32, m*k)) },
				"an allocation": func() error { _, err := d.Alloc(4); return err },
				"a capture":     func() error { _, err := d.Capture(func() error { return nil }); return err },
			} {
				if _, err := d.Capture(f); err == nil || !strings.Contains(err.Error(), "captur") {
					t.Errorf("%s inside a capture: %v", what, err)
				}
			}
			// The device works as before after the refused captures.
			xs := randn(r, m*k, 1)
			if err := d.Upload(x, xs); err != nil {
				t.Fatal(err)
			}
			if err := d.SiLU(y, x); err != nil {
				t.Fatal(err)
			}
			got := download(t, d, y)
			for i, v := range xs {
				if want := float64(v) / (1 + math.Exp(-float64(v))); math.Abs(float64(got[i])-want) > 1e-6 {
					t.Fatalf("silu after the refused captures: %g, want %g", got[i], want)
				}
			}
			if g.Stale() {
				t.Fatal("stale without a reallocation")
			}
			d.gen++
			if !g.Stale() {
				t.Fatal("not stale after a workspace was reallocated")
			}
		})
	}
}

// TestParamSet: Adam with the EMA on a set of tensors (sizes around a
// chunk's) in one launch gives optim's values bit for bit, as the kernels
// of one tensor do; the gradients' sum of squares is their float64 sum's;
// mismatched buffers are refused.
func TestParamSet(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	sizes := []int{1, 600, chunkValues, chunkValues + 1, 2*chunkValues + 77}
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
			sq := alloc(t, d, 1)
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
				if err := d.GradSumSquares(sq, p); err != nil {
					t.Fatal(err)
				}
				near(t, "Σg²", download(t, d, sq), []float64{want}, 1e-6)
				if err := d.AdamEMA(p, AdamStep{T: ref.T, LR: ref.LR, Beta1: ref.Beta1, Beta2: ref.Beta2, Eps: ref.Eps, Scale: scale}, dec); err != nil {
					t.Fatal(err)
				}
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
