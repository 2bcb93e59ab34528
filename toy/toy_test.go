package toy

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ncsn-go/ncsn/sde"
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

// TestScaledScore: the score of m·X + s·Z is the gradient of its log density,
// and with m = 1 it is the noised score Score, bit for bit.
func TestScaledScore(t *testing.T) {
	m := threeD(t)
	r := rand.New(rand.NewPCG(3, 3))
	for _, tc := range []struct {
		name      string
		mean, std float64
	}{
		{"m=1 (VE)", 1, 0.3},
		{"shrunk", 0.3, 0.8},
		{"nearly prior", 0.01, 1},
		{"no noise", 0.7, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k := 0; k < 10; k++ {
				x := []float64{3 * r.NormFloat64(), 3 * r.NormFloat64(), 3 * r.NormFloat64()}
				s := make([]float64, 3)
				if err := m.ScaledScore(x, tc.mean, tc.std, s); err != nil {
					t.Fatal(err)
				}
				if tc.mean == 1 {
					s1 := make([]float64, 3)
					if err := m.Score(x, tc.std, s1); err != nil {
						t.Fatal(err)
					}
					for i := range s {
						if s[i] != s1[i] {
							t.Fatalf("x=%v: ScaledScore(m=1) %v, Score %v", x, s, s1)
						}
					}
				}
				for i := 0; i < 3; i++ {
					const h = 1e-5
					xp := append([]float64(nil), x...)
					xm := append([]float64(nil), x...)
					xp[i] += h
					xm[i] -= h
					num := (m.ScaledLogDensity(xp, tc.mean, tc.std) - m.ScaledLogDensity(xm, tc.mean, tc.std)) / (2 * h)
					if math.Abs(num-s[i]) > 1e-6*(1+math.Abs(num)) {
						t.Fatalf("x=%v: score[%d] %g, gradient %g", x, i, s[i], num)
					}
				}
			}
		})
	}
}

// TestScaledDensityMoments: the density of m·X + s·Z for the 1-D mixture
// integrates to 1, with mean m·E[X] and variance m²Var X + s².
func TestScaledDensityMoments(t *testing.T) {
	mix := Mixture1D() // mean 3, variance 1 + 0.2·0.8·10² = 17
	const mean, std = 0.5, 0.7
	var z, m1, m2 float64
	const h = 0.005
	for x := -30.0; x < 30; x += h {
		p := math.Exp(mix.ScaledLogDensity([]float64{x}, mean, std)) * h
		z += p
		m1 += x * p
		m2 += x * x * p
	}
	wantVar := mean*mean*17 + std*std
	if math.Abs(z-1) > 1e-6 || math.Abs(m1-mean*3) > 1e-6 || math.Abs(m2-m1*m1-wantVar) > 1e-5 {
		t.Fatalf("integral %g, mean %g, variance %g; want 1, %g, %g", z, m1, m2-m1*m1, mean*3, wantVar)
	}
}

// TestDiffused: the adapter finds the time of a noise scale and scores the
// law of m(t)X + s(t)Z there, for every process; VE's is the noised score.
func TestDiffused(t *testing.T) {
	m := Mixture2D()
	x := []float64{1, -2, 4.5, 5.5, -6, -4}
	for _, name := range sde.Names {
		t.Run(name, func(t *testing.T) {
			spec, err := sde.Default(name)
			if err != nil {
				t.Fatal(err)
			}
			p, err := sde.New(spec)
			if err != nil {
				t.Fatal(err)
			}
			d := Diffused{Mixture: m, Process: p}
			for _, tt := range []float64{p.Eps(), 0.1, 0.5, 1} {
				mean, std := p.Marginal(tt)
				got, want := make([]float64, len(x)), make([]float64, len(x))
				if err := d.Score(x, std, got); err != nil {
					t.Fatal(err)
				}
				if err := m.ScaledScore(x, mean, std, want); err != nil {
					t.Fatal(err)
				}
				for i := range got {
					if math.Abs(got[i]-want[i]) > 1e-9*(1+math.Abs(want[i])) {
						t.Fatalf("t=%g: score %v, want %v", tt, got, want)
					}
				}
				if name == "ve" || name == "ncsn" {
					if err := m.Score(x, std, want); err != nil {
						t.Fatal(err)
					}
					for i := range got {
						if got[i] != want[i] {
							t.Fatalf("t=%g: VE score %v, noised score %v", tt, got, want)
						}
					}
				}
			}
		})
	}
	vp, err := sde.New(sde.Spec{Name: "vp", BetaMin: 0.1, BetaMax: 20})
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float64, len(x))
	for name, d := range map[string]Diffused{
		"σ above VP's range": {Mixture: m, Process: vp},
		"no process":         {Mixture: m},
	} {
		if err := d.Score(x, 1.5, dst); !errors.Is(err, ErrSpec) {
			t.Errorf("%s: error %v", name, err)
		}
	}
	if err := m.ScaledScore(x, 0, 1, dst); !errors.Is(err, ErrSpec) {
		t.Errorf("m = 0: error %v", err)
	}
	if err := m.ScaledScore(x, 1, -1, dst); !errors.Is(err, ErrSpec) {
		t.Errorf("s = −1: error %v", err)
	}
}

// TestPermutationEnergyTest: the statistic is EnergyDistance; samples of one
// distribution pass, a shifted one fails.
func TestPermutationEnergyTest(t *testing.T) {
	m := Mixture2D()
	r := rand.New(rand.NewPCG(5, 5))
	x, y := m.Sample(300, r), m.Sample(200, r)
	shifted := m.Sample(200, r)
	for i := range shifted {
		shifted[i] += 1
	}
	for _, tc := range []struct {
		name string
		y    []float64
		pass bool
	}{{"same", y, true}, {"shifted by 1", shifted, false}} {
		t.Run(tc.name, func(t *testing.T) {
			et := PermutationEnergyTest(x, tc.y, 2, 200, 0.01, r)
			if want := EnergyDistance(x, tc.y, 2); math.Abs(et.Statistic-want) > 1e-9 {
				t.Errorf("statistic %g, EnergyDistance %g", et.Statistic, want)
			}
			if pass := et.Statistic <= et.Threshold; pass != tc.pass {
				t.Errorf("statistic %.4f, threshold %.4f: pass %v", et.Statistic, et.Threshold, pass)
			}
			t.Logf("statistic %.4f, threshold %.4f", et.Statistic, et.Threshold)
		})
	}
}

// TestMixtureLiteral: a Mixture written as a literal (its fields are
// exported) has no dimension: its methods say so instead of dividing by
// zero.
func TestMixtureLiteral(t *testing.T) {
	m := &Mixture{Weights: []float64{1}, Comps: []Gaussian{{Mean: []float64{0}, Cov: mat.NewSymDense(1, []float64{1})}}}
	if err := m.Score([]float64{0.5}, 1, make([]float64, 1)); !errors.Is(err, ErrSpec) {
		t.Errorf("Score: %v", err)
	}
	if x := m.Sample(3, rand.New(rand.NewPCG(1, 1))); x != nil {
		t.Errorf("Sample: %v", x)
	}
	if a := m.Assign([]float64{0.5}); a != nil {
		t.Errorf("Assign: %v", a)
	}
	if l := m.LogDensity([]float64{0.5}, 1); !math.IsNaN(l) {
		t.Errorf("LogDensity: %g", l)
	}
}
