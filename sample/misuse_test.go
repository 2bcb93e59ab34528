package sample

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ncsn-go/ncsn/sde"
)

// TestMisuseRefused: a library caller's mistakes come back as ErrConfig,
// never as a hang or a panic: an empty constraint (the samplers looped for
// ever on its zero sample size), one of another size than the samples (it
// was imposed at the wrong places), known values shorter than the mask (an
// index panic), a nil score or random generator.
func TestMisuseRefused(t *testing.T) {
	ve, err := sde.New(sde.Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 5})
	if err != nil {
		t.Fatal(err)
	}
	score := ScoreFunc(func(x []float64, sigma float64, dst []float64) error {
		for i, v := range x {
			dst[i] = -v / (1 + sigma*sigma)
		}
		return nil
	})
	samplers := map[string]func(s Score, x []float64, c Constraint, dim int, r *rand.Rand) error{
		"em": func(s Score, x []float64, k Constraint, dim int, r *rand.Rand) error {
			_, err := EulerMaruyama(s, x, Continuous{Process: ve, Steps: 3, Dim: dim, Constraint: k}, r)
			return err
		},
		"pc": func(s Score, x []float64, k Constraint, dim int, r *rand.Rand) error {
			_, err := PredictorCorrector(s, x, Continuous{Process: ve, Steps: 3, Dim: dim, Constraint: k}, r)
			return err
		},
		"heun": func(s Score, x []float64, k Constraint, dim int, r *rand.Rand) error {
			_, err := Heun(s, x, Continuous{Process: ve, Steps: 3, Dim: dim, Churn: 1, Constraint: k}, r)
			return err
		},
		"ald": func(s Score, x []float64, k Constraint, dim int, r *rand.Rand) error {
			return AnnealedLangevin(s, x, Annealed{Sigmas: []float64{1, 0.1}, StepsPerLevel: 2, Eps: DefaultEps, Constraint: k}, r)
		},
	}
	cases := []struct {
		name  string
		s     Score
		k     Constraint
		n     int // values
		dim   int
		noRNG bool
	}{
		{"empty mask", score, Known{}, 4, 0, false},
		{"empty grey", score, Grey{}, 6, 0, false},
		{"no known values", score, Known{Mask: []bool{true, false}}, 4, 0, false},
		{"mask of another size than Dim", score, Known{Mask: []bool{true, false}, Value: []float64{1, 0}}, 4, 1, false},
		{"mask not dividing the batch", score, Known{Mask: []bool{true, false, true}, Value: []float64{1, 0, 1}}, 4, 0, false},
		{"grey image of another size", score, Grey{Grey: []float64{0.5}}, 4, 4, false},
		{"nil score", nil, nil, 4, 0, false},
		{"nil ScoreFunc", ScoreFunc(nil), nil, 4, 0, false},
		{"nil pointer", (*Guided)(nil), nil, 4, 0, false},
		{"nil random generator", score, nil, 4, 0, true},
	}
	for _, c := range cases {
		for name, run := range samplers {
			if c.k != nil && c.dim > 0 && name == "ald" {
				continue // ald has no Dim
			}
			r := rand.New(rand.NewPCG(1, 2))
			if c.noRNG {
				r = nil
			}
			done := make(chan error, 1)
			go func() {
				defer func() {
					if p := recover(); p != nil {
						done <- errors.New("panic")
					}
				}()
				done <- run(c.s, make([]float64, c.n), c.k, c.dim, r)
			}()
			select {
			case err := <-done:
				if !errors.Is(err, ErrConfig) {
					t.Errorf("%s, %s: got %v, want ErrConfig", c.name, name, err)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("%s, %s: still running after 20 s", c.name, name)
			}
		}
	}
	// The right constraint still works with and without Dim.
	k := Known{Mask: []bool{true, false}, Value: []float64{0.5, 0}}
	for _, dim := range []int{0, 2} {
		x := make([]float64, 4)
		if _, err := EulerMaruyama(score, x, Continuous{Process: ve, Steps: 3, Dim: dim, Constraint: k}, rand.New(rand.NewPCG(1, 2))); err != nil || x[0] != 0.5 || x[2] != 0.5 {
			t.Fatalf("Dim %d: %v %v", dim, x, err)
		}
	}
}

// TestODEDivergedSaysSo: a score that is not finite stops the ODE solver
// and the likelihood with ErrDiverged, said as the other samplers'
// divergence is ("rk45: the error estimate is not a number" before).
func TestODEDivergedSaysSo(t *testing.T) {
	ve, err := sde.New(sde.Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 5})
	if err != nil {
		t.Fatal(err)
	}
	nan := ScoreFunc(func(x []float64, sigma float64, dst []float64) error {
		for i := range dst {
			dst[i] = math.NaN()
		}
		return nil
	})
	_, err = ProbabilityFlowRK45(nan, make([]float64, 4), Continuous{Process: ve})
	if !errors.Is(err, ErrDiverged) || !strings.HasPrefix(err.Error(), "sample: diverged: the ODE solver's error estimate is not a number at t = 1") {
		t.Errorf("rk45: %v", err)
	}
	nanVJP := scoreVJPFunc(func(x []float64, sigma float64, v, score, vjp []float64) error {
		for i := range score {
			score[i], vjp[i] = math.NaN(), math.NaN()
		}
		return nil
	})
	_, _, err = LogLikelihood(nanVJP, make([]float64, 4), Likelihood{Process: ve, Dim: 2, Exact: true}, nil)
	if !errors.Is(err, ErrDiverged) || !strings.HasSuffix(err.Error(), ", in the likelihood's integral") {
		t.Errorf("likelihood: %v", err)
	}
}

// scoreVJPFunc adapts a function to ScoreVJP.
type scoreVJPFunc func(x []float64, sigma float64, v, score, vjp []float64) error

func (f scoreVJPFunc) ScoreVJP(x []float64, sigma float64, v, score, vjp []float64) error {
	return f(x, sigma, v, score, vjp)
}

// TestEverySamplerSaysDiverged: a sampler whose result is not finite returns
// ErrDiverged naming itself and the count (it returned NaN samples with a nil
// error; only generate checked), and a finite result is no error.
func TestEverySamplerSaysDiverged(t *testing.T) {
	vp, err := sde.New(sde.Spec{Name: "vp", BetaMin: 0.1, BetaMax: 20})
	if err != nil {
		t.Fatal(err)
	}
	ve, err := sde.New(sde.Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 5})
	if err != nil {
		t.Fatal(err)
	}
	// Infinite where x > 0.5 (the first half of x starts there): finite
	// elsewhere, so the ODE solver's error estimate stays a number.
	half := func(big float64) Score {
		return ScoreFunc(func(x []float64, sigma float64, dst []float64) error {
			for i := range dst {
				dst[i] = -x[i]
				if i < len(x)/2 {
					dst[i] = big
				}
			}
			return nil
		})
	}
	r := func() *rand.Rand { return rand.New(rand.NewPCG(3, 4)) }
	for _, tc := range []struct {
		name string
		run  func(s Score, x []float64) error
	}{
		{"langevin", func(s Score, x []float64) error { return Langevin(s, x, 1, 0.1, 3, true, r()) }},
		{"ald", func(s Score, x []float64) error {
			return AnnealedLangevin(s, x, Annealed{Sigmas: []float64{1, 0.1}, StepsPerLevel: 2, Eps: DefaultEps}, r())
		}},
		{"euler-maruyama", func(s Score, x []float64) error {
			_, err := EulerMaruyama(s, x, Continuous{Process: vp, Steps: 30}, r())
			return err
		}},
		{"predictor-corrector", func(s Score, x []float64) error {
			_, err := PredictorCorrector(s, x, Continuous{Process: vp, Steps: 30}, r())
			return err
		}},
		{"ancestral", func(s Score, x []float64) error {
			_, err := Ancestral(s, x, Continuous{Process: vp, Steps: 30}, r())
			return err
		}},
		{"ddim", func(s Score, x []float64) error { _, err := DDIM(s, x, Continuous{Process: vp, Steps: 30}); return err }},
		{"heun", func(s Score, x []float64) error {
			_, err := Heun(s, x, Continuous{Process: ve, Steps: 5}, r())
			return err
		}},
		{"rk4", func(s Score, x []float64) error {
			_, err := ProbabilityFlowRK4(s, x, Continuous{Process: ve, Steps: 5})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := make([]float64, 8)
			err := tc.run(half(math.Inf(1)), x)
			if !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), tc.name+": ") || !strings.Contains(err.Error(), " of 8 sample values are NaN or infinite") {
				t.Errorf("infinite score: %v (x %v)", err, x)
			}
			if err := tc.run(half(1), make([]float64, 8)); err != nil {
				t.Errorf("finite score: %v", err)
			}
		})
	}
}

// TestToleranceFloor: RK45 refuses a tolerance float64 cannot meet, before
// any evaluation (-tol 1e-300 ran for hours, its steps shrinking towards
// nothing); MinTol itself runs.
func TestToleranceFloor(t *testing.T) {
	ve, err := sde.New(sde.Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 5})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	score := ScoreFunc(func(x []float64, sigma float64, dst []float64) error {
		calls++
		for i := range dst {
			dst[i] = -x[i] / (1 + sigma*sigma)
		}
		return nil
	})
	vjp := scoreVJPFunc(func(x []float64, sigma float64, v, s, out []float64) error {
		calls++
		for i := range s {
			s[i], out[i] = -x[i]/(1+sigma*sigma), -v[i]/(1+sigma*sigma)
		}
		return nil
	})
	for _, tol := range []float64{1e-300, MinTol / 2, -1, math.Inf(1)} {
		if _, err := ProbabilityFlowRK45(score, make([]float64, 4), Continuous{Process: ve, Tol: tol}); !errors.Is(err, ErrConfig) {
			t.Errorf("rk45 at %g: %v", tol, err)
		}
		if _, _, err := LogLikelihood(vjp, make([]float64, 4), Likelihood{Process: ve, Dim: 2, Exact: true, Tol: tol}, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("likelihood at %g: %v", tol, err)
		}
	}
	if calls != 0 {
		t.Fatalf("%d evaluations before the refusals", calls)
	}
	if _, err := ProbabilityFlowRK45(score, []float64{0.5, -1, 2, 0}, Continuous{Process: ve, Tol: MinTol}); err != nil {
		t.Fatalf("rk45 at MinTol: %v", err)
	}
}

// TestStepShrinks: where the solution has a singularity the solver's
// rejected steps shrink towards nothing; it stops there, saying so (it
// went on to its 100000-step cap).
func TestStepShrinks(t *testing.T) {
	f := func(t float64, y, dy []float64) error {
		for i := range dy {
			dy[i] = 1 / ((t - 0.5) * (t - 0.5))
		}
		return nil
	}
	steps, rejected, err := dopri5(f, []float64{0}, 1, 1e-4, 1e-6, 1e-6)
	if err == nil || !strings.Contains(err.Error(), "the step shrank to") || steps+rejected > 10000 {
		t.Fatalf("%d steps, %d rejected: %v", steps, rejected, err)
	}
}

// TestLibraryEdges (a library user's finds, 2026-11-29): Langevin and ALD
// refuse empty input as the other samplers do (they returned nil); a score
// function's error is prefixed once ("sample: sample: score …"); GridSize
// of no images does not divide by zero, and Grid refuses negative sizes
// (−8×−8 passed the length check as 64).
func TestLibraryEdges(t *testing.T) {
	score := ScoreFunc(func(x []float64, sigma float64, dst []float64) error { return nil })
	r := rand.New(rand.NewPCG(1, 2))
	if err := Langevin(score, nil, 1, 0.1, 3, true, r); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "langevin: no values") {
		t.Errorf("langevin, no values: %v", err)
	}
	a := Annealed{Sigmas: []float64{1, 0.1}, StepsPerLevel: 2, Eps: 1e-5}
	if err := AnnealedLangevin(score, nil, a, r); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "ald: no values") {
		t.Errorf("ald, no values: %v", err)
	}
	if err := AnnealedLangevin(score, []float64{1}, Annealed{}, r); err == nil || !strings.Contains(err.Error(), "ald: no noise levels") {
		t.Errorf("ald, no levels: %v", err)
	}
	ve, err := sde.New(sde.Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 5})
	if err != nil {
		t.Fatal(err)
	}
	boom := ScoreFunc(func([]float64, float64, []float64) error { return errors.New("boom") })
	if _, err := ProbabilityFlowRK45(boom, []float64{0.5, 1}, Continuous{Process: ve, Tol: 1e-3}); err == nil || strings.Count(err.Error(), "sample: ") != 1 || !strings.HasSuffix(err.Error(), ": boom") {
		t.Errorf("a score's error through rk45: %v", err)
	}
	if w, h := GridSize(0, 0, 8, 8); w < 1 || h < 1 {
		t.Errorf("GridSize of no images: %d×%d", w, h)
	}
	if _, err := Grid(make([]float64, 64), 1, 1, -8, -8); err == nil {
		t.Error("a grid of −8×−8 images taken")
	}
}
