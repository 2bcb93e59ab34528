package sample

import (
	"errors"
	"math"
	"testing"
)

// TestAutoguided: the scores of two Gaussian models, N(0, 1) (main) and the
// broader N(0, 2) (the weak guide), combine as w s_main + (1 − w) s_guide at
// every σ; as a denoiser D = x + σ²s the combination is the paper's
// D_guide + w (D_main − D_guide); w = 1 never calls the guide; the guide's
// error comes back.
func TestAutoguided(t *testing.T) {
	gauss := func(v float64) ScoreFunc {
		return func(x []float64, sigma float64, dst []float64) error {
			for i := range x {
				dst[i] = -x[i] / (v + sigma*sigma)
			}
			return nil
		}
	}
	x := []float64{-2, -0.5, 0, 0.7, 3}
	for _, w := range []float64{1.5, 2, 3} {
		a := &Autoguided{Main: gauss(1), Guide: gauss(2), Weight: w}
		for _, sigma := range []float64{0.01, 0.3, 2} {
			got := make([]float64, len(x))
			if err := a.Score(x, sigma, got); err != nil {
				t.Fatal(err)
			}
			s2 := sigma * sigma
			for i, xi := range x {
				dMain, dGuide := xi-s2*xi/(1+s2), xi-s2*xi/(2+s2)
				want := (dGuide + w*(dMain-dGuide) - xi) / s2
				if math.Abs(got[i]-want) > 1e-9*(1+math.Abs(want)) {
					t.Fatalf("w %g, σ %g, x %g: %g, want %g", w, sigma, xi, got[i], want)
				}
			}
		}
	}
	errGuide := errors.New("guide failed")
	failing := ScoreFunc(func([]float64, float64, []float64) error { return errGuide })
	one := &Autoguided{Main: gauss(1), Guide: failing, Weight: 1}
	dst := make([]float64, len(x))
	if err := one.Score(x, 0.5, dst); err != nil || dst[0] != 2/1.25 {
		t.Fatalf("w = 1: %v, %g (want main's %g without the guide)", err, dst[0], 2/1.25)
	}
	two := &Autoguided{Main: gauss(1), Guide: failing, Weight: 2}
	if err := two.Score(x, 0.5, dst); !errors.Is(err, errGuide) {
		t.Fatalf("the guide's error: %v", err)
	}
}
