package sample

import (
	"fmt"
	"sync"
)

// Guided is a score steered towards a condition y: Base's score plus Weight
// times Guide's, s(x, σ) + w ∇ₓ log p(y | x, σ) — classifier guidance, by
// Bayes' rule ∇ₓ log p(x | y) = ∇ₓ log p(x) + ∇ₓ log p(y | x) at w = 1;
// w > 1 sharpens the condition. Guide is any function with a score's
// signature; it returns ∇ₓ log p(y | x, σ) for the noised x. Calls from
// several goroutines take turns.
type Guided struct {
	Base, Guide Score
	Weight      float64
	mu          sync.Mutex
	buf         []float64
}

// Score writes s(x, σ) + w g(x, σ) into dst.
func (g *Guided) Score(x []float64, sigma float64, dst []float64) error {
	if len(dst) != len(x) {
		return fmt.Errorf("%w: guided score of %d values into %d", ErrConfig, len(x), len(dst))
	}
	if nilScore(g.Base) || g.Weight != 0 && nilScore(g.Guide) {
		return fmt.Errorf("%w: guided score without its base score or guide", ErrConfig)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.Base.Score(x, sigma, dst); err != nil {
		return err
	}
	if g.Weight == 0 {
		return nil
	}
	if cap(g.buf) < len(x) {
		g.buf = make([]float64, len(x))
	}
	b := g.buf[:len(x)]
	if err := g.Guide.Score(x, sigma, b); err != nil {
		return err
	}
	for i, v := range b {
		dst[i] += g.Weight * v
	}
	return nil
}
