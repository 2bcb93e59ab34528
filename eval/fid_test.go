package eval

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func TestFrechetIdentical(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	f := make([]float64, 500*4)
	for i := range f {
		f[i] = r.NormFloat64() + float64(i%4)
	}
	mu, cov, err := Moments(f, 4)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Frechet(mu, cov, mu, cov)
	if err != nil {
		t.Fatal(err)
	}
	// Fewer rows than dimensions: singular, and still a covariance.
	if mu, cov, err = Moments(f[:3*4], 4); err != nil {
		t.Fatal(err)
	}
	if _, err := Frechet(mu, cov, mu, cov); err != nil {
		t.Fatal(err)
	}
	if math.Abs(d) > 1e-9 {
		t.Fatalf("identical sets: %g", d)
	}
}

// TestFrechetClosedForm: for commuting covariances the distance is
// ‖Δμ‖² + Σ(√a − √b)² over the eigenvalues; a shift alone adds ‖Δμ‖².
func TestFrechetClosedForm(t *testing.T) {
	a := mat.NewSymDense(3, []float64{4, 0, 0, 0, 1, 0, 0, 0, 9})
	b := mat.NewSymDense(3, []float64{1, 0, 0, 0, 1, 0, 0, 0, 4})
	mu1, mu2 := []float64{0, 0, 0}, []float64{1, 2, -2}
	d, err := Frechet(mu1, a, mu2, b)
	if err != nil {
		t.Fatal(err)
	}
	want := 9.0 + (2-1)*(2-1) + 0 + (3-2)*(3-2)
	if math.Abs(d-want) > 1e-9 {
		t.Fatalf("got %g, want %g", d, want)
	}
	// A rotated pair (non-diagonal, non-commuting) against a direct formula
	// in 2-D: tr√(Σ1Σ2) = √(tr(Σ1Σ2) + 2√det(Σ1Σ2)).
	c1 := mat.NewSymDense(2, []float64{2, 0.7, 0.7, 1})
	c2 := mat.NewSymDense(2, []float64{1, -0.3, -0.3, 3})
	var p mat.Dense
	p.Mul(c1, c2)
	trs := math.Sqrt(mat.Trace(&p) + 2*math.Sqrt(mat.Det(&p)))
	want = mat.Trace(c1) + mat.Trace(c2) - 2*trs
	d, err = Frechet([]float64{0, 0}, c1, []float64{0, 0}, c2)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(d-want) > 1e-9 {
		t.Fatalf("2-D: got %g, want %g", d, want)
	}
}

// TestFrechetNeverNegative: a distance of identical sets whose float64
// rounding leaves the trace term a hair above the rest is 0, not a
// negative figure (-3e-8 was printed for a folder scored against itself).
func TestFrechetNeverNegative(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 3))
	for k := 0; k < 40; k++ {
		dim := 8 + k%24
		f := make([]float64, 64*dim)
		for i := range f {
			f[i] = r.NormFloat64() * float64(1+i%dim) * 100
		}
		mu, cov, err := Moments(f, dim)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Frechet(mu, cov, mu, cov)
		if err != nil {
			t.Fatal(err)
		}
		if d < 0 || d > 1e-6 {
			t.Fatalf("set %d (%d dimensions) against itself: %g", k, dim, d)
		}
	}
}

// TestFrechetRefuses: what is no set of features or no Gaussian is an
// error, not a figure (a covariance of −I gave 0, a NaN mean NaN, one row
// a NaN covariance, all with nil errors).
func TestFrechetRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    []float64
		d    int
	}{
		{"one row", []float64{1, 2}, 2},
		{"part of a row", []float64{1, 2, 3}, 2},
		{"no dimension", []float64{1, 2}, 0},
		{"NaN", []float64{1, 2, math.NaN(), 4}, 2},
		{"Inf", []float64{1, 2, 3, math.Inf(1)}, 2},
	} {
		if _, _, err := Moments(tc.f, tc.d); err == nil {
			t.Errorf("Moments of %s: no error", tc.name)
		}
	}
	id := mat.NewSymDense(2, []float64{1, 0, 0, 1})
	neg := mat.NewSymDense(2, []float64{-1, 0, 0, -1})
	indef := mat.NewSymDense(2, []float64{1, 2, 2, 1})
	nan := mat.NewSymDense(2, []float64{1, math.NaN(), math.NaN(), 1})
	zero := []float64{0, 0}
	for _, tc := range []struct {
		name     string
		mu1, mu2 []float64
		c1, c2   *mat.SymDense
	}{
		{"negative first", zero, zero, neg, id},
		{"negative second", zero, zero, id, neg},
		{"indefinite", zero, zero, indef, id},
		{"NaN covariance", zero, zero, id, nan},
		{"NaN mean", []float64{math.NaN(), 0}, zero, id, id},
		{"nil covariance", zero, zero, id, nil},
	} {
		if d, err := Frechet(tc.mu1, tc.c1, tc.mu2, tc.c2); err == nil {
			t.Errorf("%s: %g, no error", tc.name, d)
		}
	}
}
