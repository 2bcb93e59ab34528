package sde

import (
	"fmt"
	"math"
)

// V2 is a noise schedule chosen by the rules of NCSNv2 (Song & Ermon 2020,
// "Improved techniques for training score-based generative models").
type V2 struct {
	SigmaMax float64 // technique 1: the largest pairwise distance of the data
	SigmaMin float64
	Gamma    float64 // technique 2: the ratio σ_{i−1}/σ_i
	Levels   int
	T        int // Langevin steps per level
	// EpsNCSN is technique 4's step for NCSN's update x + εσᵢ²/σ_L² s + √(2·…) z;
	// Eps is the same dynamics in this project's form x + (α/2)s + √α z.
	EpsNCSN, Eps float64
	// Stationary is technique 4's f(ε): the ratio of the sampler's variance
	// at the last level to the data's; the closer to 1 the better.
	Stationary float64
}

// Sigmas returns the schedule's geometric levels.
func (v V2) Sigmas() ([]float64, error) { return Geometric(v.SigmaMax, v.SigmaMin, v.Levels) }

// phi is the standard normal CDF.
func phi(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// NCSNv2 applies the rules to data of dimension dim whose largest pairwise
// Euclidean distance is maxDist: σ₁ = maxDist; γ > 1 solves
// Φ(√(2D)(γ−1) + 3γ) − Φ(√(2D)(γ−1) − 3γ) = 1/2; L levels down to sigmaMin;
// and, for T steps per level, the ε that brings f(ε) closest to 1, where
// f(ε) = (1−ε/σ_L²)^{2T}(γ² − 2ε/(σ_L² − σ_L²(1−ε/σ_L²)²)) + 2ε/(σ_L² − σ_L²(1−ε/σ_L²)²).
func NCSNv2(maxDist float64, dim int, sigmaMin float64, T int) (V2, error) {
	if !(maxDist > sigmaMin) || !(sigmaMin > 0) || dim < 1 || T < 1 {
		return V2{}, fmt.Errorf("%w: NCSNv2 rules need σ₁ = %g > σ_L = %g > 0, dimension %d ≥ 1, T = %d ≥ 1", ErrSchedule, maxDist, sigmaMin, dim, T)
	}
	s := math.Sqrt(2 * float64(dim))
	g := func(gamma float64) float64 {
		a := s * (gamma - 1)
		return phi(a+3*gamma) - phi(a-3*gamma) - 0.5
	}
	lo, hi := 1.0, 2.0
	for g(hi) > 0 {
		hi *= 2
	}
	for i := 0; i < 200; i++ { // g decreases from Φ(3)−Φ(−3) − ½ > 0
		mid := (lo + hi) / 2
		if g(mid) > 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	gamma := (lo + hi) / 2
	lf := math.Ceil(math.Log(maxDist/sigmaMin)/math.Log(gamma)) + 1
	if !(lf <= MaxLevels) {
		return V2{}, fmt.Errorf("%w: σ₁/σ_L = %g/%g needs %g levels at γ = %g, more than %d; give a larger σ_L (-sigma-min)", ErrSchedule, maxDist, sigmaMin, lf, gamma, MaxLevels)
	}
	levels := int(lf)
	// Technique 4 in u = ε/σ_L²: f(u) = 2/(2−u) + (1−u)^{2T}(γ² − 2/(2−u)) > 1;
	// minimise it (golden section on log u).
	f := func(u float64) float64 {
		return 2/(2-u) + math.Pow(1-u, 2*float64(T))*(gamma*gamma-2/(2-u))
	}
	a, b := math.Log(1e-9), math.Log(0.999)
	const r = 0.6180339887498949
	for i := 0; i < 200; i++ {
		c, d := b-r*(b-a), a+r*(b-a)
		if f(math.Exp(c)) < f(math.Exp(d)) {
			b = d
		} else {
			a = c
		}
	}
	u := math.Exp((a + b) / 2)
	eps := u * sigmaMin * sigmaMin
	if !(eps > 0) {
		return V2{}, fmt.Errorf("%w: σ_L = %g gives a Langevin step size ε = u·σ_L² that is 0 in float64; give a larger σ_L (-sigma-min)", ErrSchedule, sigmaMin)
	}
	return V2{SigmaMax: maxDist, SigmaMin: sigmaMin, Gamma: gamma, Levels: levels, T: T,
		EpsNCSN: eps, Eps: 2 * eps, Stationary: f(u)}, nil
}
