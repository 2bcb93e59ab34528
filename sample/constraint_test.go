package sample

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ncsn-go/ncsn/sde"
)

// corrScore is the exact score of m·X + s·Z for X ~ N(0, Σ), Σ = [[1, ρ],
// [ρ, 1]], pairs of values back to back.
func corrScore(p sde.Process, rho float64) Score {
	return ScoreFunc(func(x []float64, sigma float64, dst []float64) error {
		m, _ := p.Marginal(p.TimeOf(sigma))
		a, b := m*m+sigma*sigma, m*m*rho // covariance [[a, b], [b, a]]
		det := a*a - b*b
		for i := 0; i+1 < len(x); i += 2 {
			dst[i] = -(a*x[i] - b*x[i+1]) / det
			dst[i+1] = -(-b*x[i] + a*x[i+1]) / det
		}
		return nil
	})
}

// Inpainting a correlated Gaussian: the first value known (1.5), the second
// drawn by annealed Langevin and predictor–corrector close to its
// conditional law N(ρ·1.5, 1 − ρ²) (mean to 0.1, variance to a factor 1.5).
// Replacement alone (em, ddpm: no Langevin steps) is a known approximation
// that falls short of the conditional mean (0.94 here against 1.35); the
// test pins it between. The known value is exact at the end in every case.
func TestInpaintGaussian(t *testing.T) {
	const rho, a, n = 0.9, 1.5, 4000
	known := Known{Mask: []bool{true, false}, Value: []float64{a, 0}}
	ncsn, _ := sde.Default("ncsn")
	ncsnSig, _ := sde.Geometric(3, 0.01, 20)
	ncsn.Sigmas = ncsnSig
	for _, c := range []struct {
		name string
		spec sde.Spec
	}{{"ald", ncsn}, {"pc", vpSpec}, {"em", veSpec}, {"ddpm", vpSpec}} {
		t.Run(c.name, func(t *testing.T) {
			p := newProcess(t, c.spec)
			r := rand.New(rand.NewPCG(7, 7))
			x := make([]float64, 2*n)
			s := corrScore(p, rho)
			var err error
			switch c.name {
			case "ald":
				for i := range x {
					x[i] = r.Float64()
				}
				err = AnnealedLangevin(s, x, Annealed{Sigmas: c.spec.Sigmas, StepsPerLevel: 50, Eps: 2e-4, Constraint: known}, r)
			default:
				Prior(x, p, r)
				cc := Continuous{Process: p, Steps: 500, Denoise: true, Constraint: known} // Dim 0: the corrector's norms over all pairs, as 2 values are too few
				switch c.name {
				case "pc":
					_, err = PredictorCorrector(s, x, cc, r)
				case "em":
					_, err = EulerMaruyama(s, x, cc, r)
				case "ddpm":
					_, err = Ancestral(s, x, cc, r)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			var mean, v float64
			for i := 0; i < n; i++ {
				if x[2*i] != a {
					t.Fatalf("sample %d: known value %g, want exactly %g", i, x[2*i], a)
				}
				mean += x[2*i+1] / n
			}
			for i := 0; i < n; i++ {
				v += (x[2*i+1] - mean) * (x[2*i+1] - mean) / n
			}
			t.Logf("%s: completion mean %.3f (conditional %.3f), variance %.3f (%.3f)", c.name, mean, rho*a, v, 1-rho*rho)
			switch c.name {
			case "ald", "pc": // Langevin steps at every level mix the unknown part given the known
				if math.Abs(mean-rho*a) > 0.1 || v > 1.5*(1-rho*rho) || v < (1-rho*rho)/1.5 {
					t.Errorf("%s: completions N(%.3f, %.3f), conditional N(%.3f, %.3f)", c.name, mean, v, rho*a, 1-rho*rho)
				}
			default: // replacement alone is biased towards the unconditional law (mean 0, variance 1)
				if !(mean > 0.6 && mean < rho*a+0.1) || v > 1 {
					t.Errorf("%s: completions N(%.3f, %.3f), conditional N(%.3f, %.3f)", c.name, mean, v, rho*a, 1-rho*rho)
				}
			}
		})
	}
}

// Colourisation keeps each pixel's grey level (R+G+B)/3 exactly and leaves
// the colour to the sampler; deterministic samplers refuse a constraint.
func TestGreyConstraint(t *testing.T) {
	const hw = 4
	grey := Grey{Grey: []float64{0.1, 0.5, 0.9, 0.3}}
	if err := grey.Validate(3 * hw); err != nil {
		t.Fatal(err)
	}
	if err := grey.Validate(hw); !errors.Is(err, ErrConfig) {
		t.Fatalf("grey image against 1-channel samples: %v", err)
	}
	p := newProcess(t, vpSpec)
	r := rand.New(rand.NewPCG(3, 3))
	x := make([]float64, 5*3*hw)
	Prior(x, p, r)
	if _, err := PredictorCorrector(unitScore(p), x, Continuous{Process: p, Steps: 50, Dim: 3 * hw, Constraint: grey}, r); err != nil {
		t.Fatal(err)
	}
	spread := 0.0
	for b := 0; b < 5; b++ {
		for j := 0; j < hw; j++ {
			rr, g, bl := x[b*3*hw+j], x[b*3*hw+hw+j], x[b*3*hw+2*hw+j]
			if d := (rr+g+bl)/3 - grey.Grey[j]; math.Abs(d) > 1e-12 {
				t.Fatalf("sample %d pixel %d: grey %g, want %g", b, j, (rr+g+bl)/3, grey.Grey[j])
			}
			spread += math.Abs(rr - g)
		}
	}
	if spread == 0 {
		t.Fatal("no colour: every pixel grey")
	}
	for _, run := range []func() error{
		func() error {
			_, err := DDIM(unitScore(p), x, Continuous{Process: p, Steps: 10, Constraint: grey})
			return err
		},
		func() error {
			_, err := ProbabilityFlowRK45(unitScore(p), x, Continuous{Process: p, Constraint: grey})
			return err
		},
	} {
		if err := run(); !errors.Is(err, ErrConfig) {
			t.Fatalf("a deterministic sampler with a constraint: %v", err)
		}
	}
}
