package sample

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ncsn-go/ncsn/sde"
	"github.com/ncsn-go/ncsn/toy"
)

// checkMixture asserts that samples x reproduce the 2-D mixture: mode weights
// within 0.04, each mode's mean within 0.15 and covariance within 25%, and an
// energy-distance permutation test against exact samples at level 0.01.
func checkMixture(t *testing.T, name string, m *toy.Mixture, x []float64) {
	t.Helper()
	w := m.ModeWeights(x)
	for k, wk := range w {
		if math.Abs(wk-m.Weights[k]) > 0.04 {
			t.Errorf("%s: mode %d weight %.3f, want %.3f", name, k, wk, m.Weights[k])
		}
		mean, cov := m.ModeMoments(x, k)
		for i := 0; i < 2; i++ {
			if math.Abs(mean[i]-m.Comps[k].Mean[i]) > 0.15 {
				t.Errorf("%s: mode %d mean %v, want %v", name, k, mean, m.Comps[k].Mean)
				break
			}
		}
		for i := 0; i < 2; i++ {
			for j := 0; j < 2; j++ {
				want := m.Comps[k].Cov.At(i, j)
				if math.Abs(cov[i*2+j]-want) > 0.25*math.Max(want, m.Comps[k].Cov.At(i, i)) {
					t.Errorf("%s: mode %d covariance %v, want %v", name, k, cov, m.Comps[k].Cov.RawSymmetric().Data)
					i, j = 2, 2
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(99, 1))
	n := min(len(x)/2, 600)
	exact := m.Sample(n, r)
	test := toy.PermutationEnergyTest(x[:2*n], exact, 2, 200, 0.01, r)
	if test.Statistic > test.Threshold {
		t.Errorf("%s: energy distance %.4f above the permutation threshold %.4f", name, test.Statistic, test.Threshold)
	}
	t.Logf("%s: weights %.3f, energy %.4f (threshold %.4f)", name, w, test.Statistic, test.Threshold)
}

// veSDE covers the 2-D mixture: σ_max about its largest pairwise distance
// (NCSNv2's rule), σ_min well below the modes' width.
var veSDE = VESDE{SigmaMin: 0.01, SigmaMax: 20}

const nPoints = 2000

func TestReverseSDEMixture(t *testing.T) {
	m := toy.Mixture2D()
	r := rand.New(rand.NewPCG(1, 1))
	x := make([]float64, 2*nPoints)
	veSDE.Prior(x, r)
	evals, err := ReverseSDE(m, x, veSDE, 1000, r)
	if err != nil {
		t.Fatal(err)
	}
	if evals != 1000 {
		t.Fatalf("%d evaluations", evals)
	}
	checkMixture(t, "reverse SDE", m, x)
}

func TestPredictorCorrectorMixture(t *testing.T) {
	m := toy.Mixture2D()
	r := rand.New(rand.NewPCG(2, 2))
	x := make([]float64, 2*nPoints)
	veSDE.Prior(x, r)
	evals, err := PredictorCorrector(m, x, PC{SDE: veSDE, Steps: 300, Corrector: 1, SNR: 0.16, Denoise: true}, r)
	if err != nil {
		t.Fatal(err)
	}
	if evals != 600 {
		t.Fatalf("%d evaluations", evals)
	}
	checkMixture(t, "predictor-corrector", m, x)
}

// TestProbabilityFlowMixture starts the ODE from the exact marginal at σ_max
// (the mixture plus N(0, σ_max² I) noise): being deterministic, the ODE carries
// any mismatch of its starting distribution to the end, and the Gaussian
// prior N(0, σ_max² I) misses the mixture's off-centre mass; from it the
// 0.2 mode ends with about 0.25 (measured: see the log), where the SDE
// samplers' noise corrects the same error.
func TestProbabilityFlowMixture(t *testing.T) {
	m := toy.Mixture2D()
	r := rand.New(rand.NewPCG(3, 3))
	x := m.Sample(nPoints, r)
	for i := range x {
		x[i] += veSDE.SigmaMax * r.NormFloat64()
	}
	x2 := append([]float64(nil), x...)
	fromPrior := make([]float64, 2*nPoints)
	veSDE.Prior(fromPrior, r)
	if _, err := ProbabilityFlowRK45(m, fromPrior, veSDE, 0, 1e-5, 1e-5); err != nil {
		t.Fatal(err)
	}
	t.Logf("from the Gaussian prior instead: weights %.3f", m.ModeWeights(fromPrior))
	st, err := ProbabilityFlowRK45(m, x, veSDE, 0, 1e-5, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("RK45: %+v", st)
	checkMixture(t, "probability flow RK45", m, x)
	st4, err := ProbabilityFlowRK4(m, x2, veSDE, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if st4.Evals != 400 {
		t.Fatalf("RK4: %d evaluations", st4.Evals)
	}
	checkMixture(t, "probability flow RK4", m, x2)
	// The ODE is deterministic: both solvers carry each prior point to the same place.
	var d float64
	for i := range x {
		d = math.Max(d, math.Abs(x[i]-x2[i]))
	}
	if d > 0.05 {
		t.Errorf("RK45 and RK4 end %g apart", d)
	}
}

func TestAnnealedLangevinMixture(t *testing.T) {
	m := toy.Mixture2D()
	r := rand.New(rand.NewPCG(4, 4))
	sig, _ := sde.Geometric(20, 0.01, 20)
	x := make([]float64, 2*nPoints)
	for i := range x {
		x[i] = 16*r.Float64() - 8
	}
	a := Annealed{Sigmas: sig, StepsPerLevel: 100, Eps: 2e-5, Denoise: true}
	if err := AnnealedLangevin(m, x, a, r); err != nil {
		t.Fatal(err)
	}
	checkMixture(t, "annealed Langevin", m, x)
}

// TestLangevinLessons shows why annealing exists (Song & Ermon 2019, §3):
// from uniform starts over both modes, gradient ascent collapses every point
// onto a mode; plain Langevin at one small step cannot cross between the
// separated modes and keeps the starting split (about half and half), not
// the true 0.2/0.8 weights; annealed Langevin (TestAnnealedLangevinMixture)
// gets them right.
func TestLangevinLessons(t *testing.T) {
	m := toy.Mixture2D()
	r := rand.New(rand.NewPCG(5, 5))
	start := make([]float64, 2*nPoints)
	for i := range start {
		start[i] = 16*r.Float64() - 8
	}
	x := append([]float64(nil), start...)
	if err := Langevin(m, x, 0, 0.1, 500, false, r); err != nil {
		t.Fatal(err)
	}
	for k := range m.Comps {
		_, cov := m.ModeMoments(x, k)
		if cov[0] > 1e-6 || cov[3] > 1e-6 {
			t.Errorf("gradient ascent: mode %d still has variance %v", k, cov)
		}
	}
	x = append([]float64(nil), start...)
	if err := Langevin(m, x, 0, 0.1, 1000, true, r); err != nil {
		t.Fatal(err)
	}
	w := m.ModeWeights(x)
	if math.Abs(w[0]-0.5) > 0.05 || math.Abs(w[0]-m.Weights[0]) < 0.2 {
		t.Errorf("plain Langevin: weights %.3f; expected the starting split, far from %.1f", w, m.Weights)
	}
	t.Logf("plain Langevin weights %.3f (true %.1f)", w, m.Weights)
}
