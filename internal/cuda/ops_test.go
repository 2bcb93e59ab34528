//go:build linux

package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
)

func alloc(t *testing.T, d *Device, n int) Buffer {
	t.Helper()
	b, err := d.Alloc(n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gnGradReference is ∂x, ∂γ, ∂β of GroupNorm+SiLU in float64, by the
// textbook formula.
func gnGradReference(x, dy, gamma, beta []float32, c, b, hw, groups int, eps float64) (dx, dg, db []float64) {
	_, st := gnReference(x, gamma, beta, c, b, hw, groups, eps)
	dx, dg, db = make([]float64, len(x)), make([]float64, c), make([]float64, c)
	cpg := c / groups
	n := float64(cpg * hw)
	for g := 0; g < groups; g++ {
		for bi := 0; bi < b; bi++ {
			mean, r := st[2*(g*b+bi)], st[2*(g*b+bi)+1]
			var m1, m2 float64
			gda := make(map[int]float64)
			for ch := g * cpg; ch < (g+1)*cpg; ch++ {
				for p := 0; p < hw; p++ {
					i := (ch*b+bi)*hw + p
					xh := (float64(x[i]) - mean) * r
					a := xh*float64(gamma[ch]) + float64(beta[ch])
					s := 1 / (1 + math.Exp(-a))
					da := float64(dy[i]) * s * (1 + a*(1-s))
					gda[i] = float64(gamma[ch]) * da
					m1 += gda[i] / n
					m2 += gda[i] * xh / n
					dg[ch] += da * xh
					db[ch] += da
				}
			}
			for ch := g * cpg; ch < (g+1)*cpg; ch++ {
				for p := 0; p < hw; p++ {
					i := (ch*b+bi)*hw + p
					xh := (float64(x[i]) - mean) * r
					dx[i] = r * (gda[i] - m1 - xh*m2)
				}
			}
		}
	}
	return dx, dg, db
}

// TestGNGradReference: the float64 reference gradient is the gradient of
// Σ dy·y by central differences (so the kernels are checked against
// something right).
func TestGNGradReference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const c, b, hw, groups = 4, 2, 5, 2
	x, dy := randn(r, c*b*hw, 1), randn(r, c*b*hw, 1)
	gamma, beta := randn(r, c, 1), randn(r, c, 1)
	dx, dg, _ := gnGradReference(x, dy, gamma, beta, c, b, hw, groups, 1e-5)
	f := func(x, gamma []float32) float64 {
		y, _ := gnReference(x, gamma, beta, c, b, hw, groups, 1e-5)
		var s float64
		for i := range y {
			s += float64(dy[i]) * y[i]
		}
		return s
	}
	const h = 1.0 / 64
	for _, i := range []int{0, 7, 23, 39} {
		xp, xm := append([]float32(nil), x...), append([]float32(nil), x...)
		xp[i] += h
		xm[i] -= h
		if fd := (f(xp, gamma) - f(xm, gamma)) / (2 * h); math.Abs(fd-dx[i]) > 1e-3*(1+math.Abs(fd)) {
			t.Fatalf("∂x[%d]: formula %g, differences %g", i, dx[i], fd)
		}
	}
	gp, gm := append([]float32(nil), gamma...), append([]float32(nil), gamma...)
	gp[1] += h
	gm[1] -= h
	if fd := (f(x, gp) - f(x, gm)) / (2 * h); math.Abs(fd-dg[1]) > 1e-3*(1+math.Abs(fd)) {
		t.Fatalf("∂γ[1]: formula %g, differences %g", dg[1], fd)
	}
}

func TestGroupNormSiLUGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, s := range []struct{ c, b, hw, groups int }{{8, 3, 49, 4}, {32, 2, 196, 8}, {40, 2, 9, 2}, {24, 3, 64, 1}} {
		x, dy := randn(r, s.c*s.b*s.hw, 2), randn(r, s.c*s.b*s.hw, 1)
		gamma, beta := randn(r, s.c, 1), randn(r, s.c, 1)
		wdx, wdg, wdb := gnGradReference(x, dy, gamma, beta, s.c, s.b, s.hw, s.groups, 1e-5)
		for name, d := range reduceBlocks(t) {
			t.Run(name, func(t *testing.T) {
				bx, bdy, bg, bb := upload(t, d, x), upload(t, d, dy), upload(t, d, gamma), upload(t, d, beta)
				by, bs := alloc(t, d, len(x)), alloc(t, d, 2*s.groups*s.b)
				if err := d.GroupNormSiLU(by, bs, bx, bg, bb, s.c, s.b, s.hw, s.groups, 1e-5); err != nil {
					t.Fatal(err)
				}
				bdx, bdg, bdb, part := alloc(t, d, len(x)), alloc(t, d, s.c), alloc(t, d, s.c), alloc(t, d, 2*s.c*s.b)
				if err := d.GroupNormSiLUGrad(bdx, bdg, bdb, bx, bdy, bg, bb, bs, part, s.c, s.b, s.hw, s.groups); err != nil {
					t.Fatal(err)
				}
				near(t, "∂x", download(t, d, bdx), wdx, 1e-4)
				near(t, "∂γ", download(t, d, bdg), wdg, 1e-4)
				near(t, "∂β", download(t, d, bdb), wdb, 1e-4)
			})
		}
	}
}

// naiveConv3 is the 3×3, pad 1 convolution and its input gradient in
// float64: x (c,b,h,w), w (o,c,3,3), dy (o,b,oh,ow).
func naiveConv3(c, o, b, h, w, stride int, x, wt, dy []float32) (y, dx []float64) {
	oh, ow := Conv3Out(h, w, stride)
	y, dx = make([]float64, o*b*oh*ow), make([]float64, len(x))
	for oo := 0; oo < o; oo++ {
		for bi := 0; bi < b; bi++ {
			for r := 0; r < oh; r++ {
				for s := 0; s < ow; s++ {
					yi := ((oo*b+bi)*oh+r)*ow + s
					for cc := 0; cc < c; cc++ {
						for k := 0; k < 9; k++ {
							ir, is := stride*r+k/3-1, stride*s+k%3-1
							if ir < 0 || ir >= h || is < 0 || is >= w {
								continue
							}
							xi := ((cc*b+bi)*h+ir)*w + is
							wi := (oo*c+cc)*9 + k
							y[yi] += float64(wt[wi]) * float64(x[xi])
							dx[xi] += float64(wt[wi]) * float64(dy[yi])
						}
					}
				}
			}
		}
	}
	return y, dx
}

// TestIm2ColCol2Im: w·im2col(x) is the convolution and col2im(wᵀ·dy) its
// input gradient (the products in float64 here; on the GPU cuBLAS does
// them), for strides 1 and 2 and odd and even sides.
func TestIm2ColCol2Im(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, s := range []struct{ c, o, b, h, w, stride int }{{3, 4, 2, 7, 7, 1}, {2, 3, 2, 8, 6, 2}, {2, 2, 1, 7, 5, 2}} {
		oh, ow := Conv3Out(s.h, s.w, s.stride)
		n := s.b * oh * ow
		x, wt, dy := randn(r, s.c*s.b*s.h*s.w, 1), randn(r, s.o*s.c*9, 1), randn(r, s.o*n, 1)
		wantY, wantDx := naiveConv3(s.c, s.o, s.b, s.h, s.w, s.stride, x, wt, dy)
		for name, d := range backends(t) {
			t.Run(name, func(t *testing.T) {
				bx, bcol := upload(t, d, x), alloc(t, d, s.c*9*n)
				if err := d.Im2Col3(bcol, bx, s.c, s.b, s.h, s.w, s.stride); err != nil {
					t.Fatal(err)
				}
				col := download(t, d, bcol)
				y := make([]float64, s.o*n)
				for oo := 0; oo < s.o; oo++ {
					for k := 0; k < s.c*9; k++ {
						for q := 0; q < n; q++ {
							y[oo*n+q] += float64(wt[oo*s.c*9+k]) * float64(col[k*n+q])
						}
					}
				}
				for i := range y {
					if math.Abs(y[i]-wantY[i]) > 1e-5 {
						t.Fatalf("y[%d] = %g, want %g", i, y[i], wantY[i])
					}
				}
				dcol := make([]float32, s.c*9*n) // wᵀ·dy
				for k := 0; k < s.c*9; k++ {
					for q := 0; q < n; q++ {
						var v float64
						for oo := 0; oo < s.o; oo++ {
							v += float64(wt[oo*s.c*9+k]) * float64(dy[oo*n+q])
						}
						dcol[k*n+q] = float32(v)
					}
				}
				bdcol, bdx := upload(t, d, dcol), alloc(t, d, len(x))
				if err := d.Col2Im3(bdx, bdcol, s.c, s.b, s.h, s.w, s.stride); err != nil {
					t.Fatal(err)
				}
				near(t, "∂x", download(t, d, bdx), wantDx, 1e-5)
			})
		}
	}
}

func TestChannelBiasScaleUpsample(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	const c, b, h, w = 3, 2, 4, 5
	hw := h * w
	x, e, v := randn(r, c*b*hw, 1), randn(r, b*c, 1), randn(r, b, 1)
	wantBias, wantScale, wantUp := make([]float64, len(x)), make([]float64, len(x)), make([]float64, 4*len(x))
	wantDe, wantDown := make([]float64, b*c), make([]float64, len(x))
	for ch := 0; ch < c; ch++ {
		for bi := 0; bi < b; bi++ {
			for p := 0; p < hw; p++ {
				i := (ch*b+bi)*hw + p
				wantBias[i] = float64(x[i]) + float64(e[bi*c+ch])
				wantScale[i] = float64(x[i]) * float64(v[bi])
				wantDe[bi*c+ch] += float64(x[i])
			}
		}
	}
	for pl := 0; pl < c*b; pl++ {
		for yy := 0; yy < 2*h; yy++ {
			for xx := 0; xx < 2*w; xx++ {
				wantUp[(pl*2*h+yy)*2*w+xx] = float64(x[pl*hw+yy/2*w+xx/2])
			}
		}
	}
	for i := range wantDown { // the upsampled x as dy: each value's four copies
		wantDown[i] = 4 * float64(x[i])
	}
	for name, d := range backends(t) {
		t.Run(name, func(t *testing.T) {
			bh, be, bv := upload(t, d, x), upload(t, d, e), upload(t, d, v)
			bde, by := alloc(t, d, b*c), alloc(t, d, len(x))
			if err := d.ChannelBiasGrad(bde, bh, c, b, hw); err != nil {
				t.Fatal(err)
			}
			near(t, "∂e", download(t, d, bde), wantDe, 1e-6)
			if err := d.ScaleBatch(by, bh, bv, c, b, hw); err != nil {
				t.Fatal(err)
			}
			near(t, "scaled", download(t, d, by), wantScale, 1e-6)
			bup, bdown := alloc(t, d, 4*len(x)), alloc(t, d, len(x))
			if err := d.Upsample2x(bup, bh, c*b, h, w); err != nil {
				t.Fatal(err)
			}
			near(t, "upsampled", download(t, d, bup), wantUp, 0)
			if err := d.Upsample2xGrad(bdown, bup, c*b, h, w); err != nil {
				t.Fatal(err)
			}
			near(t, "upsample grad", download(t, d, bdown), wantDown, 1e-6)
			if err := d.ChannelBias(bh, be, c, b, hw); err != nil {
				t.Fatal(err)
			}
			near(t, "biased", download(t, d, bh), wantBias, 1e-6)
			if err := d.ChannelBias(bh, be, c, b+1, hw); err == nil {
				t.Fatal("wrong shapes accepted")
			}
		})
	}
}

// TestResidualLoss: per-image ½‖σs + z‖² and the gradient of the batch
// mean, against float64.
func TestResidualLoss(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	const c, b, hw = 2, 3, 300
	s, z := randn(r, c*b*hw, 1), randn(r, c*b*hw, 1)
	sig := []float32{0.01, 0.5, 3}
	wantPer, wantDs := make([]float64, b), make([]float64, len(s))
	for ch := 0; ch < c; ch++ {
		for bi := 0; bi < b; bi++ {
			for p := 0; p < hw; p++ {
				i := (ch*b+bi)*hw + p
				res := float64(sig[bi])*float64(s[i]) + float64(z[i])
				wantPer[bi] += res * res / 2
				wantDs[i] = float64(sig[bi]) * res / b
			}
		}
	}
	for name, d := range backends(t) {
		t.Run(name, func(t *testing.T) {
			bs, bz, bsig := upload(t, d, s), upload(t, d, z), upload(t, d, sig)
			bper, bds := alloc(t, d, b), alloc(t, d, len(s))
			if err := d.ResidualLoss(bper, bds, bs, bsig, bz, c, b, hw); err != nil {
				t.Fatal(err)
			}
			near(t, "per image", download(t, d, bper), wantPer, 1e-6)
			near(t, "∂s", download(t, d, bds), wantDs, 1e-6)
		})
	}
}

// TestConvAndLinear: the convolution and linear layers composed from
// im2col, the matrix product and the bias kernels, or cuDNN's convolutions
// on a GPU that has it, match float64 loops, forward and
// backward.
func TestConvAndLinear(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	devs := convBackends(t)
	for _, geom := range []struct{ c, o, b, h, w, stride int }{
		{3, 4, 2, 6, 5, 1}, {3, 4, 2, 6, 5, 2}, {32, 64, 8, 16, 16, 1}, {32, 64, 8, 16, 16, 2},
		{3, 4, 1, 6, 5, 1}, {3, 4, 1, 6, 5, 2}, // one image: on our layout the image stride equals the channel stride
	} {
		c, o, b, h, w, stride := geom.c, geom.o, geom.b, geom.h, geom.w, geom.stride
		oh, ow := Conv3Out(h, w, stride)
		x, wt, bias, dy := randn(r, c*b*h*w, 1), randn(r, o*c*9, 1), randn(r, o, 1), randn(r, o*b*oh*ow, 1)
		wantY, wantDx := naiveConv3(c, o, b, h, w, stride, x, wt, dy)
		n := b * oh * ow
		wantDw, wantDb := make([]float64, len(wt)), make([]float64, o)
		for oo := 0; oo < o; oo++ {
			for q := 0; q < n; q++ {
				wantY[oo*n+q] += float64(bias[oo])
				wantDb[oo] += float64(dy[oo*n+q])
			}
		}
		for oo := 0; oo < o; oo++ { // ∂w[o,c,k] = Σ dy[o,b,r,s]·x[c,b,r·st+ky−1,s·st+kx−1]
			for cc := 0; cc < c; cc++ {
				for k := 0; k < 9; k++ {
					for bi := 0; bi < b; bi++ {
						for rr := 0; rr < oh; rr++ {
							for ss := 0; ss < ow; ss++ {
								ir, is := stride*rr+k/3-1, stride*ss+k%3-1
								if ir < 0 || ir >= h || is < 0 || is >= w {
									continue
								}
								wantDw[(oo*c+cc)*9+k] += float64(dy[((oo*b+bi)*oh+rr)*ow+ss]) * float64(x[((cc*b+bi)*h+ir)*w+is])
							}
						}
					}
				}
			}
		}
		for name, d := range devs {
			t.Run(fmt.Sprintf("%s/%dx%d-b%d-%dx%d-stride%d", name, c, o, b, h, w, stride), func(t *testing.T) {
				g := Conv3{C: c, O: o, B: b, H: h, W: w, Stride: stride}
				g.Col = alloc(t, d, g.ColSize())
				bx, bw, bb, bdy := upload(t, d, x), upload(t, d, wt), upload(t, d, bias), upload(t, d, dy)
				by, bdx, bdw, bdb, dcol := alloc(t, d, o*n), alloc(t, d, len(x)), alloc(t, d, len(wt)), alloc(t, d, o), alloc(t, d, g.ColSize())
				if err := d.Conv3Forward(g, by, bx, bw, bb); err != nil {
					t.Fatal(err)
				}
				if err := d.Conv3BackwardW(g, bdw, bdb, bx, bdy); err != nil {
					t.Fatal(err)
				}
				if err := d.Conv3BackwardX(g, bdx, bw, bdy, dcol); err != nil {
					t.Fatal(err)
				}
				// float32 sums of up to K = 2048 products of unit normals, in
				// whatever order and by whatever transform (cuDNN's FFT and
				// Winograd algorithms) the library takes; an indexing error
				// is off by O(1).
				tol := 1e-5
				if c*9 > 100 {
					tol = 1e-3
				}
				near(t, "y", download(t, d, by), wantY, tol)
				near(t, "∂x", download(t, d, bdx), wantDx, tol)
				near(t, "∂w", download(t, d, bdw), wantDw, tol)
				near(t, "∂bias", download(t, d, bdb), wantDb, 1e-5)
				// Both gradients in one call: the same algorithms on the same
				// values, so the same bits.
				bdx2, bdw2, bdb2 := alloc(t, d, len(x)), alloc(t, d, len(wt)), alloc(t, d, o)
				if err := d.Conv3Backward(g, bdx2, bdw2, bdb2, bx, bw, bdy, dcol); err != nil {
					t.Fatal(err)
				}
				for _, p := range []struct {
					what      string
					one, both Buffer
				}{{"∂x", bdx, bdx2}, {"∂w", bdw, bdw2}, {"∂bias", bdb, bdb2}} {
					if a, b := download(t, d, p.one), download(t, d, p.both); !slices.Equal(a, b) {
						t.Errorf("Conv3Backward's %s differs from the separate call's", p.what)
					}
				}
				if plans := d.ConvPlans(); len(plans) > 0 {
					t.Log(plans[len(plans)-1])
					// The fake's graph API has an engine for each direction:
					// its first exact one (FFT: 106, 206; the filter
					// gradient's exact engine is only on the fallback list:
					// 307), or with TF32 its first on tensor cores (100,
					// 200, 300).
					// (Not with GraphTuneEnv: the fastest is taken then.)
					if want, ok := fakeGraphEngines[name]; ok && os.Getenv(GraphTuneEnv) == "" {
						if !strings.Contains(plans[len(plans)-1], want) {
							t.Errorf("plans %q, want %q", plans[len(plans)-1], want)
						}
					}
				}
			})
		}
	}
	const batch, in, out = 3, 5, 4
	x, wt, bias, dy := randn(r, batch*in, 1), randn(r, in*out, 1), randn(r, out, 1), randn(r, batch*out, 1)
	wantY, wantDx, wantDw, wantDb := make([]float64, batch*out), make([]float64, batch*in), make([]float64, in*out), make([]float64, out)
	for i := 0; i < batch; i++ {
		for j := 0; j < out; j++ {
			wantY[i*out+j] = float64(bias[j])
			wantDb[j] += float64(dy[i*out+j])
			for p := 0; p < in; p++ {
				wantY[i*out+j] += float64(x[i*in+p]) * float64(wt[p*out+j])
				wantDx[i*in+p] += float64(dy[i*out+j]) * float64(wt[p*out+j])
				wantDw[p*out+j] += float64(x[i*in+p]) * float64(dy[i*out+j])
			}
		}
	}
	for name, d := range backends(t) {
		t.Run("linear-"+name, func(t *testing.T) {
			bx, bw, bb, bdy := upload(t, d, x), upload(t, d, wt), upload(t, d, bias), upload(t, d, dy)
			by, bdx, bdw, bdb := alloc(t, d, batch*out), alloc(t, d, batch*in), alloc(t, d, in*out), alloc(t, d, out)
			if err := d.Linear(by, bx, bw, bb, batch, in, out); err != nil {
				t.Fatal(err)
			}
			if err := d.LinearBackward(bdx, bdw, bdb, bx, bw, bdy, batch, in, out); err != nil {
				t.Fatal(err)
			}
			near(t, "y", download(t, d, by), wantY, 1e-5)
			near(t, "∂x", download(t, d, bdx), wantDx, 1e-5)
			near(t, "∂w", download(t, d, bdw), wantDw, 1e-5)
			near(t, "∂b", download(t, d, bdb), wantDb, 1e-5)
			// Concatenation is two copies.
			cat := alloc(t, d, batch*out+batch*in)
			if err := d.Copy(cat, 0, by); err != nil {
				t.Fatal(err)
			}
			if err := d.Copy(cat, batch*out, bdx); err != nil {
				t.Fatal(err)
			}
			got := download(t, d, cat)
			near(t, "concatenated", got[:batch*out], wantY, 1e-5)
			near(t, "concatenated", got[batch*out:], wantDx, 1e-5)
			if err := d.Copy(cat, batch*in+1, by); err == nil {
				t.Fatal("a copy past the end accepted")
			}
		})
	}
}

// fakeGraphEngines is what the fake GPU's graph-API variants plan.
var fakeGraphEngines = map[string]string{
	// Each passed-over configuration named with its notes, or the status
	// and workspace of a plan that failed or asked too much; the plans on
	// our layout (the default), or on the NCHW copies (layout nchw).
	"fakegpu-graph": "forward: graph API engine 106 (65536 B) on our layout after e100[tc], e101[nondet], e102[down tc], e103[rpr], e104 status 3002 ws 0, e105[winograd] status 0 ws 3221225472; " +
		"data: graph API engine 206 (65536 B) on our layout after e200[tc], e201[nondet], e202[down tc], e203[rpr], e204 status 3002 ws 0, e205[winograd] status 0 ws 3221225472; " +
		"filter: graph API engine 307 (0 B) on our layout after e300[tc], e301[nondet], e302[down tc], e303[rpr], e304 status 3002 ws 0, e305[winograd] status 0 ws 3221225472, e300[tc]",
	"fakegpu-graph-nchw": "forward: graph API engine 106 (65536 B) after e100[tc], e101[nondet], e102[down tc], e103[rpr], e104 status 3002 ws 0, e105[winograd] status 0 ws 3221225472; " +
		"data: graph API engine 206 (65536 B) after e200[tc], e201[nondet], e202[down tc], e203[rpr], e204 status 3002 ws 0, e205[winograd] status 0 ws 3221225472; " +
		"filter: graph API engine 307 (0 B) after e300[tc], e301[nondet], e302[down tc], e303[rpr], e304 status 3002 ws 0, e305[winograd] status 0 ws 3221225472, e300[tc]",
	"fakegpu-graph-tf32": "forward: graph API engine 100 (8192 B) on our layout; data: graph API engine 200 (8192 B) on our layout; filter: graph API engine 300 (8192 B) on our layout",
}

// convBackends is backends, and where the GPU runs convolutions with cuDNN,
// that GPU again without it (NCSN_CUDNN=off) and with the algorithms that
// cuDNN's heuristics choose (NCSN_CUDNN=heuristics), and with the engines of
// cuDNN's graph API (NCSN_CUDNN=graph).
func convBackends(t *testing.T) map[string]*Device {
	devs := backends(t)
	for base, open := range map[string]func() (*Device, error){"gpu": Open, "fakegpu": func() (*Device, error) { return OpenFakeGPU(0) }} {
		g, ok := devs[base]
		if !ok || g.UsesIm2col() {
			continue
		}
		// NCSN_CUDNN, NCSN_TF32, NCSN_CUDNN_GRAPH_LAYOUT.
		variants := map[string][3]string{"-im2col": {"off", "", ""}, "-heuristics": {"heuristics", "", ""}, "-graph": {"graph", "", ""}, "-graph-nchw": {"graph", "", "nchw"}}
		if base == "fakegpu" {
			// The TF32 choices of algorithms, math types and engines (the
			// fake GPU computes exactly; a GPU's TF32 is outside these
			// tolerances).
			variants["-tf32"] = [3]string{"on", "1", ""} // Find's TF32 (graph is TF32's default)
			variants["-graph-tf32"] = [3]string{"graph", "1", ""}
		}
		for suffix, env := range variants {
			t.Setenv(CudnnEnv, env[0])
			t.Setenv(TF32Env, env[1])
			t.Setenv(CudnnEnv+"_GRAPH_LAYOUT", env[2])
			d, err := open()
			if err != nil {
				t.Fatalf("%s=%s %s=%s: %v", CudnnEnv, env[0], TF32Env, env[1], err)
			}
			if base == "gpu" {
				t.Log(d.Describe)
			}
			t.Cleanup(d.Close)
			devs[base+suffix] = d
		}
	}
	return devs
}
