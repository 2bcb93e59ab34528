package sample

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/sde"
)

// allSpecs are the four processes of package sde, with NCSN's default ladder.
func allSpecs(t *testing.T) []sde.Spec {
	t.Helper()
	ncsn, err := sde.Default("ncsn")
	if err != nil {
		t.Fatal(err)
	}
	return []sde.Spec{ncsn, veSpec, vpSpec, subVPSpec}
}

// unitScore is the score of m·X + s·Z for X ~ N(0, I) under p: −x/(m² + s²).
func unitScore(p sde.Process) Score {
	return ScoreFunc(func(x []float64, sigma float64, dst []float64) error {
		m, _ := p.Marginal(p.TimeOf(sigma))
		for i := range x {
			dst[i] = -x[i] / (m*m + sigma*sigma)
		}
		return nil
	})
}

// TestVPOnly: ancestral sampling and DDIM refuse every process but VP,
// before evaluating the score or touching x.
func TestVPOnly(t *testing.T) {
	for _, spec := range allSpecs(t) {
		p := newProcess(t, spec)
		for _, s := range []sampler{ancestral, ddim} {
			t.Run(s.name+"/"+spec.Name, func(t *testing.T) {
				x := []float64{1, 2, 3, 4}
				evals, err := s.run(unitScore(p), x, Continuous{Process: p, Steps: 100}, rand.New(rand.NewPCG(1, 1)))
				if spec.Name == "vp" {
					if err != nil || evals != 100 {
						t.Fatalf("vp: %d evaluations, error %v", evals, err)
					}
					return
				}
				if !errors.Is(err, ErrConfig) || evals != 0 || x[0] != 1 || x[3] != 4 {
					t.Fatalf("%s: %d evaluations, x %v, error %v", spec.Name, evals, x, err)
				}
			})
		}
	}
}

// TestContinuousBadConfig: every sampler refuses a bad configuration with an
// error wrapping ErrConfig, without evaluating the score.
func TestContinuousBadConfig(t *testing.T) {
	vp := newProcess(t, vpSpec)
	var nilVP *sde.VP
	good := Continuous{Process: vp, Steps: 100}
	for _, tc := range []struct {
		name   string
		c      func(Continuous) Continuous
		x      []float64
		noRand bool
		skip   map[string]bool // samplers that do not use the setting
	}{
		{name: "no process", c: func(c Continuous) Continuous { c.Process = nil; return c }},
		{name: "typed nil process", c: func(c Continuous) Continuous { c.Process = nilVP; return c }},
		{name: "no steps", c: func(c Continuous) Continuous { c.Steps = 0; return c }, skip: map[string]bool{"rk45": true}},
		{name: "negative steps", c: func(c Continuous) Continuous { c.Steps = -3; return c }, skip: map[string]bool{"rk45": true}},
		{name: "dim does not divide", c: func(c Continuous) Continuous { c.Dim = 3; return c }},
		{name: "negative dim", c: func(c Continuous) Continuous { c.Dim = -2; return c }},
		{name: "negative tolerance", c: func(c Continuous) Continuous { c.Tol = -1e-5; return c }},
		{name: "NaN tolerance", c: func(c Continuous) Continuous { c.Tol = math.NaN(); return c }},
		{name: "negative snr", c: func(c Continuous) Continuous { c.SNR = -0.16; return c }},
		{name: "infinite snr", c: func(c Continuous) Continuous { c.SNR = math.Inf(1); return c }},
		{name: "negative corrector", c: func(c Continuous) Continuous { c.Corrector = -1; return c }},
		{name: "empty x", c: func(c Continuous) Continuous { return c }, x: []float64{}},
		{name: "no generator", c: func(c Continuous) Continuous { return c }, noRand: true,
			skip: map[string]bool{"ddim": true, "rk45": true, "rk4": true}},
		// DDPM's chain needs β_i = β(t)Δt < 1: 10 steps give β ≈ 20/9 at t = 1.
		{name: "vp grid too coarse", c: func(c Continuous) Continuous { c.Steps = 10; return c },
			skip: map[string]bool{"euler-maruyama": true, "ddim": true, "rk45": true, "rk4": true}},
	} {
		for _, s := range samplers {
			if tc.skip[s.name] {
				continue
			}
			t.Run(tc.name+"/"+s.name, func(t *testing.T) {
				x := tc.x
				if x == nil {
					x = []float64{1, 2, 3, 4}
				}
				r := rand.New(rand.NewPCG(1, 1))
				if tc.noRand {
					r = nil
				}
				calls := 0
				score := ScoreFunc(func(x []float64, _ float64, dst []float64) error { calls++; return nil })
				evals, err := s.run(score, x, tc.c(good), r)
				if !errors.Is(err, ErrConfig) || evals != 0 || calls != 0 {
					t.Fatalf("%d evaluations (%d calls), error %v", evals, calls, err)
				}
			})
		}
	}
	// The settings a sampler does not use are not checked: RK45 needs no steps.
	x := []float64{1, 2}
	if st, err := ProbabilityFlowRK45(unitScore(vp), x, Continuous{Process: vp}); err != nil || st.Evals == 0 {
		t.Errorf("rk45 without steps: %+v, %v", st, err)
	}
}

// TestScoreErrors: a failing score stops a sampler with its error wrapped,
// and the evaluations before it counted.
func TestScoreErrors(t *testing.T) {
	vp := newProcess(t, vpSpec)
	boom := errors.New("boom")
	for _, s := range samplers {
		t.Run(s.name, func(t *testing.T) {
			calls := 0
			score := ScoreFunc(func(x []float64, _ float64, dst []float64) error {
				if calls++; calls == 3 {
					return boom
				}
				clear(dst)
				return nil
			})
			evals, err := s.run(score, []float64{1, 2}, Continuous{Process: vp, Steps: 50}, rand.New(rand.NewPCG(1, 1)))
			if !errors.Is(err, boom) || evals != 2 {
				t.Fatalf("%d evaluations, error %v", evals, err)
			}
		})
	}
}

// TestSameSeedSameBits: a sampler run twice from the same seed gives the
// same bits; the stochastic ones give other bits from another seed.
func TestSameSeedSameBits(t *testing.T) {
	for _, spec := range []sde.Spec{veSpec, vpSpec, subVPSpec} {
		p := newProcess(t, spec)
		for _, s := range samplers {
			if (s.name == "ancestral" || s.name == "ddim") && spec.Name != "vp" {
				continue
			}
			t.Run(s.name+"/"+spec.Name, func(t *testing.T) {
				run := func(seed uint64) []float64 {
					r := rand.New(rand.NewPCG(seed, 9))
					x := make([]float64, 3*40)
					Prior(x, p, r)
					if _, err := s.run(unitScore(p), x, Continuous{Process: p, Steps: 60, Dim: 3}, r); err != nil {
						t.Fatal(err)
					}
					return x
				}
				a, b, c := run(7), run(7), run(8)
				same, other := true, false
				for i := range a {
					same = same && math.Float64bits(a[i]) == math.Float64bits(b[i])
					other = other || a[i] != c[i]
				}
				if !same {
					t.Error("same seed, different bits")
				}
				if !other {
					t.Error("another seed, the same samples")
				}
			})
		}
	}
}

// cycle is a random source that repeats its values; each is a value that
// rand's NormFloat64 accepts at once, so every normal draw of a run is the
// next value of the cycle.
type cycle struct {
	v []uint64
	i int
}

func (c *cycle) Uint64() uint64 {
	u := c.v[c.i%len(c.v)]
	c.i++
	return u
}

// normal returns the source value whose NormFloat64 is j·wn[0] ≈ j·1.73e-9.
func normal(j int32) uint64 { return uint64(uint32(j)) }

// TestCorrectorPerSample: with per-sample norms a sample's path does not
// depend on the batch. Two samples of very different scales run together end
// bit for bit where each ends alone, given the same noise (a source cycling
// with the dimension's period feeds every sample the same draws); with the
// whole batch as one sample (Dim 0) they do not, and the small one takes a
// very different step.
func TestCorrectorPerSample(t *testing.T) {
	for _, spec := range []sde.Spec{veSpec, vpSpec, subVPSpec} {
		t.Run(spec.Name, func(t *testing.T) {
			p := newProcess(t, spec)
			s := unitScore(p)
			src := func() *rand.Rand { return rand.New(&cycle{v: []uint64{normal(5e8), normal(-3e8)}}) }
			big, small := []float64{300, -400}, []float64{0.01, 0.02}
			c := Continuous{Process: p, Steps: 30, Corrector: 2, Dim: 2}
			run := func(x []float64, c Continuous) []float64 {
				x = append([]float64(nil), x...)
				if _, err := PredictorCorrector(s, x, c, src()); err != nil {
					t.Fatal(err)
				}
				return x
			}
			batch := run(append(append([]float64(nil), big...), small...), c)
			alone := append(run(big, c), run(small, c)...)
			for i := range batch {
				if math.Float64bits(batch[i]) != math.Float64bits(alone[i]) {
					t.Fatalf("in a batch %v, alone %v", batch, alone)
				}
			}
			c.Dim = 0
			whole := run(append(append([]float64(nil), big...), small...), c)
			if math.Abs(whole[2]-alone[2]) < 1e-3*math.Abs(alone[2]) {
				t.Errorf("whole-batch norms: small sample ends at %v, as alone (%v)", whole[2:], alone[2:])
			}
		})
	}
}

// TestDenoise: with Denoise the stochastic samplers' last step adds no noise,
// so it ends at the mean of that step. On the unit Gaussian the two runs
// share every draw up to the last step; the difference is the last step's
// noise, of RMS g(ε)√ε (ε = sde.SamplingEps) for Euler–Maruyama and G from Discretize(ε, ε) for
// the predictor and DDPM (for VE σ(ε) ≈ σ_min: all the noise left).
func TestDenoise(t *testing.T) {
	vp, ve := newProcess(t, vpSpec), newProcess(t, veSpec)
	emNoise := func(p sde.Process) float64 {
		eps := sde.SamplingEps(p)
		_, g := p.Coefficients(eps)
		return g * math.Sqrt(eps)
	}
	chainNoise := func(p sde.Process) float64 {
		eps := sde.SamplingEps(p)
		_, G := p.Discretize(eps, eps)
		return G
	}
	for _, tc := range []struct {
		s    sampler
		p    sde.Process
		want float64 // the last step's noise
	}{
		{em, vp, emNoise(vp)},
		{em, ve, emNoise(ve)},
		{pc, ve, chainNoise(ve)},
		{pc, vp, chainNoise(vp)},
		{ancestral, vp, chainNoise(vp)},
	} {
		t.Run(tc.s.name+"/"+tc.p.Name(), func(t *testing.T) {
			end := func(denoise bool) []float64 {
				r := rand.New(rand.NewPCG(4, 4))
				x := make([]float64, 2000)
				Prior(x, tc.p, r)
				if _, err := tc.s.run(unitScore(tc.p), x, Continuous{Process: tc.p, Steps: 100, Denoise: denoise}, r); err != nil {
					t.Fatal(err)
				}
				return x
			}
			noisy, mean := end(false), end(true)
			var d2 float64
			for i := range noisy {
				d2 += (noisy[i] - mean[i]) * (noisy[i] - mean[i]) / float64(len(noisy))
			}
			if d := math.Sqrt(d2); math.Abs(d-tc.want) > 0.1*tc.want {
				t.Errorf("RMS difference %g, want the last step's noise %g", d, tc.want)
			}
		})
	}
}

// TestPrior: N(0, PriorStd²) per process; NaN without a process or generator.
func TestPrior(t *testing.T) {
	x := []float64{1, 2}
	Prior(x, nil, rand.New(rand.NewPCG(1, 1)))
	if !math.IsNaN(x[0]) || !math.IsNaN(x[1]) {
		t.Errorf("no process: %v", x)
	}
	x = []float64{1, 2}
	Prior(x, newProcess(t, vpSpec), nil)
	if !math.IsNaN(x[0]) || !math.IsNaN(x[1]) {
		t.Errorf("no generator: %v", x)
	}
	for _, spec := range allSpecs(t) {
		p := newProcess(t, spec)
		x := make([]float64, 20000)
		Prior(x, p, rand.New(rand.NewPCG(2, 2)))
		var v float64
		for _, xi := range x {
			v += xi * xi / float64(len(x))
		}
		if want := p.PriorStd() * p.PriorStd(); math.Abs(v-want) > 0.05*want {
			t.Errorf("%s: variance %g, want %g", spec.Name, v, want)
		}
	}
}

// TestTooFewStepsSaysHowMany: a grid too coarse for VP's chain says the
// fewest steps that carry it, and that many do.
func TestTooFewStepsSaysHowMany(t *testing.T) {
	p := newProcess(t, vpSpec)
	x := []float64{1, 2, 3, 4}
	_, err := PredictorCorrector(unitScore(p), x, Continuous{Process: p, Steps: 3}, rand.New(rand.NewPCG(1, 1)))
	var n int
	if err == nil || !strings.Contains(err.Error(), "3 steps are too few for the vp process") {
		t.Fatalf("3 steps: %v", err)
	}
	if _, serr := fmt.Sscanf(err.Error()[strings.Index(err.Error(), "it needs at least "):], "it needs at least %d", &n); serr != nil || n < 4 {
		t.Fatalf("%v: no least count (%v)", err, serr)
	}
	for _, steps := range []int{n - 1, n} {
		_, err := PredictorCorrector(unitScore(p), []float64{1, 2, 3, 4}, Continuous{Process: p, Steps: steps}, rand.New(rand.NewPCG(1, 1)))
		if (err == nil) != (steps == n) {
			t.Errorf("%d steps (least %d): %v", steps, n, err)
		}
	}
}
