package sample

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ncsn-go/ncsn/sde"
)

// carried is the exact score of data N(mu, s0²) (each value alone) under a
// process: x_t ~ N(m·mu, m²s0² + σ²), m = m(TimeOf(σ)).
type carried struct {
	p      sde.Process
	mu, s0 float64
}

func (g carried) Score(x []float64, sigma float64, dst []float64) error {
	m, _ := g.p.Marginal(g.p.TimeOf(sigma))
	v := m*m*g.s0*g.s0 + sigma*sigma
	for i := range x {
		dst[i] = -(x[i] - m*g.mu) / v
	}
	return nil
}

// TestODEDenoise: the probability-flow ODE stops at t = ε, where the data
// still carry noise of scale s(ε) (VE: σ_min = 0.01; VP at ε = 10⁻³: about
// 0.01); with Denoise both solvers end with score_sde's noise-free step
// from ε to 0, one evaluation more, which takes it out. On data of
// standard deviation 10⁻⁴ with the exact score, without it the samples
// kept that noise (the ODE samplers ignored Denoise).
func TestODEDenoise(t *testing.T) {
	const n = 4000
	mu, s0 := 0.3, 1e-4
	for _, name := range []string{"ve", "vp", "subvp"} {
		spec, err := sde.Default(name)
		if err != nil {
			t.Fatal(err)
		}
		p := newProcess(t, spec)
		_, left := p.Marginal(sde.SamplingEps(p))
		for _, solver := range []string{"rk45", "rk4"} {
			var evals [2]int
			var sd [2]float64
			for k, denoise := range []bool{false, true} {
				x := make([]float64, n)
				Prior(x, p, rand.New(rand.NewPCG(1, 2)))
				c := Continuous{Process: p, Denoise: denoise, Steps: 200}
				var st ODEStats
				if solver == "rk45" {
					st, err = ProbabilityFlowRK45(carried{p, mu, s0}, x, c)
				} else {
					st, err = ProbabilityFlowRK4(carried{p, mu, s0}, x, c)
				}
				if err != nil {
					t.Fatal(err)
				}
				mean, vr := moments(x, 1)
				evals[k], sd[k] = st.Evals, math.Sqrt(vr[0])
				if math.Abs(mean[0]-mu) > 1e-3 {
					t.Errorf("%s %s denoise=%v: mean %g, want %g", name, solver, denoise, mean[0], mu)
				}
			}
			t.Logf("%s %s: s(ε) %.3g; standard deviation %.3g without Denoise, %.3g with (data %g)", name, solver, left, sd[0], sd[1], s0)
			if evals[1] != evals[0]+1 {
				t.Errorf("%s %s: %d evaluations with Denoise, %d without", name, solver, evals[1], evals[0])
			}
			// Without: the noise of p_ε, s(ε) beside the data's 10⁻⁴ (RK45;
			// RK4's 200 fixed steps are coarser at the low end).
			if want := math.Hypot(left, s0); solver == "rk45" && math.Abs(sd[0]-want) > 0.05*want {
				t.Errorf("%s %s without Denoise: standard deviation %.4g, want s(ε) %.4g", name, solver, sd[0], want)
			}
			// With: the posterior mean of the clean value (VE: Tweedie's,
			// s0²/√(s0² + σ²)); VP's one-step chain leaves ~9% of s(ε) where
			// β(ε)·ε and s(ε)² differ; sub-VP's s(ε) is about the data's.
			if sd[1] > 0.25*sd[0] || (name != "subvp" && sd[1] > 0.1*left) {
				t.Errorf("%s %s with Denoise: standard deviation %.4g (without: %.4g), s(ε) %.4g, data %g", name, solver, sd[1], sd[0], left, s0)
			}
		}
	}
}
