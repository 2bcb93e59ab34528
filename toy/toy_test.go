package toy

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func threeD(t *testing.T) *Mixture {
	t.Helper()
	c1 := mat.NewSymDense(3, []float64{2, 0.5, 0.1, 0.5, 1, -0.3, 0.1, -0.3, 0.5})
	c2 := mat.NewSymDense(3, []float64{0.3, 0, 0, 0, 0.6, 0.2, 0, 0.2, 1})
	m, err := NewMixture([]float64{3, 1}, []Gaussian{{[]float64{1, -1, 0}, c1}, {[]float64{-2, 2, 1}, c2}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestScoreIsGradient: the exact score is the gradient of the log density,
// at σ = 0 and for noised versions, in 3-D with full covariances.
func TestScoreIsGradient(t *testing.T) {
	m := threeD(t)
	r := rand.New(rand.NewPCG(1, 1))
	for _, sigma := range []float64{0, 0.3, 2} {
		for k := 0; k < 10; k++ {
			x := []float64{3 * r.NormFloat64(), 3 * r.NormFloat64(), 3 * r.NormFloat64()}
			s := make([]float64, 3)
			if err := m.Score(x, sigma, s); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				const h = 1e-5
				xp := append([]float64(nil), x...)
				xm := append([]float64(nil), x...)
				xp[i] += h
				xm[i] -= h
				num := (m.LogDensity(xp, sigma) - m.LogDensity(xm, sigma)) / (2 * h)
				if math.Abs(num-s[i]) > 1e-6*(1+math.Abs(num)) {
					t.Fatalf("σ=%g x=%v: score[%d] %g, gradient %g", sigma, x, i, s[i], num)
				}
			}
		}
	}
}

// TestDensityNormalised: the 1-D mixture integrates to 1 (σ = 0 and noised).
func TestDensityNormalised(t *testing.T) {
	m := Mixture1D()
	for _, sigma := range []float64{0, 1.5} {
		var s float64
		for x := -30.0; x < 30; x += 0.01 {
			s += math.Exp(m.LogDensity([]float64{x}, sigma)) * 0.01
		}
		if math.Abs(s-1) > 1e-6 {
			t.Fatalf("σ=%g: integral %g", sigma, s)
		}
	}
}

// TestSampleMoments: draws have the mixture's mean and covariance.
func TestSampleMoments(t *testing.T) {
	m := threeD(t)
	x := m.Sample(200000, rand.New(rand.NewPCG(2, 2)))
	// Mixture mean and covariance: Σ w(Σ_k + μμᵀ) − mean meanᵀ.
	mean := make([]float64, 3)
	for k, c := range m.Comps {
		for i := range mean {
			mean[i] += m.Weights[k] * c.Mean[i]
		}
	}
	n := len(x) / 3
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			var want float64
			for k, c := range m.Comps {
				want += m.Weights[k] * (c.Cov.At(i, j) + c.Mean[i]*c.Mean[j])
			}
			want -= mean[i] * mean[j]
			var got, mi, mj float64
			for p := 0; p < n; p++ {
				mi += x[3*p+i] / float64(n)
				mj += x[3*p+j] / float64(n)
			}
			for p := 0; p < n; p++ {
				got += (x[3*p+i] - mi) * (x[3*p+j] - mj) / float64(n-1)
			}
			if math.Abs(got-want) > 0.03*(1+math.Abs(want)) {
				t.Errorf("cov[%d][%d] = %.4f, want %.4f", i, j, got, want)
			}
			if i == j && math.Abs(mi-mean[i]) > 0.02 {
				t.Errorf("mean[%d] = %.4f, want %.4f", i, mi, mean[i])
			}
		}
	}
}

func TestBadSpecs(t *testing.T) {
	neg := mat.NewSymDense(2, []float64{1, 2, 2, 1}) // not positive definite
	for name, f := range map[string]func() error{
		"no components": func() error { _, err := NewMixture(nil, nil); return err },
		"zero weight":   func() error { _, err := NewMixture([]float64{0}, []Gaussian{{[]float64{0}, iso(1, 1)}}); return err },
		"dims": func() error {
			_, err := NewMixture([]float64{1, 1}, []Gaussian{{[]float64{0}, iso(1, 1)}, {[]float64{0, 0}, iso(2, 1)}})
			return err
		},
		"indefinite": func() error { _, err := NewGaussian([]float64{0, 0}, neg); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
