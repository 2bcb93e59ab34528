package sample

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// VESDE is the variance-exploding SDE dx = g(t) dw with noise scale
// σ(t) = σ_min (σ_max/σ_min)^t on t ∈ [0, 1], so g(t)² = d[σ²]/dt =
// 2σ(t)² ln(σ_max/σ_min) (Song et al. 2021). Its marginal at t is the data
// convolved with N(0, (σ(t)² − σ(0)²) I) ≈ N(0, σ(t)² I).
type VESDE struct {
	SigmaMin, SigmaMax float64
}

// Sigma is σ(t).
func (v VESDE) Sigma(t float64) float64 {
	return v.SigmaMin * math.Pow(v.SigmaMax/v.SigmaMin, t)
}

// G2 is g(t)².
func (v VESDE) G2(t float64) float64 {
	s := v.Sigma(t)
	return 2 * s * s * math.Log(v.SigmaMax/v.SigmaMin)
}

func (v VESDE) validate() error {
	if !(v.SigmaMin > 0) || !(v.SigmaMax > v.SigmaMin) {
		return fmt.Errorf("%w: VE SDE needs σ_max > σ_min > 0, got %g, %g", ErrConfig, v.SigmaMax, v.SigmaMin)
	}
	return nil
}

// Prior fills x with draws from the SDE's prior N(0, σ_max² I).
func (v VESDE) Prior(x []float64, r *rand.Rand) {
	for i := range x {
		x[i] = v.SigmaMax * r.NormFloat64()
	}
}

// ReverseSDE integrates the reverse-time SDE dx = −g² s(x, σ(t)) dt + g dw̄
// from t = 1 down to t = 0 with `steps` Euler–Maruyama steps, in place; x
// should start from the prior. It returns the number of score evaluations.
func ReverseSDE(s Score, x []float64, v VESDE, steps int, r *rand.Rand) (int, error) {
	if err := v.validate(); err != nil {
		return 0, err
	}
	if steps < 1 {
		return 0, fmt.Errorf("%w: %d steps", ErrConfig, steps)
	}
	g := make([]float64, len(x))
	dt := 1 / float64(steps)
	for i := 0; i < steps; i++ {
		t := 1 - float64(i)*dt
		if err := s.Score(x, v.Sigma(t), g); err != nil {
			return i, err
		}
		g2 := v.G2(t)
		sd := math.Sqrt(g2 * dt)
		for j := range x {
			x[j] += g2*g[j]*dt + sd*r.NormFloat64()
		}
	}
	return steps, nil
}

// PC configures the predictor–corrector sampler of Song et al. (2021): on the
// discrete VE chain of N geometric levels from σ_max to σ_min, each step is
// Corrector Langevin steps at the current level followed by one
// reverse-diffusion predictor step to the next level.
type PC struct {
	SDE       VESDE
	Steps     int     // N
	Corrector int     // Langevin steps per level (0: predictor only)
	SNR       float64 // signal-to-noise ratio r of the corrector
	Denoise   bool    // return the predictor's mean at the last step
}

// PredictorCorrector runs the PC sampler in place on x (from the prior) and
// returns the number of score evaluations.
func PredictorCorrector(s Score, x []float64, pc PC, r *rand.Rand) (int, error) {
	if err := pc.SDE.validate(); err != nil {
		return 0, err
	}
	if pc.Steps < 1 || pc.Corrector < 0 || (pc.Corrector > 0 && !(pc.SNR > 0)) {
		return 0, fmt.Errorf("%w: PC with %d steps, %d corrector steps, snr %g", ErrConfig, pc.Steps, pc.Corrector, pc.SNR)
	}
	g := make([]float64, len(x))
	z := make([]float64, len(x))
	evals := 0
	sigma := func(i int) float64 { // level i = 0 … N−1, from σ_max down to σ_min
		if pc.Steps == 1 {
			return pc.SDE.SigmaMax
		}
		return pc.SDE.Sigma(1 - float64(i)/float64(pc.Steps-1))
	}
	for i := 0; i < pc.Steps; i++ {
		si := sigma(i)
		for c := 0; c < pc.Corrector; c++ {
			if err := s.Score(x, si, g); err != nil {
				return evals, err
			}
			evals++
			var gn, zn float64
			for j := range z {
				z[j] = r.NormFloat64()
				gn += g[j] * g[j]
				zn += z[j] * z[j]
			}
			// Step size from the target signal-to-noise ratio ‖εs‖/‖√(2ε)z‖ = r.
			eps := 2 * pc.SNR * pc.SNR * zn / gn
			sd := math.Sqrt(2 * eps)
			for j := range x {
				x[j] += eps*g[j] + sd*z[j]
			}
		}
		// Reverse diffusion from σ_i to σ_{i+1} (0 after the last level).
		next := 0.0
		if i+1 < pc.Steps {
			next = sigma(i + 1)
		}
		if err := s.Score(x, si, g); err != nil {
			return evals, err
		}
		evals++
		g2 := si*si - next*next
		sd := math.Sqrt(g2)
		last := i == pc.Steps-1
		for j := range x {
			x[j] += g2 * g[j]
			if !(last && pc.Denoise) {
				x[j] += sd * r.NormFloat64()
			}
		}
	}
	return evals, nil
}
