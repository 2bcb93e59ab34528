package sample

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/ncsn-go/ncsn/sde"
)

// Heun is the second-order sampler of Karras et al. (2022, "Elucidating the
// design space of diffusion-based generative models", Algorithms 1 and 2) for
// the VE process: it integrates the probability-flow ODE written in σ,
//
//	dx/dσ = −σ·s(x, σ)   (= (x − D(x; σ))/σ, D the denoiser x + σ²·s),
//
// by Heun's method on the grid sde.KarrasSigmas(σ_max, σ_min, N, ρ = 7), from
// x ~ N(0, σ_max² I) (Prior) at the process's σ_max down to its smallest σ,
// σ(ε); the last step is an Euler step to σ = 0, which returns the denoiser's
// output (so the final denoising is built in and Denoise changes nothing).
// N = c.Steps steps cost 2N − 1 score evaluations.
//
// With c.Churn > 0 it is EDM's stochastic sampler: before each step whose
// σ_i lies in [ChurnMin, ChurnMax], σ_i is raised to σ̂ = sde.EDMChurn(σ_i,
// Churn, N) by adding noise of standard deviation ChurnNoise·√(σ̂² − σ_i²),
// and the step goes from σ̂. A constraint (inpainting,
// colourisation) needs that noise: the deterministic sampler refuses one.
func Heun(s Score, x []float64, c Continuous, r *rand.Rand) (int, error) {
	const name = "heun"
	c, err := c.check(name, s, x, true, c.Churn > 0, r)
	if err != nil {
		return 0, err
	}
	if !(c.Churn >= 0) || math.IsInf(c.Churn, 0) {
		return 0, fmt.Errorf("%w: %s: churn %g (need ≥ 0)", ErrConfig, name, c.Churn)
	}
	if c.ChurnMax == 0 {
		c.ChurnMax = math.Inf(1)
	}
	if !(c.ChurnMin >= 0 && c.ChurnMax >= c.ChurnMin) {
		return 0, fmt.Errorf("%w: %s: churn's σ range [%g, %g]", ErrConfig, name, c.ChurnMin, c.ChurnMax)
	}
	if c.ChurnNoise == 0 {
		c.ChurnNoise = 1
	}
	if !(c.ChurnNoise > 0) || math.IsInf(c.ChurnNoise, 0) {
		return 0, fmt.Errorf("%w: %s: churn noise scale %g (need > 0)", ErrConfig, name, c.ChurnNoise)
	}
	if _, ok := c.Process.(*sde.VE); !ok {
		return 0, fmt.Errorf("%w: %s integrates the VE process in σ; this model's process is %s (use em, pc or ode)", ErrConfig, name, c.Process.Name())
	}
	_, lo := c.Process.Marginal(sde.SamplingEps(c.Process))
	sig, err := sde.KarrasSigmas(c.Process.PriorStd(), lo, c.Steps, sde.KarrasRho)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrConfig, name, err)
	}
	if c.Churn > 0 && !slices.ContainsFunc(sig[:c.Steps], func(s float64) bool { return s >= c.ChurnMin && s <= c.ChurnMax }) {
		// Otherwise the deterministic sampler, under the stochastic one's name.
		return 0, fmt.Errorf("%w: %s: no step's σ (%.4g down to %.4g) lies in the churn's range [%g, %g]: the churn would change nothing", ErrConfig, name, sig[0], sig[c.Steps-1], c.ChurnMin, c.ChurnMax)
	}
	sc := newScorer(s, c)
	n := c.Steps
	d := make([]float64, len(x))  // slope at σ̂: −σ̂·s(x̂, σ̂)
	d2 := make([]float64, len(x)) // slope at σ_{i+1}
	x1 := make([]float64, len(x)) // the Euler step's end
	for i := 0; i < n; i++ {
		cur, next := sig[i], sig[i+1]
		hat := cur
		if cur >= c.ChurnMin && cur <= c.ChurnMax {
			hat = sde.EDMChurn(cur, c.Churn, n)
		}
		if hat > cur {
			sd := c.ChurnNoise * math.Sqrt(hat*hat-cur*cur)
			for j := range x {
				x[j] += sd * r.NormFloat64()
			}
		}
		if err := sc.atSigma(x, hat, d); err != nil {
			return sc.evals, err
		}
		h := next - hat
		for j := range x {
			d[j] *= -hat
			x1[j] = x[j] + h*d[j]
		}
		if next > 0 {
			if err := sc.atSigma(x1, next, d2); err != nil {
				return sc.evals, err
			}
			for j := range x {
				x1[j] = x[j] + h*0.5*(d[j]-next*d2[j])
			}
		}
		copy(x, x1)
		if c.Constraint != nil {
			if next == 0 {
				c.Constraint.Exact(x)
			} else {
				c.Constraint.Impose(x, 1, next, r)
			}
		}
		if c.AfterStep != nil {
			c.AfterStep(i, n, x)
		}
	}
	return sc.evals, finite(name, x)
}
