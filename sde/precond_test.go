package sde

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestEDMPreconditioning checks EDM's coefficients against their defining
// properties: the denoiser's best output is recovered from the score's
// form, and F's target has unit variance at every σ when the data has
// second moment σ_d²: (1 − c_skip)²σ_d² + c_skip²σ² = c_out².
func TestEDMPreconditioning(t *testing.T) {
	const sd = 0.335
	for _, sigma := range []float64{0.01, 0.1, 0.335, 1, 25} {
		e := EDMPreconditioning(sigma, sd)
		if d := math.Abs(e.Skip - sd*sd/(sigma*sigma+sd*sd)); d > 1e-15 {
			t.Errorf("σ=%g: c_skip off by %g", sigma, d)
		}
		if d := e.SkipScale - (e.Skip-1)/(sigma*sigma); math.Abs(d) > 1e-9*math.Abs(e.SkipScale) {
			t.Errorf("σ=%g: SkipScale %g, (c_skip−1)/σ² %g", sigma, e.SkipScale, (e.Skip-1)/(sigma*sigma))
		}
		if d := (1-e.Skip)*(1-e.Skip)*sd*sd + e.Skip*e.Skip*sigma*sigma - e.Out*e.Out; math.Abs(d) > 1e-12 {
			t.Errorf("σ=%g: (1−c_skip)²σ_d² + c_skip²σ² − c_out² = %g, want 0", sigma, d)
		}
		// F's target (x − c_skip x̃)/c_out, x̃ = x + σz, over x = ±σ_d and
		// z ~ N(0,1): unit variance.
		r := rand.New(rand.NewPCG(1, 2))
		var m2 float64
		const n = 200000
		for i := 0; i < n; i++ {
			x := sd
			if r.IntN(2) == 0 {
				x = -sd
			}
			xt := x + sigma*r.NormFloat64()
			tg := (x - e.Skip*xt) / e.Out
			m2 += tg * tg
		}
		if v := m2 / n; math.Abs(v-1) > 0.02 {
			t.Errorf("σ=%g: target's second moment %.4f, want 1", sigma, v)
		}
		// With F at its target the score is the DSM target −z/σ.
		x, z := 0.7, -1.3
		xt := x + sigma*z
		f := (x - e.Skip*xt) / e.Out
		s := e.SkipScale*xt + e.OutScale*f
		if d := math.Abs(s + z/sigma); d > 1e-9*math.Abs(z/sigma) {
			t.Errorf("σ=%g: score %g at F's target, want −z/σ = %g", sigma, s, -z/sigma)
		}
		// The scaled loss is ½‖F − target‖².
		fw := f + 0.25
		sw := e.SkipScale*xt + e.OutScale*fw
		lossDSM := 0.5 * math.Pow(e.LossScale*(sigma*sw+z), 2)
		if d := math.Abs(lossDSM - 0.5*0.25*0.25); d > 1e-9 {
			t.Errorf("σ=%g: scaled DSM loss %g, want ½(F − target)² = %g", sigma, lossDSM, 0.5*0.25*0.25)
		}
	}
}

// TestEDMTrainingSigma: the median of EDM's training σ is e^{P_mean} at
// σ_data = 0.5 and scales with σ_data; P_std widens it in ln σ.
func TestEDMTrainingSigma(t *testing.T) {
	if got, want := EDMTrainingSigma(0, 0.5, EDMPMean, EDMPStd), math.Exp(-1.2); math.Abs(got-want) > 1e-15 {
		t.Errorf("median at σ_data 0.5: %g, want %g", got, want)
	}
	if got, want := EDMTrainingSigma(1, 0.25, EDMPMean, EDMPStd), 0.5*math.Exp(0); math.Abs(got-want) > 1e-15 {
		t.Errorf("z = 1 at σ_data 0.25: %g, want %g", got, want)
	}
	if got, want := EDMTrainingSigma(0, 0.5, -0.8, 1.2), math.Exp(-0.8); math.Abs(got-want) > 1e-15 {
		t.Errorf("median at P_mean −0.8: %g, want %g", got, want)
	}
	if got, want := EDMTrainingSigma(-1, 1, 0.5, 2), 2*math.Exp(-1.5); math.Abs(got-want) > 1e-15 {
		t.Errorf("z = −1 at P_mean 0.5, P_std 2, σ_data 1: %g, want %g", got, want)
	}
}
