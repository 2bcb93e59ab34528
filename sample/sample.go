// Package sample draws samples from a score function: Langevin dynamics and
// annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1), and the
// samplers of the continuous-time processes of package sde (Song et al.
// 2021): the reverse SDE, predictor–corrector and the probability-flow ODE
// for any process, DDPM's ancestral sampling and DDIM for VP, and the Heun
// sampler of Karras et al. (2022, EDM), deterministic or stochastic, for VE.
//
// Scores combine before a sampler sees them: classifier guidance (Guided)
// and autoguidance (Autoguided, Karras et al. 2024); constraints steer a
// sampler for inpainting and colourisation (constraint.go). The
// probability-flow ODE also gives likelihoods in bits/dim (likelihood.go),
// and grid.go lays samples out as a PNG grid.
//
// The samplers see only the Score interface, never the network, so they are
// tested on distributions whose score is known exactly.
package sample

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/ncsn-go/ncsn/sde"
)

// ErrConfig is wrapped by every sampler configuration error.
var ErrConfig = errors.New("sample: bad config")

// ErrDiverged is returned where a sampler's result holds values that are not
// finite (a diverged or damaged model, a step too large): every sampler checks
// its result, and the ODE solver of ProbabilityFlowRK45 and LogLikelihood
// stops where its error estimate is not a number. x then holds what was
// computed.
var ErrDiverged = errors.New("sample: diverged")

// finite is nil, or ErrDiverged for a sampler whose result x holds values
// that are not finite.
func finite(name string, x []float64) error {
	bad := 0
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%w: %s: %d of %d sample values are NaN or infinite", ErrDiverged, name, bad, len(x))
	}
	return nil
}

// Score is a score function s(x, σ) ≈ ∇ₓ log p_σ(x), where p_σ is the law of
// the noised data whose noise scale is σ: the data density convolved with
// N(0, σ²I) for NCSN and VE; for a process with marginal N(m(t)x₀, s(t)²I),
// the law of m(t)x₀ + s(t)z at the time t where s(t) = σ. x holds a batch of
// points of one dimension back to back; the scores go to dst, of the same
// length.
type Score interface {
	Score(x []float64, sigma float64, dst []float64) error
}

// ScoreFunc adapts a function to the Score interface.
type ScoreFunc func(x []float64, sigma float64, dst []float64) error

// Score calls f.
func (f ScoreFunc) Score(x []float64, sigma float64, dst []float64) error { return f(x, sigma, dst) }

// Langevin runs T steps of x ← x + τ s(x, σ) + √(2τ) z in place, z ~ N(0, I).
// With noise false it is plain gradient ascent on log p.
func Langevin(s Score, x []float64, sigma, tau float64, steps int, noise bool, r *rand.Rand) error {
	if !(tau > 0) || math.IsInf(tau, 0) || steps < 0 {
		return fmt.Errorf("%w: langevin: step size %g, %d steps", ErrConfig, tau, steps)
	}
	if len(x) == 0 { // as every other sampler (it returned nil)
		return fmt.Errorf("%w: langevin: no values to sample", ErrConfig)
	}
	if nilScore(s) {
		return fmt.Errorf("%w: langevin: no score function", ErrConfig)
	}
	if noise && r == nil {
		return fmt.Errorf("%w: langevin: no random generator", ErrConfig)
	}
	g := make([]float64, len(x))
	sd := math.Sqrt(2 * tau)
	for t := 0; t < steps; t++ {
		if err := s.Score(x, sigma, g); err != nil {
			return fmt.Errorf("sample: score at σ = %g: %w", sigma, err)
		}
		for i := range x {
			x[i] += tau * g[i]
			if noise {
				x[i] += sd * r.NormFloat64()
			}
		}
	}
	return finite("langevin", x)
}

// Annealed configures annealed Langevin dynamics.
type Annealed struct {
	Sigmas        []float64 // σ₁ > … > σ_L
	StepsPerLevel int       // T
	// Eps is ε: the step at level i is αᵢ = ε σᵢ²/σ_L².
	Eps float64
	// Denoise adds the final step x + σ_L² s(x, σ_L), which removes the noise
	// of the last level (Tweedie's formula).
	Denoise bool
	// Progress, when set, is called after every score evaluation.
	Progress func(done, total int)
	// AfterLevel, when set, is called after each level with the current x.
	AfterLevel func(level int, x []float64)
	// Constraint, when set, ties part of each sample to known values
	// (inpainting, colourisation): imposed at σᵢ after every Langevin step,
	// exactly at the end.
	Constraint Constraint
}

// DefaultEps is ε for the update x ← x + (α/2)s + √α z. NCSN's code takes
// step_lr = 2e-5 in the form x + α s + √(2α) z; the same dynamics here need
// twice that.
const DefaultEps = 4e-5

// Validate reports what is wrong with a, if anything.
func (a Annealed) Validate() error {
	if len(a.Sigmas) == 0 {
		return fmt.Errorf("%w: ald: no noise levels", ErrConfig)
	}
	for i, s := range a.Sigmas {
		if !(s > 0) {
			return fmt.Errorf("%w: ald: σ_%d = %g", ErrConfig, i+1, s)
		}
		if i > 0 && s >= a.Sigmas[i-1] {
			return fmt.Errorf("%w: ald: σ must decrease, σ_%d = %g after %g", ErrConfig, i+1, s, a.Sigmas[i-1])
		}
	}
	if a.StepsPerLevel < 1 {
		return fmt.Errorf("%w: ald: %d steps per level", ErrConfig, a.StepsPerLevel)
	}
	if !(a.Eps > 0) || math.IsInf(a.Eps, 0) {
		return fmt.Errorf("%w: ald: ε = %g must be positive and finite", ErrConfig, a.Eps)
	}
	return nil
}

// StepSize is level i's step αᵢ = ε σᵢ²/σ_L², for 0 ≤ i < len(Sigmas) of
// an Annealed that Validate passes.
func (a Annealed) StepSize(i int) float64 {
	return sde.AnnealedStepSize(a.Eps, a.Sigmas[i], a.Sigmas[len(a.Sigmas)-1])
}

// AnnealedLangevin runs NCSN's Algorithm 1 on x in place: for each σᵢ,
// αᵢ = ε σᵢ²/σ_L², and T steps of x ← x + (αᵢ/2) s(x, σᵢ) + √αᵢ z; then,
// if a.Denoise, x ← x + σ_L² s(x, σ_L).
func AnnealedLangevin(s Score, x []float64, a Annealed, r *rand.Rand) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if err := checkConstraint("ald", a.Constraint, 0, len(x)); err != nil {
		return err
	}
	if len(x) == 0 { // as every other sampler (it returned nil)
		return fmt.Errorf("%w: ald: no values to sample", ErrConfig)
	}
	if nilScore(s) {
		return fmt.Errorf("%w: ald: no score function", ErrConfig)
	}
	if r == nil {
		return fmt.Errorf("%w: ald: no random generator", ErrConfig)
	}
	g := make([]float64, len(x))
	sL := a.Sigmas[len(a.Sigmas)-1]
	total := len(a.Sigmas) * a.StepsPerLevel
	if a.Denoise {
		total++
	}
	done := 0
	for i, sigma := range a.Sigmas {
		alpha := a.StepSize(i)
		sd := math.Sqrt(alpha)
		for t := 0; t < a.StepsPerLevel; t++ {
			if err := s.Score(x, sigma, g); err != nil {
				return fmt.Errorf("sample: score at σ = %g: %w", sigma, err)
			}
			for j := range x {
				x[j] += alpha/2*g[j] + sd*r.NormFloat64()
			}
			if a.Constraint != nil {
				a.Constraint.Impose(x, 1, sigma, r)
			}
			done++
			if a.Progress != nil {
				a.Progress(done, total)
			}
		}
		if a.AfterLevel != nil {
			a.AfterLevel(i, x)
		}
	}
	if a.Denoise {
		if err := s.Score(x, sL, g); err != nil {
			return fmt.Errorf("sample: score at σ = %g (denoising): %w", sL, err)
		}
		for j := range x {
			x[j] += sL * sL * g[j]
		}
		done++
		if a.Progress != nil {
			a.Progress(done, total)
		}
	}
	if a.Constraint != nil {
		a.Constraint.Exact(x)
	}
	return finite("ald", x)
}
