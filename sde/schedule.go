package sde

import (
	"errors"
	"fmt"
	"math"
)

// ErrSchedule is wrapped by every schedule error.
var ErrSchedule = errors.New("sde: bad schedule")

// MaxLevels is the most noise levels a ladder may have.
const MaxLevels = 10000

// Geometric returns L levels from sigmaMax down to sigmaMin with a constant
// ratio, as NCSN uses (σ₁ = sigmaMax, σ_L = sigmaMin).
func Geometric(sigmaMax, sigmaMin float64, levels int) ([]float64, error) {
	switch {
	case !(sigmaMin > 0) || !(sigmaMax > sigmaMin) || math.IsInf(sigmaMax, 0):
		return nil, fmt.Errorf("%w: need σ₁ > σ_L > 0, got σ₁=%g σ_L=%g", ErrSchedule, sigmaMax, sigmaMin)
	case levels < 2:
		return nil, fmt.Errorf("%w: need at least 2 levels, got %d", ErrSchedule, levels)
	}
	s := make([]float64, levels)
	lmax, lmin := math.Log(sigmaMax), math.Log(sigmaMin)
	for i := range s {
		s[i] = math.Exp(lmax + (lmin-lmax)*float64(i)/float64(levels-1))
	}
	s[0], s[levels-1] = sigmaMax, sigmaMin
	return s, nil
}

// KarrasRho is the ρ of KarrasSigmas that Karras et al. (2022) found best
// for images: it spends more of the grid's steps at the small σ.
const KarrasRho = 7

// KarrasSigmas returns the noise-level grid of Karras et al. (2022, EDM,
// eq. 5) for n ≥ 1 steps: σ_i = (σ_max^{1/ρ} + i/(n−1)·(σ_min^{1/ρ} −
// σ_max^{1/ρ}))^ρ for i = 0 … n−1 (σ_0 = σ_max, σ_{n−1} = σ_min; with n = 1
// only σ_max), then σ_n = 0: n+1 values in all, decreasing.
func KarrasSigmas(sigmaMax, sigmaMin float64, n int, rho float64) ([]float64, error) {
	switch {
	case !(sigmaMin > 0) || !(sigmaMax > sigmaMin) || math.IsInf(sigmaMax, 0):
		return nil, fmt.Errorf("%w: need σ_max > σ_min > 0, got σ_max=%g σ_min=%g", ErrSchedule, sigmaMax, sigmaMin)
	case n < 1:
		return nil, fmt.Errorf("%w: need at least 1 step, got %d", ErrSchedule, n)
	case !(rho > 0) || math.IsInf(rho, 0):
		return nil, fmt.Errorf("%w: ρ %g must be positive and finite", ErrSchedule, rho)
	}
	s := make([]float64, n+1)
	a, b := math.Pow(sigmaMax, 1/rho), math.Pow(sigmaMin, 1/rho)
	for i := 0; i < n; i++ {
		f := 0.0
		if n > 1 {
			f = float64(i) / float64(n-1)
		}
		s[i] = math.Pow(a+f*(b-a), rho)
	}
	s[0] = sigmaMax
	if n > 1 {
		s[n-1] = sigmaMin
	}
	return s, nil
}

// EDMChurn is the noise level the stochastic sampler of Karras et al. (2022,
// Algorithm 2) raises σ to before a step: σ̂ = σ·(1 + γ), γ = min(churn/n,
// √2 − 1), for a grid of n steps (churn = 0: σ itself).
func EDMChurn(sigma, churn float64, n int) float64 {
	if churn <= 0 || n < 1 {
		return sigma
	}
	return sigma * (1 + min(churn/float64(n), math.Sqrt2-1))
}
