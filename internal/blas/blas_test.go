package blas

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func naive(transA, transB bool, m, n, k int, a []float64, lda int, b []float64, ldb int) []float64 {
	c := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				var av, bv float64
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
			}
			c[i*n+j] = s
		}
	}
	return c
}

// TestGemm checks every transpose combination, with beta accumulation, in both
// precisions, against a naive product; it runs on whichever backend loaded.
func TestGemm(t *testing.T) {
	t.Logf("backend: %s", Backend())
	r := rand.New(rand.NewPCG(1, 2))
	// Small (one call), and large enough to be cut into 4, 8 and 24
	// blocks along either side, the last one short (25 = 8+8+8+1).
	for _, size := range [][3]int{{7, 5, 9}, {64, 300, 100}, {300, 64, 100}, {9, 300, 4000}, {300, 9, 4000}, {64, 1000, 400}, {25, 25, 7000}} {
		if m, n, k := size[0], size[1], size[2]; m*n*k > 4<<20 && blocks(m, n, k, max(m, n)) < 4 {
			t.Fatalf("%v is cut into %d blocks, not the 4 or more this test means", size, blocks(m, n, k, max(m, n)))
		}
		testGemm(t, r, size[0], size[1], size[2])
	}
}

func testGemm(t *testing.T, r *rand.Rand, m, n, k int) {
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			a := make([]float64, m*k)
			b := make([]float64, k*n)
			c0 := make([]float64, m*n)
			for i := range a {
				a[i] = r.NormFloat64()
			}
			for i := range b {
				b[i] = r.NormFloat64()
			}
			for i := range c0 {
				c0[i] = r.NormFloat64()
			}
			lda, ldb := k, n
			if ta {
				lda = m
			}
			if tb {
				ldb = k
			}
			want := naive(ta, tb, m, n, k, a, lda, b, ldb)
			for i := range want {
				want[i] = 2*want[i] + 0.5*c0[i]
			}
			c := append([]float64(nil), c0...)
			Gemm(ta, tb, m, n, k, 2, a, lda, b, ldb, 0.5, c, n)
			a32, b32, c32 := to32(a), to32(b), to32(c0)
			Gemm(ta, tb, m, n, k, float32(2), a32, lda, b32, ldb, 0.5, c32, n)
			// Rounding grows with the length of the sums: the bounds are
			// those of k ≤ 1000, scaled beyond.
			tol64, tol32 := 1e-9*max(1, float64(k)/1000), 1e-3*max(1, float64(k)/1000)
			for i := range want {
				if d := c[i] - want[i]; d > tol64 || d < -tol64 {
					t.Fatalf("float64 ta=%v tb=%v: c[%d]=%g want %g", ta, tb, i, c[i], want[i])
				}
				if d := float64(c32[i]) - want[i]; d > tol32 || d < -tol32 {
					t.Fatalf("float32 ta=%v tb=%v: c[%d]=%g want %g", ta, tb, i, c32[i], want[i])
				}
			}
		}
	}
}

// A product gives the same bits on any number of cores: the blocks it is
// cut into depend on its shape alone, so every core count makes the same
// calls of the BLAS. Cut into one block per core, OpenBLAS's Haswell
// kernels (AVX2 CPUs, AMD's Zen) gave other bits to thousands of elements
// at 2 and 3 cores.
func TestGemmSameBitsOnAnyCoreCount(t *testing.T) {
	t.Logf("backend: %s", Backend())
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	r := rand.New(rand.NewPCG(5, 6))
	// Shapes of the network's products (1×1 convolutions over B·H·W
	// pixels, their gradients, linear layers) and odd ones, each cut into
	// 2 to 24 blocks (so also more blocks than cores, and unevenly shared).
	for _, size := range [][3]int{{16, 3136, 48}, {48, 3136, 16}, {16, 48, 3136}, {300, 784, 16}, {784, 300, 16}, {100, 101, 1030}, {33, 6272, 64}, {6272, 33, 64}, {130, 97, 200}, {64, 1000, 400}, {25, 25, 7000}} {
		m, n, k := size[0], size[1], size[2]
		if nb := blocks(m, n, k, max(m, n)); nb < 2 {
			t.Fatalf("%v is not cut into blocks", size)
		}
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				a, b := make([]float32, m*k), make([]float32, k*n)
				for i := range a {
					a[i] = float32(r.NormFloat64())
				}
				for i := range b {
					b[i] = float32(r.NormFloat64())
				}
				lda, ldb := k, n
				if ta {
					lda = m
				}
				if tb {
					ldb = k
				}
				run := func(procs int) ([]float32, []float64) {
					runtime.GOMAXPROCS(procs)
					c32 := make([]float32, m*n)
					Gemm(ta, tb, m, n, k, 1, a, lda, b, ldb, 0, c32, n)
					c64 := make([]float64, m*n)
					Gemm(ta, tb, m, n, k, 1, to64(a), lda, to64(b), ldb, 0, c64, n)
					return c32, c64
				}
				one32, one64 := run(1)
				for _, procs := range []int{2, 3, 4, 7} {
					c32, c64 := run(procs)
					for i := range one32 {
						if c32[i] != one32[i] || c64[i] != one64[i] {
							t.Fatalf("%d×%d×%d ta=%v tb=%v, %d cores: c[%d] = %g / %g, on one core %g / %g",
								m, n, k, ta, tb, procs, i, c32[i], c64[i], one32[i], one64[i])
						}
					}
				}
			}
		}
	}
}

func to64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

func to32(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

// TestCandidates: each system's search order, and NCSN_BLAS replacing it.
func TestCandidates(t *testing.T) {
	for _, tc := range []struct {
		goos, env, first string
	}{
		{"linux", "", "libopenblas.so.0"},
		{"darwin", "", "/System/Library/Frameworks/Accelerate.framework/Accelerate"},
		{"windows", "", "libopenblas.dll"},
		{"freebsd", "", "libopenblas.so.0"},
		{"linux", "/opt/blis/libblis.so", "/opt/blis/libblis.so"},
		{"windows", `C:\blas\mkl_rt.dll`, `C:\blas\mkl_rt.dll`},
	} {
		c := candidates(tc.goos, tc.env)
		if len(c) == 0 || c[0] != tc.first {
			t.Errorf("%s, NCSN_BLAS=%q: %v", tc.goos, tc.env, c)
		}
		if tc.env != "" && len(c) != 1 {
			t.Errorf("NCSN_BLAS=%q should be the only candidate: %v", tc.env, c)
		}
	}
	for path, want := range map[string]string{
		"/System/Library/Frameworks/Accelerate.framework/Accelerate": "accelerate",
		"/usr/lib64/libopenblasp.so.0":                               "openblas", "libopenblas.dll": "openblas", "/opt/blis/libblis.so": "blas",
	} {
		if got := kind(path); got != want {
			t.Errorf("kind(%s) = %s, want %s", path, got, want)
		}
	}
}

// TestOpenNamed: NCSN_BLAS=go is gonum; a path that does not load falls
// back to gonum and says which path failed; the path of the OpenBLAS this
// machine has (if any) loads and is named in the start-up line.
func TestOpenNamed(t *testing.T) {
	if l := open(runtime.GOOS, "go"); l.sgemm != 0 || l.name != "gonum" || !strings.Contains(l.describe, "NCSN_BLAS=go") {
		t.Fatalf("go: %+v", l)
	}
	bad := filepath.Join(t.TempDir(), "libnothing.so")
	if l := open(runtime.GOOS, bad); l.sgemm != 0 || l.name != "gonum" || !strings.Contains(l.describe, "NCSN_BLAS="+bad+" did not load") {
		t.Fatalf("missing library: %+v", l)
	}
	if runtime.GOOS != "linux" {
		return
	}
	def := open("linux", "")
	if def.sgemm == 0 {
		t.Skip("no OpenBLAS on this machine: ", def.describe)
	}
	// The library the search found, by its full path.
	var path string
	for _, p := range candidates("linux", "")[4:] {
		if _, err := os.Stat(p); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("OpenBLAS is not at any of the full paths searched")
	}
	l := open("linux", path)
	if l.sgemm == 0 || l.name != "openblas" || !strings.Contains(l.describe, path) {
		t.Fatalf("NCSN_BLAS=%s: %+v", path, l)
	}
}
