package sample

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/ncsn-go/ncsn/sde"
)

// ScoreVJP is a score function that also gives vector–Jacobian products
// vᵀ∂s/∂x (for a network, one backward pass): what a likelihood through the
// probability-flow ODE needs for the divergence of the score. x and v hold a
// batch of points back to back; each point's product involves only its own
// scores.
type ScoreVJP interface {
	ScoreVJP(x []float64, sigma float64, v, score, vjp []float64) error
}

// Likelihood configures LogLikelihood.
type Likelihood struct {
	Process sde.Process
	Dim     int     // values per point (x holds len(x)/Dim points)
	Tol     float64 // RK45's rtol = atol (0: 1e-5)
	// Exact uses the exact divergence, Σ_k e_kᵀ∂s/∂x e_k (Dim VJPs per
	// evaluation: for low dimensions), instead of Hutchinson's estimate.
	Exact bool
}

// LogLikelihood returns log p_ε(x) of each point of x under the model whose
// score s is, by the instantaneous change of variables along the
// probability-flow ODE dx/dt = F(x, t) = a(t)x − ½g(t)² s(x, t):
//
//	log p_ε(x(ε)) = log p_prior(x(1)) + ∫_ε^1 ∇·F(x(t), t) dt,
//	∇·F = a(t)·Dim − ½g(t)² ∇·s,
//
// solved from ε to 1 for x and the integral together by RK45 (error
// controlled on both). The divergence of the score is Hutchinson's
// vᵀ(∂s/∂x)v with one Rademacher probe v per point, drawn from r and kept
// along the path (an unbiased estimate of the log-likelihood); Exact uses
// the exact divergence. x is not changed. The prior is the process's
// N(0, PriorStd² I).
func LogLikelihood(s ScoreVJP, x []float64, c Likelihood, r *rand.Rand) ([]float64, ODEStats, error) {
	var st ODEStats
	switch {
	case c.Process == nil || nilProcess(c.Process):
		return nil, st, fmt.Errorf("%w: likelihood: no process", ErrConfig)
	case !(sde.SamplingEps(c.Process) > 0 && sde.SamplingEps(c.Process) < 1):
		return nil, st, fmt.Errorf("%w: likelihood: the %s process's smallest time %g is not in (0, 1) (build processes with sde.New)", ErrConfig, c.Process.Name(), sde.SamplingEps(c.Process))
	case nilScore(s):
		return nil, st, fmt.Errorf("%w: likelihood: no score function", ErrConfig)
	case c.Dim < 1 || len(x) == 0 || len(x)%c.Dim != 0:
		return nil, st, fmt.Errorf("%w: likelihood: %d values are not points of dimension %d", ErrConfig, len(x), c.Dim)
	case c.Tol != 0 && !(c.Tol >= MinTol) || math.IsInf(c.Tol, 0):
		return nil, st, fmt.Errorf("%w: likelihood: tolerance %g (need ≥ %g)", ErrConfig, c.Tol, MinTol)
	case !c.Exact && r == nil:
		return nil, st, fmt.Errorf("%w: likelihood: Hutchinson's estimator needs a random source", ErrConfig)
	}
	tol := c.Tol
	if tol == 0 {
		tol = 1e-5
	}
	p, d, n := c.Process, c.Dim, len(x)/c.Dim
	probe := make([]float64, len(x))
	if !c.Exact {
		for i := range probe {
			probe[i] = float64(1 - 2*int(r.Uint64()&1))
		}
	}
	score, vjp, div := make([]float64, len(x)), make([]float64, len(x)), make([]float64, n)
	evals := 0
	// The state is x followed by one running integral per point.
	f := func(t float64, y, dy []float64) error {
		xs, _ := y[:len(x)], y[len(x):]
		_, std := p.Marginal(t)
		if c.Exact {
			clear(div)
			for k := 0; k < d; k++ {
				clear(probe)
				for i := 0; i < n; i++ {
					probe[i*d+k] = 1
				}
				if err := s.ScoreVJP(xs, std, probe, score, vjp); err != nil {
					return err
				}
				evals++
				for i := 0; i < n; i++ {
					div[i] += vjp[i*d+k]
				}
			}
		} else {
			if err := s.ScoreVJP(xs, std, probe, score, vjp); err != nil {
				return err
			}
			evals++
			for i := 0; i < n; i++ {
				var q float64
				for j := i * d; j < (i+1)*d; j++ {
					q += probe[j] * vjp[j]
				}
				div[i] = q
			}
		}
		a, g := p.Coefficients(t)
		k := -0.5 * g * g
		for j, v := range xs {
			dy[j] = a*v + k*score[j]
		}
		for i := 0; i < n; i++ {
			dy[len(x)+i] = a*float64(d) + k*div[i]
		}
		return nil
	}
	y := make([]float64, len(x)+n)
	copy(y, x)
	steps, rejected, err := dopri5(f, y, p.Eps(), 1, tol, tol)
	st = ODEStats{Evals: evals, Steps: steps, Rejected: rejected}
	if err != nil { // prefixed already ("sample: score at …": it was said twice)
		return nil, st, fmt.Errorf("%w, in the likelihood's integral", err)
	}
	logp := make([]float64, n)
	for i := 0; i < n; i++ {
		logp[i] = sde.PriorLogP(p, y[i*d:(i+1)*d]) + y[len(x)+i]
	}
	return logp, st, nil
}

// dopri5 integrates dy/dt = f(t, y) from t0 to t1 (either direction) in
// place by the Dormand–Prince 5(4) pair with error control: each step's
// local error, scaled by atol + rtol·max(|y|, |y_new|) and averaged (RMS)
// over all values, must be ≤ 1; the first step is (t1−t0)/100. It returns
// the accepted and rejected steps and gives up after 100000.
func dopri5(f func(t float64, y, dy []float64) error, y []float64, t0, t1, rtol, atol float64) (steps, rejected int, err error) {
	n := len(y)
	var k [7][]float64
	for i := range k {
		k[i] = make([]float64, n)
	}
	tmp, yn := make([]float64, n), make([]float64, n)
	dir := math.Copysign(1, t1-t0)
	t, h := t0, (t1-t0)/100
	if err := f(t, y, k[0]); err != nil {
		return 0, 0, err
	}
	for dir*(t1-t) > 0 {
		if dir*(t+h-t1) >= 0 {
			h = t1 - t
		}
		for i := 1; i < 7; i++ {
			for j := range tmp {
				acc := y[j]
				for m := 0; m < i; m++ {
					acc += h * dpA[i][m] * k[m][j]
				}
				tmp[j] = acc
			}
			if i == 6 {
				copy(yn, tmp) // row 7 of the tableau is the 5th-order solution
			}
			if err := f(t+dpC[i]*h, tmp, k[i]); err != nil {
				return steps, rejected, err
			}
		}
		var e2 float64
		for j := range y {
			var e float64
			for m := 0; m < 7; m++ {
				e += dpE[m] * k[m][j]
			}
			r := h * e / (atol + rtol*math.Max(math.Abs(y[j]), math.Abs(yn[j])))
			e2 += r * r
		}
		errNorm := math.Sqrt(e2 / float64(n))
		if math.IsNaN(errNorm) {
			return steps, rejected, fmt.Errorf("%w: the ODE solver's error estimate is not a number at t = %g (the network's output is not finite there)", ErrDiverged, t)
		}
		if errNorm <= 1 {
			if dir*(t+h-t1) >= 0 {
				t = t1
			} else {
				t += h
			}
			copy(y, yn)
			k[0], k[6] = k[6], k[0] // first same as last
			steps++
		} else {
			rejected++
		}
		fac := 5.0
		if errNorm > 0 {
			fac = math.Min(5, math.Max(0.2, 0.9*math.Pow(errNorm, -0.2)))
		}
		h *= fac
		if errNorm > 1 && math.Abs(h) <= 1e-14*math.Max(1, math.Abs(t)) { // a rejected step, and the next is nothing
			return steps, rejected, fmt.Errorf("sample: rk45: the step shrank to %g at t = %g: the tolerance cannot be met there", h, t)
		}
		if steps+rejected > 100000 {
			return steps, rejected, fmt.Errorf("sample: rk45 took over 100000 steps (t = %g)", t)
		}
	}
	return steps, rejected, nil
}
