//go:build linux

package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// backends are the devices every kernel test runs on (Backends): the CPU
// emulation (where g++ is) and the GPU (where a driver and a device are).
func backends(t *testing.T) map[string]*Device {
	t.Helper()
	out := map[string]*Device{}
	bs, missing := Backends(false)
	for _, m := range missing {
		t.Log("not run: " + m)
	}
	for _, b := range bs {
		d, err := b.Open()
		if err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
		if b.Name == "gpu" {
			t.Log(d.Describe)
		}
		out[b.Name] = d
	}
	if len(out) == 0 {
		t.Skip("neither g++ (CPU emulation) nor a GPU")
	}
	t.Cleanup(func() {
		for _, d := range out {
			d.Close()
		}
	})
	return out
}

func upload(t *testing.T, d *Device, x []float32) Buffer {
	t.Helper()
	b, err := d.Alloc(len(x))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Upload(b, x); err != nil {
		t.Fatal(err)
	}
	return b
}

func download(t *testing.T, d *Device, b Buffer) []float32 {
	t.Helper()
	x := make([]float32, b.N)
	if err := d.Download(x, b); err != nil {
		t.Fatal(err)
	}
	return x
}

func near(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	for i := range want {
		if g := float64(got[i]); !(math.Abs(g-want[i]) <= tol*(1+math.Abs(want[i]))) {
			t.Fatalf("%s[%d] = %g, want %g (tolerance %g)", what, i, g, want[i], tol)
		}
	}
}

// TestFillNormal: the kernel's numbers are Normal's, for an offset that is
// not a multiple of four and a length that is not a multiple of a block.
func TestFillNormal(t *testing.T) {
	for name, d := range backends(t) {
		t.Run(name, func(t *testing.T) {
			b, err := d.Alloc(1001)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.FillNormal(b, 42, 7); err != nil {
				t.Fatal(err)
			}
			want := make([]float64, b.N)
			for i := range want {
				want[i] = Normal(42, 7+uint64(i))
			}
			near(t, "normal", download(t, d, b), want, 2e-5)
		})
	}
}

func TestSiLU(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x, dy := randn(r, 777, 3), randn(r, 777, 1)
	wantY, wantDx := make([]float64, len(x)), make([]float64, len(x))
	for i, v := range x {
		a := float64(v)
		s := 1 / (1 + math.Exp(-a))
		wantY[i] = a * s
		wantDx[i] = float64(dy[i]) * s * (1 + a*(1-s))
	}
	for name, d := range backends(t) {
		t.Run(name, func(t *testing.T) {
			bx, bdy := upload(t, d, x), upload(t, d, dy)
			by, _ := d.Alloc(len(x))
			bdx, _ := d.Alloc(len(x))
			if err := d.SiLU(by, bx); err != nil {
				t.Fatal(err)
			}
			if err := d.SiLUGrad(bdx, bx, bdy); err != nil {
				t.Fatal(err)
			}
			near(t, "silu", download(t, d, by), wantY, 1e-6)
			near(t, "silu grad", download(t, d, bdx), wantDx, 1e-6)
			if err := d.SiLU(by, Buffer{Ptr: bdx.Ptr, N: 5}); err == nil {
				t.Fatal("buffers of different sizes accepted")
			}
		})
	}
}

func TestLangevin(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	x, s := randn(r, 500, 1), randn(r, 500, 5)
	const alpha = 3e-3
	want := make([]float64, len(x))
	for i := range x {
		want[i] = float64(x[i]) + alpha/2*float64(s[i]) + math.Sqrt(alpha)*Normal(9, 1000+uint64(i))
	}
	for name, d := range backends(t) {
		t.Run(name, func(t *testing.T) {
			bx, bs := upload(t, d, x), upload(t, d, s)
			if err := d.Langevin(bx, bs, alpha, 9, 1000); err != nil {
				t.Fatal(err)
			}
			near(t, "x", download(t, d, bx), want, 2e-6)
		})
	}
}

// gnReference is GroupNorm + SiLU in float64, textbook loops.
func gnReference(x, gamma, beta []float32, c, b, hw, groups int, eps float64) (y, stats []float64) {
	y = make([]float64, len(x))
	stats = make([]float64, 2*groups*b)
	cpg := c / groups
	for g := 0; g < groups; g++ {
		for bi := 0; bi < b; bi++ {
			var s, s2 float64
			for ch := g * cpg; ch < (g+1)*cpg; ch++ {
				for p := 0; p < hw; p++ {
					v := float64(x[(ch*b+bi)*hw+p])
					s += v
					s2 += v * v
				}
			}
			n := float64(cpg * hw)
			mean := s / n
			rstd := 1 / math.Sqrt(s2/n-mean*mean+eps)
			stats[2*(g*b+bi)], stats[2*(g*b+bi)+1] = mean, rstd
			for ch := g * cpg; ch < (g+1)*cpg; ch++ {
				for p := 0; p < hw; p++ {
					i := (ch*b+bi)*hw + p
					a := (float64(x[i])-mean)*rstd*float64(gamma[ch]) + float64(beta[ch])
					y[i] = a / (1 + math.Exp(-a))
				}
			}
		}
	}
	return y, stats
}

// TestGroupNormSiLU: against the float64 reference, for a group smaller
// than a block (threads idle at the barrier) and one larger (a strided
// loop), with an offset mean so that cancellation would show.
func TestGroupNormSiLU(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	// Groups of fewer, as many and more channels than the kernel's slots
	// (8), images smaller than a slot's threads.
	for _, s := range []struct{ c, b, hw, groups int }{{8, 3, 49, 4}, {32, 2, 784, 8}, {6, 1, 9, 3}, {40, 2, 9, 2}, {24, 2, 64, 1}} {
		x := randn(r, s.c*s.b*s.hw, 2)
		for i := range x {
			x[i] += 5
		}
		gamma, beta := randn(r, s.c, 1), randn(r, s.c, 1)
		wantY, wantS := gnReference(x, gamma, beta, s.c, s.b, s.hw, s.groups, 1e-5)
		for name, d := range reduceBlocks(t) {
			t.Run(name, func(t *testing.T) {
				bx, bg, bb := upload(t, d, x), upload(t, d, gamma), upload(t, d, beta)
				by, _ := d.Alloc(len(x))
				bs, _ := d.Alloc(2 * s.groups * s.b)
				if err := d.GroupNormSiLU(by, bs, bx, bg, bb, s.c, s.b, s.hw, s.groups, 1e-5); err != nil {
					t.Fatal(err)
				}
				near(t, "y", download(t, d, by), wantY, 2e-5)
				near(t, "stats", download(t, d, bs), wantS, 1e-6)
				if err := d.GroupNormSiLU(by, bs, bx, bg, bb, s.c, s.b, s.hw, 5, 1e-5); err == nil {
					t.Fatal("groups that do not divide the channels accepted")
				}
			})
		}
	}
}

// reduceBlocks is backends, with the emulation also at other block sizes
// of the reducing kernels (4: fewer threads than the GroupNorm kernels'
// slots; 128; 256, the GPU's) besides its 32; the GPU at its own 256.
func reduceBlocks(t *testing.T) map[string]*Device {
	out := map[string]*Device{}
	for name, d := range backends(t) {
		if name != "emu" {
			out[name] = d
			continue
		}
		for _, n := range []uint32{4, 32, 128, gnThreads} {
			e, err := OpenEmulator()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.Close)
			e.ReduceThreads = n
			out[fmt.Sprintf("emu-%d", n)] = e
		}
	}
	return out
}

// TestSwap01: the layout change around cuDNN's NCHW convolutions moves
// every value of (A, B, n) to (B, A, n), and back, with a bias per row of
// the result where one is given; rows shorter than a warp and longer than
// a block.
func TestSwap01(t *testing.T) {
	const a, b = 3, 5
	devs := backends(t)
	for _, n := range []int{7, 600} {
		x := make([]float32, a*b*n)
		for i := range x {
			x[i] = float32(i) - 0.5
		}
		bias := []float32{0.25, -1, 2, 4, 8}
		want, wantBias, orig := make([]float64, len(x)), make([]float64, len(x)), make([]float64, len(x))
		for ia := 0; ia < a; ia++ {
			for ib := 0; ib < b; ib++ {
				for k := 0; k < n; k++ {
					v := float64(x[(ia*b+ib)*n+k])
					want[(ib*a+ia)*n+k] = v
					wantBias[(ib*a+ia)*n+k] = v + float64(bias[ib])
					orig[(ia*b+ib)*n+k] = v
				}
			}
		}
		for name, d := range devs {
			t.Run(fmt.Sprintf("%s/n=%d", name, n), func(t *testing.T) {
				src, dst, back, bb := upload(t, d, x), alloc(t, d, len(x)), alloc(t, d, len(x)), upload(t, d, bias)
				if err := d.swap01(dst, src, Buffer{}, a, b, n); err != nil {
					t.Fatal(err)
				}
				near(t, "swapped", download(t, d, dst), want, 0)
				if err := d.swap01(back, dst, Buffer{}, b, a, n); err != nil {
					t.Fatal(err)
				}
				near(t, "swapped back", download(t, d, back), orig, 0)
				if err := d.swap01(dst, src, bb, a, b, n); err != nil {
					t.Fatal(err)
				}
				near(t, "swapped with a bias", download(t, d, dst), wantBias, 0)
				if err := d.swap01(dst, src, Buffer{Ptr: bb.Ptr, N: b - 1}, a, b, n); err == nil {
					t.Error("a bias too short accepted")
				}
			})
		}
	}
}

// closeCounter counts its backend's closes.
type closeCounter struct {
	backend
	n int
}

func (c *closeCounter) close() { c.n++; c.backend.close() }

// TestCloseTwice: a second Close does nothing (a trainer gives a device it
// will not use back early, and its deferred Close runs later); the driver's
// backend must not be closed twice.
func TestCloseTwice(t *testing.T) {
	for name, d := range backends(t) {
		c := &closeCounter{backend: d.b}
		d.b = c
		d.Close()
		d.Close()
		if c.n != 1 {
			t.Errorf("%s: the backend was closed %d times", name, c.n)
		}
	}
}

// TestSoftmaxCE: each row's softmax and cross-entropy, and the gradient
// scale·(p − y), against float64 loops; rows of large logits (a
// max-shifted exp) and a row whose label is split between two classes.
func TestSoftmaxCE(t *testing.T) {
	const b, k = 37, 10
	r := rand.New(rand.NewPCG(3, 4))
	logits, y := randn(r, b*k, 3), make([]float32, b*k)
	for i := 0; i < b; i++ {
		y[i*k+r.IntN(k)] = 1
	}
	for j := 0; j < k; j++ {
		logits[j] += 1000 // exp(1000) overflows even a double: the max is shifted out
	}
	clear(y[k : 2*k])
	y[k+2], y[k+7] = 0.5, 0.5
	wantP, wantL, wantD := make([]float64, b*k), make([]float64, b), make([]float64, b*k)
	for i := 0; i < b; i++ {
		row := logits[i*k : (i+1)*k]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v) - mx)
		}
		for j, v := range row {
			wantP[i*k+j] = math.Exp(float64(v)-mx) / z
			wantL[i] -= float64(y[i*k+j]) * math.Log(wantP[i*k+j])
			wantD[i*k+j] = (wantP[i*k+j] - float64(y[i*k+j])) / b
		}
	}
	for name, d := range backends(t) {
		t.Run(name, func(t *testing.T) {
			bl, by := upload(t, d, logits), upload(t, d, y)
			bp, _ := d.Alloc(b * k)
			bloss, _ := d.Alloc(b)
			bd, _ := d.Alloc(b * k)
			if err := d.SoftmaxCE(bp, bloss, bl, by, b, k); err != nil {
				t.Fatal(err)
			}
			if err := d.SoftmaxCEGrad(bd, bp, by, 1.0/b); err != nil {
				t.Fatal(err)
			}
			near(t, "softmax", download(t, d, bp), wantP, 1e-6)
			near(t, "cross-entropy", download(t, d, bloss), wantL, 1e-6)
			near(t, "cross-entropy grad", download(t, d, bd), wantD, 1e-6)
			if err := d.SoftmaxCE(bp, bloss, bl, by, b, k+1); err == nil {
				t.Fatal("shapes that do not fit the buffers accepted")
			}
		})
	}
}
