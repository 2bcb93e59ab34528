package sample

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ncsn-go/ncsn/sde"
)

// heun is the Heun sampler behind the continuous samplers' test signature;
// TestContinuousMixture runs both its forms on the 2-D mixture.
var heun = sampler{"heun", false, Heun}

// gaussScore is the score of N(μ, s²) (each coordinate) plus N(0, σ²): −(x − μ)/(s² + σ²).
func gaussScore(mu, s float64) Score {
	return ScoreFunc(func(x []float64, sigma float64, dst []float64) error {
		for i := range x {
			dst[i] = -(x[i] - mu) / (s*s + sigma*sigma)
		}
		return nil
	})
}

// TestHeunGaussianOrder: on Gaussian data the probability-flow ODE in σ is
// solved exactly by x(σ) − μ = (x(σ_max) − μ)·√((s² + σ²)/(s² + σ_max²)), and
// the last Euler step to σ = 0 is the denoiser, which multiplies by
// s²/(s² + σ_min²). The deterministic sampler lands there, and its error falls
// by about 4 each time the steps double (Heun's method is second order).
func TestHeunGaussianOrder(t *testing.T) {
	const mu, s = 0.3, 0.2
	p := newProcess(t, veSpec)
	_, lo := p.Marginal(p.Eps())
	hi := p.PriorStd()
	x0 := []float64{-30, -2, 0, 1.5, 11, 40}
	want := make([]float64, len(x0))
	for i, v := range x0 {
		want[i] = mu + (v-mu)*math.Sqrt((s*s+lo*lo)/(s*s+hi*hi))*s*s/(s*s+lo*lo)
	}
	errAt := func(n int) float64 {
		x := append([]float64(nil), x0...)
		evals, err := Heun(gaussScore(mu, s), x, Continuous{Process: p, Steps: n}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if evals != 2*n-1 {
			t.Fatalf("%d steps: %d evaluations, want %d", n, evals, 2*n-1)
		}
		e := 0.0
		for i := range x {
			e = max(e, math.Abs(x[i]-want[i]))
		}
		return e
	}
	e1, e2, e3 := errAt(40), errAt(80), errAt(160)
	t.Logf("max error: %.3g (40 steps), %.3g (80), %.3g (160)", e1, e2, e3)
	if e3 > 5e-4 { // start points up to 40 from μ: 1e-5 relative
		t.Errorf("160 steps: error %.3g", e3)
	}
	for _, ratio := range []float64{e1 / e2, e2 / e3} {
		if ratio < 3 || ratio > 5.5 {
			t.Errorf("doubling the steps divided the error by %.2f, not about 4 (errors %.3g %.3g %.3g)", ratio, e1, e2, e3)
		}
	}
}

// TestHeunChurnMatters: the churn adds noise (another seed, other samples;
// the same seed, the same bits), and without churn the sampler uses no
// random numbers at all.
func TestHeunChurnMatters(t *testing.T) {
	p := newProcess(t, veSpec)
	run := func(churn float64, seed uint64) []float64 {
		x := make([]float64, 3*20)
		Prior(x, p, rand.New(rand.NewPCG(5, 5)))
		var r *rand.Rand
		if seed > 0 {
			r = rand.New(rand.NewPCG(seed, 9))
		}
		if _, err := Heun(unitScore(p), x, Continuous{Process: p, Steps: 30, Dim: 3, Churn: churn}, r); err != nil {
			t.Fatal(err)
		}
		return x
	}
	det, detSeeded := run(0, 0), run(0, 7)
	a, b, c := run(20, 7), run(20, 7), run(20, 8)
	sameDet, same, other, churned := true, true, false, false
	for i := range a {
		sameDet = sameDet && math.Float64bits(det[i]) == math.Float64bits(detSeeded[i])
		same = same && math.Float64bits(a[i]) == math.Float64bits(b[i])
		other = other || a[i] != c[i]
		churned = churned || a[i] != det[i]
	}
	if !sameDet || !same || !other || !churned {
		t.Errorf("deterministic alike with and without a generator %v; same seed same bits %v; another seed other samples %v; churn changes the samples %v", sameDet, same, other, churned)
	}
	// A σ range that holds some of the grid's σ's churns, and so does a
	// larger noise scale (one that holds none is refused: TestHeunBadConfig).
	ranged := func(lo, hi, noise float64) []float64 {
		x := make([]float64, 3*20)
		Prior(x, p, rand.New(rand.NewPCG(5, 5)))
		c := Continuous{Process: p, Steps: 30, Dim: 3, Churn: 20, ChurnMin: lo, ChurnMax: hi, ChurnNoise: noise}
		if _, err := Heun(unitScore(p), x, c, rand.New(rand.NewPCG(7, 9))); err != nil {
			t.Fatal(err)
		}
		return x
	}
	some, louder := ranged(0.05, 1, 0), ranged(0, 0, 1.5)
	if slicesEqual(some, det) || slicesEqual(some, a) || slicesEqual(louder, a) {
		t.Error("a churn range or noise scale changed nothing")
	}
}

func slicesEqual(a, b []float64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// TestHeunBadConfig: the sampler refuses what it cannot run, before
// evaluating the score or touching x.
func TestHeunBadConfig(t *testing.T) {
	ve := newProcess(t, veSpec)
	for _, tc := range []struct {
		name   string
		c      Continuous
		noRand bool
	}{
		{name: "vp", c: Continuous{Process: newProcess(t, vpSpec), Steps: 10}},
		{name: "subvp", c: Continuous{Process: newProcess(t, subVPSpec), Steps: 10}},
		{name: "no steps", c: Continuous{Process: ve}},
		{name: "negative churn", c: Continuous{Process: ve, Steps: 10, Churn: -1}},
		{name: "NaN churn", c: Continuous{Process: ve, Steps: 10, Churn: math.NaN()}},
		{name: "infinite churn", c: Continuous{Process: ve, Steps: 10, Churn: math.Inf(1)}},
		{name: "churn without a generator", c: Continuous{Process: ve, Steps: 10, Churn: 10}, noRand: true},
		{name: "churn range reversed", c: Continuous{Process: ve, Steps: 10, Churn: 10, ChurnMin: 1, ChurnMax: 0.5}},
		{name: "churn range negative", c: Continuous{Process: ve, Steps: 10, Churn: 10, ChurnMin: -1, ChurnMax: 0.5}},
		{name: "churn range NaN", c: Continuous{Process: ve, Steps: 10, Churn: 10, ChurnMax: math.NaN()}},
		{name: "churn noise negative", c: Continuous{Process: ve, Steps: 10, Churn: 10, ChurnNoise: -1}},
		{name: "churn noise infinite", c: Continuous{Process: ve, Steps: 10, Churn: 10, ChurnNoise: math.Inf(1)}},
		{name: "constraint without churn", c: Continuous{Process: ve, Steps: 10, Constraint: Known{Mask: []bool{true, false, false, false}, Value: []float64{0, 0, 0, 0}}}},
		// A range that holds no step's σ left the deterministic sampler
		// running under the stochastic one's name, constraints included.
		{name: "churn range above every σ", c: Continuous{Process: ve, Steps: 10, Churn: 10, ChurnMin: 1e6}},
		{name: "churn range between two σ's", c: Continuous{Process: ve, Steps: 3, Churn: 10, ChurnMin: 1.001, ChurnMax: 1.002}},
		{name: "constraint, churn range below every σ", c: Continuous{Process: ve, Steps: 10, Churn: 10, ChurnMax: 1e-9,
			Constraint: Known{Mask: []bool{true, false, false, false}, Value: []float64{0, 0, 0, 0}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := []float64{1, 2, 3, 4}
			r := rand.New(rand.NewPCG(1, 1))
			if tc.noRand {
				r = nil
			}
			calls := 0
			score := ScoreFunc(func([]float64, float64, []float64) error { calls++; return nil })
			evals, err := Heun(score, x, tc.c, r)
			if !errors.Is(err, ErrConfig) || evals != 0 || calls != 0 || x[0] != 1 || x[3] != 4 {
				t.Fatalf("%d evaluations (%d calls), x %v, error %v", evals, calls, x, err)
			}
		})
	}
}

// TestKarrasSigmasInSampler: the sampler's σ's are sde.KarrasSigmas's grid
// between the process's σ_max and smallest σ, each step's first call at its
// churned σ̂, the second at the next grid point.
func TestKarrasSigmasInSampler(t *testing.T) {
	p := newProcess(t, veSpec)
	_, lo := p.Marginal(p.Eps())
	const n = 7
	grid, err := sde.KarrasSigmas(p.PriorStd(), lo, n, sde.KarrasRho)
	if err != nil {
		t.Fatal(err)
	}
	var seen []float64
	score := ScoreFunc(func(x []float64, sigma float64, dst []float64) error {
		seen = append(seen, sigma)
		for i := range dst {
			dst[i] = 0
		}
		return nil
	})
	x := []float64{0.5}
	if _, err := Heun(score, x, Continuous{Process: p, Steps: n, Churn: 3.5}, rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatal(err)
	}
	// Step i calls at σ̂_i and (but the last) at σ_{i+1}.
	var want []float64
	for i := 0; i < n; i++ {
		want = append(want, sde.EDMChurn(grid[i], 3.5, n))
		if i < n-1 {
			want = append(want, grid[i+1])
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("σ's %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("call %d at σ = %g, want %g (all: %v)", i, seen[i], want[i], seen)
		}
	}
	// γ = min(3.5/7, √2 − 1): the bound holds; the last call is at σ_min's σ̂.
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-12*b }
	if !near(want[0], p.PriorStd()*math.Sqrt2) || !near(want[len(want)-1], lo*math.Sqrt2) {
		t.Errorf("first σ̂ %g (σ_max·√2), last σ̂ %g (σ_min·√2 = %g)", want[0], want[len(want)-1], lo*math.Sqrt2)
	}
}
