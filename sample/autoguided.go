package sample

import (
	"fmt"
	"sync"
)

// Autoguided is autoguidance (Karras et al. 2024, "Guiding a diffusion model
// with a bad version of itself"): the score of a model pushed away from a
// weaker model of the same data and noise (fewer training steps, fewer
// parameters),
//
//	s(x, σ) = s_guide + w (s_main − s_guide) = w s_main + (1 − w) s_guide,
//
// the paper's D_guide + w (D_main − D_guide) written in scores (a denoiser
// D = x + σ² s, and the weights sum to 1). Where the weak model errs in the
// same direction as the main one, only more, the difference points towards
// the data: w > 1 sharpens the samples (the paper finds it keeps their
// variety better than classifier guidance; on MNIST here a larger w still
// trades variety for confidence: BENCHMARKS.md). w = 1 is Main alone and
// never evaluates Guide; otherwise each score evaluates both models. Calls
// from several goroutines take turns.
type Autoguided struct {
	Main, Guide Score
	Weight      float64
	mu          sync.Mutex
	buf         []float64
}

// Score writes w s_main(x, σ) + (1 − w) s_guide(x, σ) into dst.
func (a *Autoguided) Score(x []float64, sigma float64, dst []float64) error {
	if len(dst) != len(x) {
		return fmt.Errorf("%w: autoguided score of %d values into %d", ErrConfig, len(x), len(dst))
	}
	if nilScore(a.Main) || a.Weight != 1 && nilScore(a.Guide) {
		return fmt.Errorf("%w: autoguided score without its main or guiding model", ErrConfig)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.Main.Score(x, sigma, dst); err != nil {
		return err
	}
	if a.Weight == 1 {
		return nil
	}
	if cap(a.buf) < len(x) {
		a.buf = make([]float64, len(x))
	}
	g := a.buf[:len(x)]
	if err := a.Guide.Score(x, sigma, g); err != nil {
		return err
	}
	w := a.Weight
	for i, v := range g {
		dst[i] = w*dst[i] + (1-w)*v
	}
	return nil
}
