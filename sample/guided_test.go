package sample

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGuidedIsBayes: for a two-component mixture ½N(−μ, s²) + ½N(μ, s²)
// noised at σ, the mixture's score plus ∇ₓ log p(+ | x, σ) is exactly the
// score of the + component (w = 1, Bayes' rule), and annealed Langevin
// dynamics on the guided score draws from that component only.
func TestGuidedIsBayes(t *testing.T) {
	const mu, s0 = 2.0, 0.5
	post := func(x, v float64) float64 { return 1 / (1 + math.Exp(-2*mu*x/v)) } // p(+ | x)
	mixture := ScoreFunc(func(x []float64, sigma float64, dst []float64) error {
		v := s0*s0 + sigma*sigma
		for i, xi := range x {
			dst[i] = (-xi + mu*(2*post(xi, v)-1)) / v
		}
		return nil
	})
	classPlus := ScoreFunc(func(x []float64, sigma float64, dst []float64) error {
		v := s0*s0 + sigma*sigma
		for i, xi := range x {
			dst[i] = 2 * mu / v * (1 - post(xi, v))
		}
		return nil
	})
	g := &Guided{Base: mixture, Guide: classPlus, Weight: 1}
	x := []float64{-3, -0.5, 0, 0.7, 4}
	got := make([]float64, len(x))
	for _, sigma := range []float64{0.01, 0.3, 2} {
		if err := g.Score(x, sigma, got); err != nil {
			t.Fatal(err)
		}
		v := s0*s0 + sigma*sigma
		for i, xi := range x {
			if want := (mu - xi) / v; math.Abs(got[i]-want) > 1e-12*(1+math.Abs(want)) {
				t.Fatalf("σ %g, x %g: guided score %g, the + component's %g", sigma, xi, got[i], want)
			}
		}
	}
	// Weight 0 is the base score.
	g0 := &Guided{Base: mixture, Guide: classPlus}
	base := make([]float64, len(x))
	mixture(x, 0.3, base)
	g0.Score(x, 0.3, got)
	for i := range x {
		if got[i] != base[i] {
			t.Fatalf("weight 0 changed the score at %g", x[i])
		}
	}
	// Sampling: every draw lands in the + component; its mean is μ.
	r := rand.New(rand.NewPCG(1, 2))
	const n = 2000
	pts := make([]float64, n)
	for i := range pts {
		pts[i] = 3 * r.NormFloat64()
	}
	sigmas := []float64{3, 1.5, 0.7, 0.3, 0.1, 0.03}
	if err := AnnealedLangevin(g, pts, Annealed{Sigmas: sigmas, StepsPerLevel: 100, Eps: 2e-4}, r); err != nil {
		t.Fatal(err)
	}
	var mean float64
	neg := 0
	for _, p := range pts {
		mean += p / n
		if p < 0 {
			neg++
		}
	}
	if neg > 0 || math.Abs(mean-mu) > 0.05 {
		t.Fatalf("guided draws: %d of %d negative, mean %.3f (want 0 and %g)", neg, n, mean, mu)
	}
}
