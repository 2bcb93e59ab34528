package sample

import (
	"fmt"
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

// Processes of the continuous samplers' tests. VE covers the 2-D mixture:
// σ_max about its largest pairwise distance (NCSNv2's rule), σ_min well below
// the modes' width; VP and sub-VP are score_sde's (β from 0.1 to 20).
var (
	veSpec    = sde.Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 20}
	vpSpec    = sde.Spec{Name: "vp", BetaMin: 0.1, BetaMax: 20}
	subVPSpec = sde.Spec{Name: "subvp", BetaMin: 0.1, BetaMax: 20}
)

func newProcess(t testing.TB, s sde.Spec) sde.Process {
	t.Helper()
	p, err := sde.New(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const nPoints = 2000

// sampler is one of the continuous samplers behind one signature.
type sampler struct {
	name  string
	noisy bool // takes a random generator
	run   func(s Score, x []float64, c Continuous, r *rand.Rand) (int, error)
}

var (
	em        = sampler{"euler-maruyama", true, EulerMaruyama}
	pc        = sampler{"predictor-corrector", true, PredictorCorrector}
	ancestral = sampler{"ancestral", true, Ancestral}
	ddim      = sampler{"ddim", false, func(s Score, x []float64, c Continuous, _ *rand.Rand) (int, error) { return DDIM(s, x, c) }}
	rk45      = sampler{"rk45", false, func(s Score, x []float64, c Continuous, _ *rand.Rand) (int, error) {
		st, err := ProbabilityFlowRK45(s, x, c)
		return st.Evals, err
	}}
	rk4 = sampler{"rk4", false, func(s Score, x []float64, c Continuous, _ *rand.Rand) (int, error) {
		st, err := ProbabilityFlowRK4(s, x, c)
		return st.Evals, err
	}}
	samplers = []sampler{em, pc, ancestral, ddim, rk45, rk4}
)

// marginal draws n points of p_t at t = 1, m(1)·X + s(1)·Z, exactly.
func marginal(m *toy.Mixture, p sde.Process, n int, r *rand.Rand) []float64 {
	mean, std := p.Marginal(1)
	x := m.Sample(n, r)
	for i := range x {
		x[i] = mean*x[i] + std*r.NormFloat64()
	}
	return x
}

// TestContinuousMixture runs every continuous sampler on every process it
// takes, on the exact score of the 2-D mixture under that process
// (toy.Diffused), and checks the samples with checkMixture, the number of
// score evaluations and the progress calls.
//
// The corrector's norms are taken over the whole batch (Dim 0): in 2-D
// per-sample norms fail (TestCorrectorNormsLesson).
//
// The VE ODE rows (and deterministic heun's) start from the exact marginal at t = 1 (the mixture plus
// N(0, σ_max² I) noise): being deterministic, the ODE carries any mismatch of
// its starting distribution to the end, and the Gaussian prior N(0, σ_max² I)
// misses the mixture's off-centre mass; from it the 0.2 mode ends with about
// 0.25 (TestProbabilityFlowVEPrior), where the SDE samplers' noise corrects
// the same error. VP's and sub-VP's prior N(0, I) is their marginal at t = 1
// up to m(1) ≈ 0.0066, so their ODE rows start from it.
func TestContinuousMixture(t *testing.T) {
	m := toy.Mixture2D()
	for i, tc := range []struct {
		s          sampler
		spec       sde.Spec
		c          Continuous
		evals      int // 0: not fixed (rk45)
		exactStart bool
	}{
		{em, veSpec, Continuous{Steps: 1000}, 1000, false},
		{em, vpSpec, Continuous{Steps: 1000}, 1000, false},
		{em, subVPSpec, Continuous{Steps: 1000}, 1000, false},
		{pc, veSpec, Continuous{Steps: 300, Denoise: true}, 600, false},
		{pc, vpSpec, Continuous{Steps: 300, Denoise: true}, 600, false},
		{pc, subVPSpec, Continuous{Steps: 300, Denoise: true}, 600, false},
		{ancestral, vpSpec, Continuous{Steps: 1000, Denoise: true}, 1000, false},
		{ddim, vpSpec, Continuous{Steps: 100}, 100, false},
		{rk45, veSpec, Continuous{}, 0, true},
		{rk45, vpSpec, Continuous{}, 0, false},
		{rk45, subVPSpec, Continuous{}, 0, false},
		{rk4, veSpec, Continuous{Steps: 100}, 400, true},
		{rk4, vpSpec, Continuous{Steps: 100}, 400, false},
		{heun, veSpec, Continuous{Steps: 60}, 119, true},
		{heun, veSpec, Continuous{Steps: 150, Churn: 40}, 299, false},
	} {
		name := tc.s.name + "/" + tc.spec.Name
		if tc.c.Churn > 0 {
			name += "-churn"
		}
		t.Run(name, func(t *testing.T) {
			p := newProcess(t, tc.spec)
			r := rand.New(rand.NewPCG(uint64(i+1), 1))
			var x []float64
			if tc.exactStart {
				x = marginal(m, p, nPoints, r)
			} else {
				x = make([]float64, 2*nPoints)
				Prior(x, p, r)
			}
			c := tc.c
			c.Process = p
			progress := 0
			c.Progress = func(e int) {
				if e != progress+1 {
					t.Errorf("progress %d after %d", e, progress)
				}
				progress = e
			}
			evals, err := tc.s.run(toy.Diffused{Mixture: m, Process: p}, x, c, r)
			if err != nil {
				t.Fatal(err)
			}
			if (tc.evals > 0 && evals != tc.evals) || progress != evals {
				t.Fatalf("%d evaluations, progress saw %d; want %d", evals, progress, tc.evals)
			}
			t.Logf("%d evaluations", evals)
			checkMixture(t, name, m, x)
		})
	}
}

// TestProbabilityFlowVEPrior is why the VE ODE rows above start from the
// exact marginal: from the Gaussian prior the ODE keeps the prior's error and
// the 0.2 mode ends well above its weight.
func TestProbabilityFlowVEPrior(t *testing.T) {
	m := toy.Mixture2D()
	p := newProcess(t, veSpec)
	x := make([]float64, 2*nPoints)
	Prior(x, p, rand.New(rand.NewPCG(3, 3)))
	if _, err := ProbabilityFlowRK45(m, x, Continuous{Process: p}); err != nil {
		t.Fatal(err)
	}
	w := m.ModeWeights(x)
	if w[0] < m.Weights[0]+0.03 {
		t.Errorf("from the Gaussian prior: weights %.3f; expected the 0.2 mode well above its weight", w)
	}
	t.Logf("from the Gaussian prior: weights %.3f", w)
}

// TestProbabilityFlowSolversAgree: the ODE is deterministic, so RK45 and RK4
// carry each starting point to the same place, for VE and VP.
func TestProbabilityFlowSolversAgree(t *testing.T) {
	m := toy.Mixture2D()
	for _, spec := range []sde.Spec{veSpec, vpSpec} {
		t.Run(spec.Name, func(t *testing.T) {
			p := newProcess(t, spec)
			x := marginal(m, p, 300, rand.New(rand.NewPCG(4, 4)))
			x4 := append([]float64(nil), x...)
			st, err := ProbabilityFlowRK45(toy.Diffused{Mixture: m, Process: p}, x, Continuous{Process: p})
			if err != nil {
				t.Fatal(err)
			}
			st4, err := ProbabilityFlowRK4(toy.Diffused{Mixture: m, Process: p}, x4, Continuous{Process: p, Steps: 100})
			if err != nil {
				t.Fatal(err)
			}
			var d float64
			for i := range x {
				d = math.Max(d, math.Abs(x[i]-x4[i]))
			}
			if d > 0.05 || st4.Steps != 100 || st.Steps < 2 || st.Evals != 1+6*(st.Steps+st.Rejected) {
				t.Errorf("RK45 (%+v) and RK4 (%+v) end %g apart", st, st4, d)
			}
			t.Logf("RK45 %+v, RK4 %+v, %g apart", st, st4, d)
		})
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

// TestCorrectorNormsLesson: the corrector's step 2α(r‖z‖/‖s‖)² is made for
// high dimensions, where ‖z‖ and ‖s‖ concentrate. Per sample in 2-D they do
// not: near a mode's centre ‖s‖ → 0 and the step throws the point far away,
// so the modes' covariances blow up and the weights drift towards 1/2
// (measured: see the log), where the whole-batch norms of
// TestContinuousMixture pass.
func TestCorrectorNormsLesson(t *testing.T) {
	m := toy.Mixture2D()
	p := newProcess(t, veSpec)
	r := rand.New(rand.NewPCG(6, 6))
	x := make([]float64, 2*nPoints)
	Prior(x, p, r)
	if _, err := PredictorCorrector(m, x, Continuous{Process: p, Steps: 300, Denoise: true, Dim: 2}, r); err != nil {
		t.Fatal(err)
	}
	w := m.ModeWeights(x)
	_, cov := m.ModeMoments(x, 1)
	if math.Abs(w[0]-m.Weights[0]) < 0.08 || cov[0] < 3 || cov[3] < 3 {
		t.Errorf("per-sample norms in 2-D: weights %.3f, mode 1 covariance %.3g; expected far from the truth", w, cov)
	}
	t.Logf("per-sample norms in 2-D: weights %.3f, mode 1 covariance %.3g", w, cov)
}

// TestCorrectorPerSampleBias measures what per-sample norms cost on
// N(0, I) in D dimensions: the step ε_b ∝ ‖z_b‖²/‖s_b‖² depends on the
// sample and its own noise, and without a Metropolis test that biases the
// corrector's stationary law. The samples' variance, relative to the same run
// with whole-batch norms, comes out near 1 + 4/D (measured: 1.12–1.13 at
// D = 32, 1.03 at 128, 1.007 at 512): harmless for images (D = 784: 0.5%),
// fatal in 2-D (TestCorrectorNormsLesson).
func TestCorrectorPerSampleBias(t *testing.T) {
	for _, tc := range []struct {
		spec   sde.Spec
		d      int
		lo, hi float64 // bounds on the variance ratio
	}{
		{veSpec, 32, 1.08, 1.18},
		{vpSpec, 32, 1.08, 1.18},
		{veSpec, 512, 0.99, 1.025},
		{vpSpec, 512, 0.99, 1.025},
	} {
		t.Run(fmt.Sprintf("%s/D=%d", tc.spec.Name, tc.d), func(t *testing.T) {
			p := newProcess(t, tc.spec)
			// The score of m·X + s·Z, X ~ N(0, I): −x/(m² + s²).
			s := ScoreFunc(func(x []float64, sigma float64, dst []float64) error {
				m, _ := p.Marginal(p.TimeOf(sigma))
				for i := range x {
					dst[i] = -x[i] / (m*m + sigma*sigma)
				}
				return nil
			})
			variance := func(dim int) float64 {
				r := rand.New(rand.NewPCG(12, 1))
				x := make([]float64, 1<<15)
				Prior(x, p, r)
				if _, err := PredictorCorrector(s, x, Continuous{Process: p, Steps: 300, Denoise: true, Dim: dim}, r); err != nil {
					t.Fatal(err)
				}
				var v float64
				for _, xi := range x {
					v += xi * xi / float64(len(x))
				}
				return v
			}
			batch, perSample := variance(0), variance(tc.d)
			if q := perSample / batch; q < tc.lo || q > tc.hi {
				t.Errorf("variance %.4f per sample, %.4f with batch norms: ratio %.4f, want in [%g, %g] (1 + 4/D = %.4f)", perSample, batch, q, tc.lo, tc.hi, 1+4/float64(tc.d))
			}
			if math.Abs(batch-1) > 0.05 {
				t.Errorf("batch norms: variance %.4f, want 1 ± 0.05", batch)
			}
			t.Logf("variance %.4f per sample, %.4f with batch norms (1 + 4/D = %.4f)", perSample, batch, 1+4/float64(tc.d))
		})
	}
}
