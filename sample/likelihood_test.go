package sample

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ncsn-go/ncsn/sde"
	"github.com/ncsn-go/ncsn/toy"
)

// fdVJP gives a Score vector–Jacobian products by central differences
// (float64, exact scores: accurate to ~1e-9 here).
type fdVJP struct{ s Score }

func (f fdVJP) ScoreVJP(x []float64, sigma float64, v, score, vjp []float64) error {
	if err := f.s.Score(x, sigma, score); err != nil {
		return err
	}
	const h = 1e-5
	xp, xm := append([]float64(nil), x...), append([]float64(nil), x...)
	sp, sm := make([]float64, len(x)), make([]float64, len(x))
	// Points are independent: perturb coordinate k of every point at once.
	const d = 2
	for k := 0; k < d; k++ {
		for i := k; i < len(x); i += d {
			xp[i], xm[i] = x[i]+h, x[i]-h
		}
		if err := f.s.Score(xp, sigma, sp); err != nil {
			return err
		}
		if err := f.s.Score(xm, sigma, sm); err != nil {
			return err
		}
		for i := k; i < len(x); i += d {
			xp[i], xm[i] = x[i], x[i]
			var q float64
			for j := i - k; j < i-k+d; j++ {
				q += v[j] * (sp[j] - sm[j]) / (2 * h)
			}
			vjp[i] = q
		}
	}
	return nil
}

// TestLogLikelihoodMatchesExact: on a 2-D Gaussian mixture diffused by the
// VP SDE, whose density p_ε is known in closed form, the probability-flow
// ODE with the exact divergence gives log p_ε at every point to 2e-3 nats,
// and Hutchinson's estimate is unbiased: its mean error over the points is
// within 3 standard errors of zero.
func TestLogLikelihoodMatchesExact(t *testing.T) {
	mix := toy.Mixture2D()
	// β up to 40: m(1) = e⁻¹⁰ puts p_1 within 1e-3 nats of the prior N(0, I)
	// over these points (with β_max = 20, m(1) = 0.0066 shifts the modes at
	// ±5 by 0.03, and the prior's mismatch alone is ~0.08 nats).
	p, err := sde.New(sde.Spec{Name: "vp", BetaMin: 0.1, BetaMax: 40})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	const n = 64
	// Points of p_ε: data points plus the tiny noise of time ε.
	m, s := p.Marginal(p.Eps())
	x := mix.Sample(n, r)
	for i := range x {
		x[i] = m*x[i] + s*r.NormFloat64()
	}
	exact := make([]float64, n)
	for i := range exact {
		exact[i] = mix.ScaledLogDensity(x[2*i:2*i+2], m, s)
	}
	score := fdVJP{toy.Diffused{Mixture: mix, Process: p}}
	for _, tc := range []struct {
		name  string
		exact bool
	}{{"exact-divergence", true}, {"hutchinson", false}} {
		t.Run(tc.name, func(t *testing.T) {
			logp, st, err := LogLikelihood(score, x, Likelihood{Process: p, Dim: 2, Tol: 1e-6, Exact: tc.exact}, rand.New(rand.NewPCG(5, 6)))
			if err != nil {
				t.Fatal(err)
			}
			var sum, sq, worst float64
			for i := range logp {
				e := logp[i] - exact[i]
				sum += e
				sq += e * e
				worst = math.Max(worst, math.Abs(e))
			}
			mean := sum / n
			se := math.Sqrt((sq/n - mean*mean) / (n - 1))
			t.Logf("%d evaluations, %d steps: mean error %.2g ± %.2g, worst %.2g", st.Evals, st.Steps, mean, se, worst)
			if tc.exact && worst > 2e-3 {
				t.Fatalf("worst error %g nats", worst)
			}
			if !tc.exact && math.Abs(mean) > 3*se+1e-3 {
				t.Fatalf("Hutchinson's mean error %g ± %g", mean, se)
			}
		})
	}
	if _, _, err := LogLikelihood(score, x, Likelihood{Process: p, Dim: 3}, r); err == nil {
		t.Fatal("128 values accepted as points of dimension 3")
	}
	if _, _, err := LogLikelihood(score, x, Likelihood{Process: p, Dim: 2}, nil); err == nil {
		t.Fatal("Hutchinson without a random source accepted")
	}
}

// TestLogLikelihoodOtherProcesses: the same on the VE and sub-VP SDEs (only
// VP was checked), on the ring of 8 modes around 0 (VE to σ_max 200), where the prior's
// mismatch is small: the exact divergence gives log p_ε at every point to
// the bound below.
func TestLogLikelihoodOtherProcesses(t *testing.T) {
	mix := toy.Ring8()
	for _, tc := range []struct {
		spec  sde.Spec
		bound float64
	}{
		{sde.Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 200}, 2e-3},
		{sde.Spec{Name: "subvp", BetaMin: 0.1, BetaMax: 40}, 1e-3},
	} {
		t.Run(tc.spec.Name, func(t *testing.T) {
			p, err := sde.New(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(3, 4))
			const n = 32
			m, s := p.Marginal(p.Eps())
			x := mix.Sample(n, r)
			for i := range x {
				x[i] = m*x[i] + s*r.NormFloat64()
			}
			logp, st, err := LogLikelihood(fdVJP{toy.Diffused{Mixture: mix, Process: p}}, x, Likelihood{Process: p, Dim: 2, Tol: 1e-6, Exact: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var worst, sum float64
			for i := range logp {
				e := logp[i] - mix.ScaledLogDensity(x[2*i:2*i+2], m, s)
				sum += e
				worst = math.Max(worst, math.Abs(e))
			}
			t.Logf("%d evaluations: mean error %.2g, worst %.2g nats", st.Evals, sum/n, worst)
			if worst > tc.bound {
				t.Fatalf("worst error %g nats, bound %g", worst, tc.bound)
			}
		})
	}
}
