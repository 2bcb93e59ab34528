package objective

import "math"

// Scorer is a batch score function, as sample.Score.
type Scorer interface {
	Score(x []float64, sigma float64, dst []float64) error
}

// WeightedRelError compares a learned 2-D score field with the true one on an
// n×n grid over [lo, hi]²: Σ p(x)‖s_θ(x) − s(x)‖² / Σ p(x)‖s(x)‖², both
// scores at noise level sigma, weighted by the density p.
func WeightedRelError(learned, truth Scorer, sigma float64, density func(x []float64) float64, lo, hi float64, n int) (float64, error) {
	pts := make([]float64, 0, 2*n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			pts = append(pts, lo+(hi-lo)*float64(i)/float64(n-1), lo+(hi-lo)*float64(j)/float64(n-1))
		}
	}
	a, b := make([]float64, len(pts)), make([]float64, len(pts))
	if err := learned.Score(pts, sigma, a); err != nil {
		return 0, err
	}
	if err := truth.Score(pts, sigma, b); err != nil {
		return 0, err
	}
	var num, den float64
	for p := 0; p < n*n; p++ {
		w := density(pts[2*p : 2*p+2])
		for k := 0; k < 2; k++ {
			e := a[2*p+k] - b[2*p+k]
			num += w * e * e
			den += w * b[2*p+k] * b[2*p+k]
		}
	}
	if den == 0 {
		return math.Inf(1), nil
	}
	return num / den, nil
}
