//go:build linux

package cuda

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
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
				"a wait":        d.Synchronize,
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
			g.Close()
			if err := g.Launch(); err == nil {
				t.Fatal("a closed graph launched")
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
