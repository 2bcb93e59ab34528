// Package demo runs the score-based toolkit on distributions with known
// scores and draws what it does: density and score field, Langevin paths,
// every sampler's samples against the truth (the continuous ones under VE,
// VP and sub-VP), the score fields learned by each objective, and
// probability-flow ODE paths against reverse-SDE paths.
package demo

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"time"

	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/sample"
	"github.com/ncsn-go/ncsn/sde"
	"github.com/ncsn-go/ncsn/toy"
	"github.com/ncsn-go/ncsn/toy/objective"
)

// MaxPoints bounds Config.Points: a billion 2-D points would not fit in
// memory. A million per sampler take about half an hour on 2 cores (20,000
// took 97 s), with a line as each of the samplers ends.
const MaxPoints = 1_000_000

// MinPoints is the fewest samples per sampler whose histograms and
// statistics mean something.
const MinPoints = 100

// Config is one demo run.
type Config struct {
	OutDir string
	Seed   uint64
	Points int // samples per sampler (MinPoints … MaxPoints)
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

// Processes of the demo. VE covers the 2-D mixture: σ_max = 20, about its
// largest pairwise distance (NCSNv2's rule), down to σ_min = 0.01; VP and
// sub-VP are score_sde's, β from 0.1 to 20.
var (
	veSpec    = sde.Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 20}
	vpSpec    = sde.Spec{Name: "vp", BetaMin: 0.1, BetaMax: 20}
	subVPSpec = sde.Spec{Name: "subvp", BetaMin: 0.1, BetaMax: 20}
)

// processes builds the demo's VE, VP and sub-VP processes.
func processes() (ve, vp, subVP sde.Process, err error) {
	if ve, err = sde.New(veSpec); err != nil {
		return nil, nil, nil, fmt.Errorf("demo: %w", err)
	}
	if vp, err = sde.New(vpSpec); err != nil {
		return nil, nil, nil, fmt.Errorf("demo: %w", err)
	}
	if subVP, err = sde.New(subVPSpec); err != nil {
		return nil, nil, nil, fmt.Errorf("demo: %w", err)
	}
	return ve, vp, subVP, nil
}

// Pictures are the files Run writes into Config.OutDir.
var Pictures = []string{"density_score.png", "langevin_paths.png", "samplers.png", "mixture1d.png", "objectives.png", "ode_vs_sde.png"}

// Run writes every picture into c.OutDir (an earlier picture of the same
// name is replaced; any other file there refuses the run before it starts)
// and returns the measured figures.
func Run(c Config) (*Report, error) {
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.Points < MinPoints || c.Points > MaxPoints {
		return nil, fmt.Errorf("demo: -points %d: need %d to %d", c.Points, MinPoints, MaxPoints)
	}
	// Before any work: each picture may replace an earlier one, nothing else.
	for _, name := range Pictures {
		if err := fsutil.CheckOutFile("-out", filepath.Join(c.OutDir, name), ".png", fsutil.PNGMagic); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
	}
	// The pictures are written as a set, renamed into place at the end: a
	// failure half-way leaves the earlier set as it was.
	set, err := fsutil.NewSet(c.OutDir)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	defer set.Abort()
	rep := &Report{}
	m := toy.Mixture2D()
	r := rand.New(rand.NewPCG(c.Seed, 1))
	save := func(name string, f func(w io.Writer) error) error {
		p := filepath.Join(c.OutDir, name)
		if !slices.Contains(Pictures, name) {
			return fmt.Errorf("demo: %s is not among the pictures checked before writing", name)
		}
		if err := set.Write(name, f); err != nil {
			return fmt.Errorf("demo: %s: %w", p, err)
		}
		fmt.Fprintf(c.Log, "drew %s\n", name)
		return nil
	}

	// 1. Density and score field.
	if err := save("density_score.png", func(w io.Writer) error { return plotDensityField(w, m, toy.Ring8()) }); err != nil {
		return nil, err
	}
	// 2. Langevin paths from one starting point.
	if err := save("langevin_paths.png", func(w io.Writer) error { return plotLangevinPaths(w, m, r) }); err != nil {
		return nil, err
	}
	// 3. Every sampler on the exact score.
	results, rows, err := runSamplers(m, c.Points, r, c.Log)
	if err != nil {
		return nil, err
	}
	rep.Samplers = rows
	if err := save("samplers.png", func(w io.Writer) error { return plotSamplers(w, m, results) }); err != nil {
		return nil, err
	}
	if err := save("mixture1d.png", func(w io.Writer) error { return plotMixture1D(w, c.Points, r) }); err != nil {
		return nil, err
	}
	// 4. Learned score fields, from data of their own generator, so that
	// the samplers above do not change them.
	models, orows, err := runObjectives(m, rand.New(rand.NewPCG(c.Seed, 2)))
	if err != nil {
		return nil, err
	}
	rep.Objectives = orows
	if err := save("objectives.png", func(w io.Writer) error { return plotObjectives(w, m, models, orows) }); err != nil {
		return nil, err
	}
	// 5. Probability-flow ODE paths against reverse-SDE paths.
	if err := save("ode_vs_sde.png", func(w io.Writer) error { return plotODEvsSDE(w, toy.Mixture1D(), r) }); err != nil {
		return nil, err
	}
	if rep.Files, err = set.Commit(); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(c.Log, "wrote %d pictures to %s\n", len(rep.Files), c.OutDir)
	return rep, nil
}

type samplerResult struct {
	name  string
	group int // the row of the samplers' picture
	x     []float64
}

// Rows of the samplers' picture.
const (
	groupLangevin = iota
	groupVE
	groupVP
	groupSubVP
)

func runSamplers(m *toy.Mixture, n int, r *rand.Rand, log io.Writer) ([]samplerResult, []Row, error) {
	ve, vp, subVP, err := processes()
	if err != nil {
		return nil, nil, err
	}
	exact := m.Sample(n, rand.New(rand.NewPCG(99, 1)))
	uniform := func() []float64 {
		x := make([]float64, 2*n)
		for i := range x {
			x[i] = 16*r.Float64() - 8
		}
		return x
	}
	prior := func(p sde.Process) func() []float64 {
		return func() []float64 {
			x := make([]float64, 2*n)
			sample.Prior(x, p, r)
			return x
		}
	}
	sig, err := sde.Geometric(20, 0.01, 20)
	if err != nil {
		return nil, nil, fmt.Errorf("demo: %w", err)
	}
	type run struct {
		name  string
		group int
		start func() []float64
		f     func(x []float64) (int, error)
	}
	// The continuous samplers see the mixture's exact score under their
	// process; the corrector's norms are over the whole batch (Dim 0) but
	// in the one row that shows why.
	em := func(p sde.Process) func(x []float64) (int, error) {
		return func(x []float64) (int, error) {
			return sample.EulerMaruyama(toy.Diffused{Mixture: m, Process: p}, x, sample.Continuous{Process: p, Steps: 1000}, r)
		}
	}
	pc := func(p sde.Process, dim int) func(x []float64) (int, error) {
		return func(x []float64) (int, error) {
			c := sample.Continuous{Process: p, Steps: 300, Corrector: 1, SNR: 0.16, Denoise: true, Dim: dim}
			return sample.PredictorCorrector(toy.Diffused{Mixture: m, Process: p}, x, c, r)
		}
	}
	rk45 := func(p sde.Process) func(x []float64) (int, error) {
		return func(x []float64) (int, error) {
			st, err := sample.ProbabilityFlowRK45(toy.Diffused{Mixture: m, Process: p}, x, sample.Continuous{Process: p, Tol: 1e-5})
			return st.Evals, err
		}
	}
	runs := []run{
		{"gradient ascent (no noise)", groupLangevin, uniform, func(x []float64) (int, error) {
			return 1000, sample.Langevin(m, x, 0, 0.1, 1000, false, r)
		}},
		{"Langevin, τ=0.1", groupLangevin, uniform, func(x []float64) (int, error) {
			return 1000, sample.Langevin(m, x, 0, 0.1, 1000, true, r)
		}},
		{"annealed Langevin", groupLangevin, uniform, func(x []float64) (int, error) {
			a := sample.Annealed{Sigmas: sig, StepsPerLevel: 100, Eps: 2e-5, Denoise: true}
			return 2001, sample.AnnealedLangevin(m, x, a, r)
		}},
		{"reverse SDE, Euler–Maruyama (VE)", groupVE, prior(ve), em(ve)},
		{"predictor–corrector (VE)", groupVE, prior(ve), pc(ve, 0)},
		{"predictor–corrector, per-sample norms (VE)", groupVE, prior(ve), pc(ve, 2)},
		{"probability-flow ODE, RK45 (VE)", groupVE, prior(ve), rk45(ve)},
		{"probability-flow ODE, RK4 ×100 (VE)", groupVE, prior(ve), func(x []float64) (int, error) {
			st, err := sample.ProbabilityFlowRK4(toy.Diffused{Mixture: m, Process: ve}, x, sample.Continuous{Process: ve, Steps: 100})
			return st.Evals, err
		}},
		{"reverse SDE, Euler–Maruyama (VP)", groupVP, prior(vp), em(vp)},
		{"predictor–corrector (VP)", groupVP, prior(vp), pc(vp, 0)},
		{"DDPM ancestral ×1000 (VP)", groupVP, prior(vp), func(x []float64) (int, error) {
			return sample.Ancestral(toy.Diffused{Mixture: m, Process: vp}, x, sample.Continuous{Process: vp, Steps: 1000, Denoise: true}, r)
		}},
		{"DDIM ×100 (VP)", groupVP, prior(vp), func(x []float64) (int, error) {
			return sample.DDIM(toy.Diffused{Mixture: m, Process: vp}, x, sample.Continuous{Process: vp, Steps: 100})
		}},
		{"probability-flow ODE, RK45 (VP)", groupVP, prior(vp), rk45(vp)},
		{"reverse SDE, Euler–Maruyama (sub-VP)", groupSubVP, prior(subVP), em(subVP)},
		{"predictor–corrector (sub-VP)", groupSubVP, prior(subVP), pc(subVP, 0)},
		{"probability-flow ODE, RK45 (sub-VP)", groupSubVP, prior(subVP), rk45(subVP)},
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
		fmt.Fprintf(log, "sampler %d of %d: %s, %.1f s\n", len(res)+1, len(runs), rn.name, secs)
		w := m.ModeWeights(x)
		var we float64
		for k := range w {
			we = math.Max(we, math.Abs(w[k]-m.Weights[k]))
		}
		k := min(n, 600)
		et := toy.PermutationEnergyTest(x[:2*k], exact[:2*k], 2, 200, 0.01, rand.New(rand.NewPCG(7, 7)))
		rows = append(rows, Row{Sampler: rn.name, Evals: evals, WeightError: we, Energy: et.Statistic, Threshold: et.Threshold, Seconds: secs})
		res = append(res, samplerResult{rn.name, rn.group, x})
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
