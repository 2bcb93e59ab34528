package sample

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"

	"github.com/ncsn-go/ncsn/sde"
)

// Continuous configures the samplers of continuous-time processes: the
// reverse SDE (EulerMaruyama), the predictor–corrector sampler, the
// probability-flow ODE (ProbabilityFlowRK45, ProbabilityFlowRK4) for any
// sde.Process, DDPM's ancestral sampling and DDIM for VP, and EDM's Heun
// sampler for VE (on its own σ grid, see Heun).
//
// EulerMaruyama, PredictorCorrector, Ancestral and DDIM run on score_sde's
// time grid t_i = linspace(1, ε, N)_i, i = 0 … N−1, with ε =
// sde.SamplingEps(Process) (10⁻³ for VP and sub-VP, 10⁻⁵ for VE, as score_sde),
// and add t_N = 0: step i goes from t_i to t_{i+1}, so the N steps cover
// [0, 1] and the last one, of length ε, ends at t = 0. (score_sde steps 1/N
// from every grid point instead.) The ODE solvers integrate from 1 to ε. At
// time t a sampler calls Score(x, s(t), ·), s(t) the marginal's noise scale.
type Continuous struct {
	Process   sde.Process
	Steps     int     // discretisation steps N (em, pc, ddpm, ddim, rk4); time grid linspace(1, ε, N) as score_sde (rk4: N equal steps from 1 to ε)
	SNR       float64 // pc: the Langevin corrector's signal-to-noise ratio r (0: 0.16)
	Corrector int     // pc: corrector steps per predictor step (0: 1)
	Tol       float64 // ode (RK45): rtol = atol (0: 1e-5)
	// heun: EDM's S_churn (0: the deterministic sampler), applied at the
	// grid's σ in [ChurnMin, ChurnMax] (S_tmin, S_tmax; ChurnMax 0: no upper limit),
	// with the added noise's standard deviation scaled by ChurnNoise
	// (S_noise; 0: 1).
	Churn, ChurnMin, ChurnMax, ChurnNoise float64
	// Dim is the number of values per sample (x is a batch of len(x)/Dim
	// samples); 0: all of x is one sample. PredictorCorrector takes its
	// corrector's norms per sample: not for samples of a few values (see
	// there).
	Dim int
	// Denoise removes the noise left at the end (score_sde's noise_removal):
	// for EulerMaruyama, PredictorCorrector and Ancestral the last predictor
	// step returns its mean, without noise; the ODE solvers, which stop at
	// t = ε with noise of scale s(ε) still in x, end with one noise-free
	// reverse-diffusion step from ε to 0 (one score evaluation more, as
	// score_sde's ODE sampler). DDIM ignores it: its last step lands on x̂₀.
	Denoise  bool
	Progress func(evals int) // optional, called after every score evaluation
	// Constraint, when set, ties part of each sample to known values
	// (inpainting, colourisation) after every step of the stochastic
	// samplers (EulerMaruyama, PredictorCorrector, Ancestral); the
	// deterministic ones refuse it.
	Constraint Constraint
	// AfterStep, when set, sees the state after step i (0-based) of n of
	// the fixed-grid samplers (all but the ODE solvers), constraint applied:
	// the sampling film of cmd/sample -gif. It must not keep or change x.
	AfterStep func(i, n int, x []float64)
}

// constrain imposes c.Constraint, if any, after step i of n whose state is
// at time next (the last step: exactly), then shows x to AfterStep.
func (c Continuous) constrain(x []float64, i, n int, next float64, r *rand.Rand) {
	if c.Constraint != nil {
		if i == n-1 {
			c.Constraint.Exact(x)
		} else {
			m, s := c.Process.Marginal(next)
			c.Constraint.Impose(x, m, s, r)
		}
	}
	if c.AfterStep != nil {
		c.AfterStep(i, n, x)
	}
}

// Defaults of the zero values of Continuous.
const (
	DefaultSNR = 0.16
	DefaultTol = 1e-5
)

// MinTol is the smallest tolerance RK45 (ProbabilityFlowRK45,
// LogLikelihood) takes: below it float64's rounding (2.2e-16 of each value)
// comes near the error asked for, and the solver's steps shrink towards
// nothing (-tol 1e-300 ran for hours).
const MinTol = 1e-10

// check validates c for a sampler (name) on x and fills in the defaults;
// steps says whether the sampler uses Steps, noise whether it needs r.
func (c Continuous) check(name string, s Score, x []float64, steps, noise bool, r *rand.Rand) (Continuous, error) {
	if nilScore(s) {
		return c, fmt.Errorf("%w: %s: no score function", ErrConfig, name)
	}
	if c.Constraint != nil && !noise {
		return c, fmt.Errorf("%w: %s is deterministic; inpainting and colourisation need a stochastic sampler (ald, em, pc or ddpm)", ErrConfig, name)
	}
	if nilProcess(c.Process) {
		return c, fmt.Errorf("%w: %s: no process", ErrConfig, name)
	}
	if e := sde.SamplingEps(c.Process); !(e > 0 && e < 1) {
		return c, fmt.Errorf("%w: %s: the %s process's smallest time %g is not in (0, 1) (build processes with sde.New)", ErrConfig, name, c.Process.Name(), e)
	}
	if steps && c.Steps < 1 {
		return c, fmt.Errorf("%w: %s: %d steps (need at least 1)", ErrConfig, name, c.Steps)
	}
	if len(x) == 0 {
		return c, fmt.Errorf("%w: %s: no values to sample", ErrConfig, name)
	}
	if err := checkConstraint(name, c.Constraint, c.Dim, len(x)); err != nil {
		return c, err
	}
	if c.Dim == 0 {
		c.Dim = len(x)
	}
	if c.Dim < 0 || len(x)%c.Dim != 0 {
		return c, fmt.Errorf("%w: %s: %d values are not a batch of samples of dimension %d", ErrConfig, name, len(x), c.Dim)
	}
	if c.SNR == 0 {
		c.SNR = DefaultSNR
	}
	if !(c.SNR > 0) || math.IsInf(c.SNR, 0) {
		return c, fmt.Errorf("%w: %s: signal-to-noise ratio %g (need > 0)", ErrConfig, name, c.SNR)
	}
	if c.Corrector == 0 {
		c.Corrector = 1
	}
	if c.Corrector < 0 {
		return c, fmt.Errorf("%w: %s: %d corrector steps", ErrConfig, name, c.Corrector)
	}
	if c.Tol == 0 {
		c.Tol = DefaultTol
	}
	if !(c.Tol >= MinTol) || math.IsInf(c.Tol, 0) {
		return c, fmt.Errorf("%w: %s: tolerance %g (need ≥ %g)", ErrConfig, name, c.Tol, MinTol)
	}
	if noise && r == nil {
		return c, fmt.Errorf("%w: %s: no random generator", ErrConfig, name)
	}
	return c, nil
}

// nilScore reports a nil score function: a nil interface, or one holding a
// nil pointer or function (a nil *model.Scorer, a nil ScoreFunc).
func nilScore(s any) bool {
	if s == nil {
		return true
	}
	switch v := reflect.ValueOf(s); v.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Slice, reflect.Interface, reflect.Chan:
		return v.IsNil()
	}
	return false
}

// nilProcess reports a nil process, typed nil pointers of package sde included.
func nilProcess(p sde.Process) bool {
	switch v := p.(type) {
	case nil:
		return true
	case *sde.VE:
		return v == nil
	case *sde.NCSN:
		return v == nil
	case *sde.VP:
		return v == nil
	case *sde.SubVP:
		return v == nil
	}
	return false
}

// vpOnly refuses every process but VP (sub-VP and VE included).
func vpOnly(name string, p sde.Process) error {
	if _, ok := p.(*sde.VP); !ok {
		return fmt.Errorf("%w: %s needs the vp process, not %s", ErrConfig, name, p.Name())
	}
	return nil
}

// chain returns the process's discrete steps (f_i, G_i) = Discretize(t_i,
// t_i − t_{i+1}) on the grid, and an error where one is undefined or does not
// keep its sign (1 + f ≤ 0): VP's β_i = β(t)·Δt must stay below 1, so a
// coarse grid cannot carry its chain.
func chain(name string, c Continuous, ts []float64) (f, G []float64, err error) {
	f, G = make([]float64, c.Steps), make([]float64, c.Steps)
	for i := range f {
		f[i], G[i] = c.Process.Discretize(ts[i], ts[i]-ts[i+1])
		if !chainStepOK(f[i], G[i]) {
			least := ""
			if n := leastChainSteps(c.Process, c.Steps); n > 0 {
				least = fmt.Sprintf("; it needs at least %d (-steps %d)", n, n)
			}
			return nil, nil, fmt.Errorf("%w: %s: %d steps are too few for the %s process: its discrete step at t = %.4g is undefined (a step of the grid too long for the chain)%s",
				ErrConfig, name, c.Steps, c.Process.Name(), ts[i], least)
		}
	}
	return f, G, nil
}

func chainStepOK(f, G float64) bool {
	return 1+f > 0 && !math.IsInf(f, 0) && G >= 0 && !math.IsInf(G, 0)
}

// leastChainSteps is the fewest steps above from whose grid carries p's
// chain (0: none up to a million).
func leastChainSteps(p sde.Process, from int) int {
	ok := func(n int) bool {
		ts := sde.SamplingTimes(p, n)
		for i := 0; i < n; i++ {
			if !chainStepOK(p.Discretize(ts[i], ts[i]-ts[i+1])) {
				return false
			}
		}
		return true
	}
	lo, hi := from, from+1 // lo fails; find an hi that works by doubling, then bisect
	for !ok(hi) {
		if hi > 1_000_000 {
			return 0
		}
		lo, hi = hi, 2*hi
	}
	for hi-lo > 1 {
		if m := (lo + hi) / 2; ok(m) {
			hi = m
		} else {
			lo = m
		}
	}
	return hi
}

// scorer evaluates the score at a time of the process and counts.
type scorer struct {
	s        Score
	p        sde.Process
	progress func(int)
	evals    int
}

func newScorer(s Score, c Continuous) *scorer {
	return &scorer{s: s, p: c.Process, progress: c.Progress}
}

// at writes s(x, s(t)) into dst.
func (sc *scorer) at(x []float64, t float64, dst []float64) error {
	_, std := sc.p.Marginal(t)
	if err := sc.s.Score(x, std, dst); err != nil {
		return fmt.Errorf("sample: score at t = %g (σ = %g): %w", t, std, err)
	}
	sc.count()
	return nil
}

// atSigma writes s(x, σ) into dst.
func (sc *scorer) atSigma(x []float64, sigma float64, dst []float64) error {
	if err := sc.s.Score(x, sigma, dst); err != nil {
		return fmt.Errorf("sample: score at σ = %g: %w", sigma, err)
	}
	sc.count()
	return nil
}

func (sc *scorer) count() {
	sc.evals++
	if sc.progress != nil {
		sc.progress(sc.evals)
	}
}

// Prior fills x with draws of the process's prior N(0, PriorStd² I) (with
// NaN for a nil process or generator: it has no error to return).
func Prior(x []float64, p sde.Process, r *rand.Rand) {
	if nilProcess(p) || r == nil {
		for i := range x {
			x[i] = math.NaN()
		}
		return
	}
	sd := p.PriorStd()
	for i := range x {
		x[i] = sd * r.NormFloat64()
	}
}

// EulerMaruyama integrates the reverse SDE dx = [a x − g² s] dt + g dw̄ from
// t=1 to ε in N steps (the last of which goes on from ε to 0); returns score
// evaluations.
//
// Step i, from t_i back to t_{i+1} (Δt = t_i − t_{i+1}, the last one from ε
// to 0), is x ← x − [a(t_i)x − g(t_i)² s(x, s(t_i))]Δt + g(t_i)√Δt z, in place
// on x, which should start from the prior (Prior). It makes N evaluations;
// with Denoise the last step adds no noise.
func EulerMaruyama(s Score, x []float64, c Continuous, r *rand.Rand) (int, error) {
	c, err := c.check("euler-maruyama", s, x, true, true, r)
	if err != nil {
		return 0, err
	}
	ts := sde.SamplingTimes(c.Process, c.Steps)
	sc := newScorer(s, c)
	g := make([]float64, len(x))
	for i := 0; i < c.Steps; i++ {
		t, dt := ts[i], ts[i]-ts[i+1]
		if err := sc.at(x, t, g); err != nil {
			return sc.evals, err
		}
		a, diff := c.Process.Coefficients(t)
		g2, sd := diff*diff, diff*math.Sqrt(dt)
		noise := !(c.Denoise && i == c.Steps-1)
		for j := range x {
			x[j] -= (a*x[j] - g2*g[j]) * dt
			if noise {
				x[j] += sd * r.NormFloat64()
			}
		}
		c.constrain(x, i, c.Steps, ts[i+1], r)
	}
	return sc.evals, finite("euler-maruyama", x)
}

// PredictorCorrector: reverse-diffusion predictor (via Process.Discretize) +
// Langevin corrector whose step size is score_sde's LangevinCorrector's
// (ε = 2 α (r‖z‖/‖s‖)², α = 1 for VE, (1+f)² from Discretize otherwise:
// 1 − β_i for VP, as score_sde's; for sub-VP, whose Discretize is
// Euler–Maruyama's and which score_sde's corrector leaves undefined,
// (1 − β(t)Δt/2)²), with the norms taken per sample.
//
// At each t_i, with (f, G) = Discretize(t_i, t_i − t_{i+1}) and α = (1+f)²
// (1 for VE, whose f is 0), it runs Corrector Langevin steps
// x ← x + εs(x, s(t_i)) + √(2ε) z, each sample b of Dim values with its own
// ε_b = 2α(r‖z_b‖/‖s_b‖)² (0 where ‖s_b‖ = 0), then the predictor
// x ← x − f x + G² s(x, s(t_i)) + G z, which for VE removes the variance
// σ(t_i)² − σ(t_{i+1})² (all that is left, at the last step). score_sde
// averages the norms over the batch and takes one ε for all; per-sample
// norms make a sample's path independent of the batch it is drawn in.
//
// Per-sample norms need many values per sample: the ratio ‖z_b‖/‖s_b‖ of
// one sample is noisy where Dim is small, and the corrector then biases
// the variance by about 1 + 4/Dim — 0.5% for an MNIST image, but samples
// of 1 or 2 values diverge (on a 1-D Gaussian of standard deviation 0.2,
// samples of standard deviation 60 to 4,800: TestCorrectorNormsLesson). For
// low-dimensional data leave Dim 0 (the whole batch is one sample, with
// one ε from the norms of all of it, √Σ‖z_b‖²/√Σ‖s_b‖² — close to
// score_sde's mean‖z_b‖/mean‖s_b‖ where the samples' norms are alike, not
// equal to it) or use EulerMaruyama.
//
// It makes N·(Corrector+1) evaluations; with Denoise the last predictor step
// adds no noise. A VP grid too coarse for DDPM's chain (β_i ≥ 1) is an error.
func PredictorCorrector(s Score, x []float64, c Continuous, r *rand.Rand) (int, error) {
	const name = "predictor-corrector"
	c, err := c.check(name, s, x, true, true, r)
	if err != nil {
		return 0, err
	}
	ts := sde.SamplingTimes(c.Process, c.Steps)
	fs, Gs, err := chain(name, c, ts)
	if err != nil {
		return 0, err
	}
	sc := newScorer(s, c)
	g, z := make([]float64, len(x)), make([]float64, len(x))
	for i := 0; i < c.Steps; i++ {
		t, f, G := ts[i], fs[i], Gs[i]
		alpha := (1 + f) * (1 + f)
		for k := 0; k < c.Corrector; k++ {
			if err := sc.at(x, t, g); err != nil {
				return sc.evals, err
			}
			for j := range z {
				z[j] = r.NormFloat64()
			}
			for b := 0; b < len(x); b += c.Dim {
				xb, gb, zb := x[b:b+c.Dim], g[b:b+c.Dim], z[b:b+c.Dim]
				var gn, zn float64
				for j := range gb {
					gn += gb[j] * gb[j]
					zn += zb[j] * zb[j]
				}
				if gn == 0 {
					continue
				}
				eps := 2 * alpha * c.SNR * c.SNR * zn / gn
				sd := math.Sqrt(2 * eps)
				for j := range xb {
					xb[j] += eps*gb[j] + sd*zb[j]
				}
			}
			if c.Constraint != nil {
				m, s := c.Process.Marginal(t)
				c.Constraint.Impose(x, m, s, r)
			}
		}
		if err := sc.at(x, t, g); err != nil {
			return sc.evals, err
		}
		noise := !(c.Denoise && i == c.Steps-1)
		g2 := G * G
		for j := range x {
			x[j] += -f*x[j] + g2*g[j]
			if noise {
				x[j] += G * r.NormFloat64()
			}
		}
		c.constrain(x, i, c.Steps, ts[i+1], r)
	}
	return sc.evals, finite(name, x)
}

// Ancestral is DDPM's ancestral sampling for VP (score_sde's
// AncestralSamplingPredictor): β_i from Discretize, x ← (x + β s)/√(1−β) +
// √β z. Error for a process that is not *sde.VP.
//
// On the grid, β_i = G_i² and √(1−β_i) = 1 + f_i from Discretize(t_i,
// t_i − t_{i+1}), s = s(x, s(t_i)). It makes N evaluations; with Denoise
// the last step adds no noise. A grid too coarse for the chain (β_i ≥ 1) is
// an error.
func Ancestral(s Score, x []float64, c Continuous, r *rand.Rand) (int, error) {
	const name = "ancestral"
	c, err := c.check(name, s, x, true, true, r)
	if err != nil {
		return 0, err
	}
	if err := vpOnly(name, c.Process); err != nil {
		return 0, err
	}
	ts := sde.SamplingTimes(c.Process, c.Steps)
	fs, Gs, err := chain(name, c, ts)
	if err != nil {
		return 0, err
	}
	sc := newScorer(s, c)
	g := make([]float64, len(x))
	for i := 0; i < c.Steps; i++ {
		if err := sc.at(x, ts[i], g); err != nil {
			return sc.evals, err
		}
		root, G := 1+fs[i], Gs[i]
		beta := G * G
		noise := !(c.Denoise && i == c.Steps-1)
		for j := range x {
			x[j] = (x[j] + beta*g[j]) / root
			if noise {
				x[j] += G * r.NormFloat64()
			}
		}
		c.constrain(x, i, c.Steps, ts[i+1], r)
	}
	return sc.evals, finite(name, x)
}

// DDIM (η = 0) for VP: ε̂ = −std_t s(x, std_t); x̂₀ = (x − std_t ε̂)/m_t;
// x ← m_next x̂₀ + std_next ε̂. Error for a process that is not *sde.VP.
//
// Step i goes from t_i to t_{i+1} with (m, std) from Marginal; the last one
// goes to t = 0, where m = 1 and std = 0, so it returns x̂₀ itself. It is
// deterministic, makes N evaluations and ignores Denoise.
func DDIM(s Score, x []float64, c Continuous) (int, error) {
	const name = "ddim"
	c, err := c.check(name, s, x, true, false, nil)
	if err != nil {
		return 0, err
	}
	if err := vpOnly(name, c.Process); err != nil {
		return 0, err
	}
	ts := sde.SamplingTimes(c.Process, c.Steps)
	sc := newScorer(s, c)
	g := make([]float64, len(x))
	for i := 0; i < c.Steps; i++ {
		if err := sc.at(x, ts[i], g); err != nil {
			return sc.evals, err
		}
		m, std := c.Process.Marginal(ts[i])
		mNext, stdNext := c.Process.Marginal(ts[i+1])
		for j := range x {
			e := -std * g[j]
			x0 := (x[j] - std*e) / m
			x[j] = mNext*x0 + stdNext*e
		}
		if c.AfterStep != nil {
			c.AfterStep(i, c.Steps, x)
		}
	}
	return sc.evals, finite(name, x)
}
