// Package demo runs the score-based toolkit on distributions with known
// scores and draws what it does: density and score field, Langevin paths,
// every sampler's samples against the truth, the score fields learned by
// each objective, and probability-flow ODE paths against reverse-SDE paths.
package demo

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/ncsn-go/ncsn/sde"
	"github.com/ncsn-go/ncsn/objective"
	"github.com/ncsn-go/ncsn/sample"
	"github.com/ncsn-go/ncsn/toy"
)

// Config is one demo run.
type Config struct {
	OutDir string
	Seed   uint64
	Points int // samples per sampler
	Log    io.Writer
}

// Row is one line of the samplers' table.
type Row struct {
	Sampler     string
	Evals       int     // score evaluations per point
	WeightError float64 // max |share of a mode − its weight|
	Energy      float64 // energy distance to exact samples
	Threshold   float64 // its permutation threshold (α = 0.01)
	Seconds     float64
}

// ObjectiveRow is one line of the objectives' table.
type ObjectiveRow struct {
	Objective string
	Sigma     float64 // noise level of the target score
	RelError  float64
	Seconds   float64
}

// Report is what a run measured.
type Report struct {
	Samplers   []Row
	Objectives []ObjectiveRow
	Files      []string
}

// veSDE covers the 2-D mixture: σ_max about its largest pairwise distance.
var veSDE = sample.VESDE{SigmaMin: 0.01, SigmaMax: 20}

// Run writes every picture into c.OutDir and returns the measured figures.
func Run(c Config) (*Report, error) {
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.Points < 100 {
		return nil, fmt.Errorf("demo: -points %d: need at least 100", c.Points)
	}
	if err := os.MkdirAll(c.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	rep := &Report{}
	m := toy.Mixture2D()
	r := rand.New(rand.NewPCG(c.Seed, 1))
	save := func(name string, f func(path string) error) error {
		p := filepath.Join(c.OutDir, name)
		if err := f(p); err != nil {
			return fmt.Errorf("demo: %s: %w", p, err)
		}
		rep.Files = append(rep.Files, p)
		fmt.Fprintf(c.Log, "wrote %s\n", p)
		return nil
	}

	// 1. Density and score field.
	if err := save("density_score.png", func(p string) error { return plotDensityField(p, m, toy.Ring8()) }); err != nil {
		return nil, err
	}
	// 2. Langevin paths from one starting point.
	if err := save("langevin_paths.png", func(p string) error { return plotLangevinPaths(p, m, r) }); err != nil {
		return nil, err
	}
	// 3. Every sampler on the exact score.
	results, rows, err := runSamplers(m, c.Points, r)
	if err != nil {
		return nil, err
	}
	rep.Samplers = rows
	if err := save("samplers.png", func(p string) error { return plotSamplers(p, m, results) }); err != nil {
		return nil, err
	}
	if err := save("mixture1d.png", func(p string) error { return plotMixture1D(p, c.Points, r) }); err != nil {
		return nil, err
	}
	// 4. Learned score fields.
	models, orows, err := runObjectives(m, r)
	if err != nil {
		return nil, err
	}
	rep.Objectives = orows
	if err := save("objectives.png", func(p string) error { return plotObjectives(p, m, models, orows) }); err != nil {
		return nil, err
	}
	// 5. Probability-flow ODE paths against reverse-SDE paths.
	if err := save("ode_vs_sde.png", func(p string) error { return plotODEvsSDE(p, r) }); err != nil {
		return nil, err
	}
	return rep, nil
}

type samplerResult struct {
	name string
	x    []float64
}

func runSamplers(m *toy.Mixture, n int, r *rand.Rand) ([]samplerResult, []Row, error) {
	exact := m.Sample(n, rand.New(rand.NewPCG(99, 1)))
	uniform := func() []float64 {
		x := make([]float64, 2*n)
		for i := range x {
			x[i] = 16*r.Float64() - 8
		}
		return x
	}
	prior := func() []float64 {
		x := make([]float64, 2*n)
		veSDE.Prior(x, r)
		return x
	}
	sig, _ := sde.Geometric(20, 0.01, 20)
	type run struct {
		name  string
		start func() []float64
		f     func(x []float64) (int, error)
	}
	runs := []run{
		{"gradient ascent (no noise)", uniform, func(x []float64) (int, error) {
			return 1000, sample.Langevin(m, x, 0, 0.1, 1000, false, r)
		}},
		{"Langevin, τ=0.1", uniform, func(x []float64) (int, error) {
			return 1000, sample.Langevin(m, x, 0, 0.1, 1000, true, r)
		}},
		{"annealed Langevin", uniform, func(x []float64) (int, error) {
			a := sample.Annealed{Sigmas: sig, StepsPerLevel: 100, Eps: 2e-5, Denoise: true}
			return 2001, sample.AnnealedLangevin(m, x, a, r)
		}},
		{"reverse SDE (Euler–Maruyama)", prior, func(x []float64) (int, error) {
			return sample.ReverseSDE(m, x, veSDE, 1000, r)
		}},
		{"predictor–corrector", prior, func(x []float64) (int, error) {
			return sample.PredictorCorrector(m, x, sample.PC{SDE: veSDE, Steps: 300, Corrector: 1, SNR: 0.16, Denoise: true}, r)
		}},
		{"probability-flow ODE, RK45", prior, func(x []float64) (int, error) {
			st, err := sample.ProbabilityFlowRK45(m, x, veSDE, 0, 1e-5, 1e-5)
			return st.Evals, err
		}},
		{"probability-flow ODE, RK4 ×100", prior, func(x []float64) (int, error) {
			st, err := sample.ProbabilityFlowRK4(m, x, veSDE, 0, 100)
			return st.Evals, err
		}},
	}
	var res []samplerResult
	var rows []Row
	for _, rn := range runs {
		x := rn.start()
		t0 := time.Now()
		evals, err := rn.f(x)
		if err != nil {
			return nil, nil, fmt.Errorf("demo: %s: %w", rn.name, err)
		}
		secs := time.Since(t0).Seconds()
		w := m.ModeWeights(x)
		var we float64
		for k := range w {
			we = math.Max(we, math.Abs(w[k]-m.Weights[k]))
		}
		k := min(n, 600)
		et := toy.PermutationEnergyTest(x[:2*k], exact[:2*k], 2, 200, 0.01, rand.New(rand.NewPCG(7, 7)))
		rows = append(rows, Row{Sampler: rn.name, Evals: evals, WeightError: we, Energy: et.Statistic, Threshold: et.Threshold, Seconds: secs})
		res = append(res, samplerResult{rn.name, x})
	}
	return res, rows, nil
}

func runObjectives(m *toy.Mixture, r *rand.Rand) (map[objective.Kind]*objective.Model, []ObjectiveRow, error) {
	data := m.Sample(4000, r)
	models := map[objective.Kind]*objective.Model{}
	var rows []ObjectiveRow
	for _, k := range objective.Kinds {
		c := objective.Defaults(k)
		t0 := time.Now()
		mod, err := objective.Train(c, data, 2)
		if err != nil {
			return nil, nil, err
		}
		sigma := 0.0
		if k == objective.DSM || k == objective.ESM || k == objective.NCSN {
			sigma = c.Sigma
		}
		density := func(x []float64) float64 { return math.Exp(m.LogDensity(x, sigma)) }
		e, err := objective.WeightedRelError(mod, m, sigma, density, -9, 9, 61)
		if err != nil {
			return nil, nil, err
		}
		models[k] = mod
		rows = append(rows, ObjectiveRow{Objective: string(k), Sigma: sigma, RelError: e, Seconds: time.Since(t0).Seconds()})
	}
	return models, rows, nil
}

// WriteTable prints the figures as Markdown tables.
func (rep *Report) WriteTable(w io.Writer) {
	fmt.Fprintln(w, "| sampler (exact score) | score evaluations | mode-weight error | energy distance | threshold (α=0.01) | time |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rep.Samplers {
		fmt.Fprintf(w, "| %s | %d | %.3f | %.4f | %.4f | %.2f s |\n", r.Sampler, r.Evals, r.WeightError, r.Energy, r.Threshold, r.Seconds)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| objective | target score | weighted relative error | training time |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, o := range rep.Objectives {
		tgt := "p"
		if o.Sigma > 0 {
			tgt = fmt.Sprintf("p ∗ N(0, %.1f²I)", o.Sigma)
		}
		fmt.Fprintf(w, "| %s | %s | %.4f | %.1f s |\n", o.Objective, tgt, o.RelError, o.Seconds)
	}
}
