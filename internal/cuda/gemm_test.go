package cuda

import (
	"math"
	"math/rand/v2"
	"testing"
)

// sgemmColMajor is BLAS's sgemm as its reference documentation defines it
// (column-major, element (i, j) of X at X[i + j·ldX]), in float64.
func sgemmColMajor(g colMajorGemm, a, b, c []float32) {
	at := func(x []float32, op int32, ld int32, i, j int) float64 {
		if op == 1 {
			i, j = j, i
		}
		return float64(x[i+j*int(ld)])
	}
	for i := 0; i < int(g.m); i++ {
		for j := 0; j < int(g.n); j++ {
			var s float64
			for p := 0; p < int(g.k); p++ {
				s += at(a, g.opA, g.lda, i, p) * at(b, g.opB, g.ldb, p, j)
			}
			c[i+j*int(g.ldc)] = float32(s)
		}
	}
}

// TestCublasCall: the arguments the driver gives cuBLAS compute the
// row-major product, for all four transpositions (checked with a
// column-major sgemm written from BLAS's definition).
func TestCublasCall(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	const m, n, k = 3, 5, 4
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			a, b := randn(r, m*k, 1), randn(r, k*n, 1)
			want := make([]float64, m*n)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					for p := 0; p < k; p++ {
						ai, bi := i*k+p, p*n+j
						if ta {
							ai = p*m + i
						}
						if tb {
							bi = j*k + p
						}
						want[i*n+j] += float64(a[ai]) * float64(b[bi])
					}
				}
			}
			c := make([]float32, m*n)
			sgemmColMajor(cublasCall(ta, tb, m, n, k), b, a, c) // B first, as the driver passes them
			for i := range want {
				if math.Abs(float64(c[i])-want[i]) > 1e-5 {
					t.Fatalf("transA %v transB %v: C[%d] = %g, want %g", ta, tb, i, c[i], want[i])
				}
			}
		}
	}
}

func randn(r *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(scale * r.NormFloat64())
	}
	return x
}
