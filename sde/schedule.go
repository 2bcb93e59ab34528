package sde

import (
	"errors"
	"fmt"
	"math"
)

// ErrSchedule is wrapped by every schedule error.
var ErrSchedule = errors.New("sde: bad schedule")

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
