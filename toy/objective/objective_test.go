package objective

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ncsn-go/ncsn/toy"
)

// TestObjectivesLearnTheScore trains each objective on samples of the 2-D
// mixture and bounds the density-weighted relative error of the learned
// field against the true score of the distribution the objective targets:
// the data itself for ISM and SSM, the data smoothed by N(0, σ²I) for DSM
// and ESM (whose kernel of width h smooths the same way), and for NCSN the
// noised data at a level inside its range.
func TestObjectivesLearnTheScore(t *testing.T) {
	m := toy.Mixture2D()
	data := m.Sample(4000, rand.New(rand.NewPCG(1, 2)))
	for _, tc := range []struct {
		kind  Kind
		sigma float64 // where the truth is evaluated
		bound float64
	}{
		{DSM, 0.3, 0.07},
		{NCSN, 0.3, 0.1},
		{ESM, 0.3, 0.05},
		{ISM, 0, 0.04},
		{SSM, 0, 0.06},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			c := Defaults(tc.kind)
			model, err := Train(c, data, 2)
			if err != nil {
				t.Fatal(err)
			}
			density := func(x []float64) float64 { return math.Exp(m.LogDensity(x, tc.sigma)) }
			e, err := WeightedRelError(model, m, tc.sigma, density, -9, 9, 61)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: weighted relative error %.4f (bound %.2f), loss %.3f → %.3f", tc.kind, e, tc.bound, model.Losses[0], model.Losses[len(model.Losses)-1])
			if !(e < tc.bound) {
				t.Errorf("%s: weighted relative error %.4f above %.2f", tc.kind, e, tc.bound)
			}
		})
	}
}
