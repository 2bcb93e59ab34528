package sample

import (
	"github.com/ncsn-go/ncsn/sde"
)

// ODEStats reports the cost of an ODE solve.
type ODEStats struct {
	Evals    int // score evaluations
	Steps    int // accepted steps
	Rejected int // rejected steps (adaptive solver)
}

// flow is the probability-flow ODE of a process, dx/dt = a(t)x − ½g(t)² s(x,
// s(t)), whose solution from t = 1 to ε carries the prior to the data
// distribution with the same marginals as the reverse SDE, and no noise.
func flow(sc *scorer) func(t float64, x, dx []float64) error {
	return func(t float64, x, dx []float64) error {
		if err := sc.at(x, t, dx); err != nil {
			return err
		}
		a, g := sc.p.Coefficients(t)
		k := -0.5 * g * g
		for i := range dx {
			dx[i] = a*x[i] + k*dx[i]
		}
		return nil
	}
}

// ProbabilityFlowRK4 integrates the probability-flow ODE dx/dt = a x − ½ g² s
// from t = 1 to ε with N fixed classical Runge–Kutta steps of (1−ε)/N, in
// place on x (from the prior). Each step evaluates the score 4 times, the
// first at the step's starting point; 4N in all, and one more with Denoise
// (denoiseAtEps).
func ProbabilityFlowRK4(s Score, x []float64, c Continuous) (ODEStats, error) {
	var st ODEStats
	c, err := c.check("rk4", s, x, true, false, nil)
	if err != nil {
		return st, err
	}
	sc := newScorer(s, c)
	done := func(err error) (ODEStats, error) {
		st.Evals = sc.evals
		return st, err
	}
	f := flow(sc)
	n := len(x)
	k1, k2, k3, k4, tmp := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	eps := sde.SamplingEps(c.Process)
	h := (eps - 1) / float64(c.Steps)
	for i := 0; i < c.Steps; i++ {
		t := 1 + float64(i)*h
		if err := f(t, x, k1); err != nil {
			return done(err)
		}
		for j := range tmp {
			tmp[j] = x[j] + h/2*k1[j]
		}
		if err := f(t+h/2, tmp, k2); err != nil {
			return done(err)
		}
		for j := range tmp {
			tmp[j] = x[j] + h/2*k2[j]
		}
		if err := f(t+h/2, tmp, k3); err != nil {
			return done(err)
		}
		for j := range tmp {
			tmp[j] = x[j] + h*k3[j]
		}
		end := t + h
		if i == c.Steps-1 {
			end = eps
		}
		if err := f(end, tmp, k4); err != nil {
			return done(err)
		}
		for j := range x {
			x[j] += h / 6 * (k1[j] + 2*k2[j] + 2*k3[j] + k4[j])
		}
		st.Steps++
	}
	if c.Denoise {
		if err := denoiseAtEps(sc, x, k1); err != nil {
			return done(err)
		}
	}
	return done(finite("rk4", x))
}

// denoiseAtEps is score_sde's noise removal after the probability-flow ODE
// (get_ode_sampler with denoise, its default): the ODE ends at t = ε, where
// x(ε) is the data with noise of scale s(ε) still in it (about 0.01 for VP
// at ε = 10⁻³, σ_min for VE), and one reverse-diffusion step from ε to 0
// without noise takes it out: x ← x − f·x + G²·s(x, s(ε)), (f, G) =
// Discretize(ε, ε) (VE: Tweedie's x + σ(ε)²·s). One score evaluation; g is
// scratch of len(x).
func denoiseAtEps(sc *scorer, x, g []float64) error {
	eps := sde.SamplingEps(sc.p)
	if err := sc.at(x, eps, g); err != nil {
		return err
	}
	f, G := sc.p.Discretize(eps, eps)
	for j := range x {
		x[j] += -f*x[j] + G*G*g[j]
	}
	return nil
}

// Dormand–Prince 5(4) tableau.
var (
	dpC = [7]float64{0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1}
	dpA = [7][6]float64{
		{},
		{1.0 / 5},
		{3.0 / 40, 9.0 / 40},
		{44.0 / 45, -56.0 / 15, 32.0 / 9},
		{19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
		{9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
		{35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84},
	}
	// dpE is the 5th-order weights minus the embedded 4th-order ones.
	dpE = [7]float64{71.0 / 57600, 0, -71.0 / 16695, 71.0 / 1920, -17253.0 / 339200, 22.0 / 525, -1.0 / 40}
)

// ProbabilityFlowRK45 integrates the probability-flow ODE dx/dt = a x − ½ g² s
// from t = 1 to ε by adaptive Dormand–Prince 5(4) (dopri5) at rtol = atol =
// Tol: each step's local error, scaled by Tol·(1 + max(|x|, |x_new|)) and
// averaged (RMS) over all values, must be ≤ 1; the first step is (1−ε)/100.
// It works in place on x (from the prior), ignores Steps, gives up after
// 100000 steps, and reports its score evaluations in ODEStats; with Denoise
// it ends with score_sde's noise removal, one evaluation more
// (denoiseAtEps).
func ProbabilityFlowRK45(s Score, x []float64, c Continuous) (ODEStats, error) {
	var st ODEStats
	c, err := c.check("rk45", s, x, false, false, nil)
	if err != nil {
		return st, err
	}
	sc := newScorer(s, c)
	st.Steps, st.Rejected, err = dopri5(flow(sc), x, 1, sde.SamplingEps(c.Process), c.Tol, c.Tol)
	if err != nil {
		st.Evals = sc.evals
		return st, err // prefixed already ("sample: sample: score at …" it read)
	}
	if c.Denoise {
		err = denoiseAtEps(sc, x, make([]float64, len(x)))
	}
	if err == nil {
		err = finite("rk45", x)
	}
	st.Evals = sc.evals
	return st, err
}
