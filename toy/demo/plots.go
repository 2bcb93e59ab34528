package demo

import (
	"image/color"
	"io"
	"math"
	"math/rand/v2"

	"github.com/ncsn-go/ncsn/internal/plotutil"
	"github.com/ncsn-go/ncsn/sample"
	"github.com/ncsn-go/ncsn/sde"
	"github.com/ncsn-go/ncsn/toy"
	"github.com/ncsn-go/ncsn/toy/objective"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// densityGrid is log p on a grid, for contours.
type densityGrid struct {
	m      *toy.Mixture
	lo, hi float64
	n      int
	z      []float64
}

func newDensityGrid(m *toy.Mixture, lo, hi float64, n int) *densityGrid {
	g := &densityGrid{m: m, lo: lo, hi: hi, n: n, z: make([]float64, n*n)}
	for c := 0; c < n; c++ {
		for r := 0; r < n; r++ {
			g.z[c*n+r] = m.LogDensity([]float64{g.X(c), g.Y(r)}, 0)
		}
	}
	return g
}

func (g *densityGrid) Dims() (int, int)   { return g.n, g.n }
func (g *densityGrid) Z(c, r int) float64 { return g.z[c*g.n+r] }
func (g *densityGrid) X(c int) float64    { return g.lo + (g.hi-g.lo)*float64(c)/float64(g.n-1) }
func (g *densityGrid) Y(r int) float64    { return g.X(r) }

// field is a score field on a coarse grid, arrows scaled to a common length.
type field struct {
	lo, hi float64
	n      int
	v      []float64
}

func newField(s objective.Scorer, sigma, lo, hi float64, n int) (*field, error) {
	f := &field{lo: lo, hi: hi, n: n}
	pts := make([]float64, 0, 2*n*n)
	for c := 0; c < n; c++ {
		for r := 0; r < n; r++ {
			pts = append(pts, f.X(c), f.Y(r))
		}
	}
	f.v = make([]float64, len(pts))
	if err := s.Score(pts, sigma, f.v); err != nil {
		return nil, err
	}
	// Arrows show direction; their length grows slowly with the magnitude.
	step := (hi - lo) / float64(n-1)
	for i := 0; i < len(f.v); i += 2 {
		l := math.Hypot(f.v[i], f.v[i+1])
		if l > 0 {
			k := 0.45 * step * math.Min(1, math.Log1p(l)/2) / l
			f.v[i], f.v[i+1] = f.v[i]*k, f.v[i+1]*k
		}
	}
	return f, nil
}

func (f *field) Dims() (int, int) { return f.n, f.n }
func (f *field) Vector(c, r int) plotter.XY {
	i := 2 * (c*f.n + r)
	return plotter.XY{X: f.v[i], Y: f.v[i+1]}
}
func (f *field) X(c int) float64 { return f.lo + (f.hi-f.lo)*float64(c)/float64(f.n-1) }
func (f *field) Y(r int) float64 { return f.X(r) }

// arrows draws a field with arrowheads, so that the score's direction shows.
func arrows(f plotter.FieldXY) *plotter.Field {
	fd := plotter.NewField(f)
	fd.DrawGlyph = func(c vg.Canvas, sty draw.LineStyle, v plotter.XY) {
		if v.X == 0 && v.Y == 0 {
			return
		}
		c.SetLineWidth(sty.Width)
		c.SetColor(sty.Color)
		var pa vg.Path
		pa.Move(vg.Point{})
		pa.Line(vg.Point{X: 1})
		pa.Move(vg.Point{X: 0.65, Y: 0.25})
		pa.Line(vg.Point{X: 1})
		pa.Line(vg.Point{X: 0.65, Y: -0.25})
		c.Stroke(pa)
	}
	return fd
}

func newPlot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	return p
}

func square(p *plot.Plot, lo, hi float64) {
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = lo, hi, lo, hi
}

func points(x []float64, max int) plotter.XYs {
	n := min(len(x)/2, max)
	xy := make(plotter.XYs, n)
	for i := range xy {
		xy[i].X, xy[i].Y = x[2*i], x[2*i+1]
	}
	return xy
}

func plotDensityField(w io.Writer, m, ring *toy.Mixture) error {
	var ps []*plot.Plot
	for _, c := range []struct {
		name string
		m    *toy.Mixture
		lim  float64
	}{{"0.2 N((−5,−5), I) + 0.8 N((5,5), I)", m, 9}, {"ring of 8 modes", ring, 6}} {
		p := newPlot("log p (contours) and score grad log p: " + c.name)
		g := newDensityGrid(c.m, -c.lim, c.lim, 80)
		p.Add(plotter.NewContour(g, contourLevels(g), palette.Heat(8, 1)))
		f, err := newField(c.m, 0, -c.lim, c.lim, 21)
		if err != nil {
			return err
		}
		p.Add(arrows(f))
		square(p, -c.lim, c.lim)
		ps = append(ps, p)
	}
	return plotutil.WriteGrid(w, [][]*plot.Plot{ps}, 14*vg.Centimeter)
}

func contourLevels(g *densityGrid) []float64 {
	mx := math.Inf(-1)
	for _, z := range g.z {
		mx = math.Max(mx, z)
	}
	return []float64{mx - 12, mx - 9, mx - 6, mx - 4, mx - 2.5, mx - 1.2, mx - 0.4}
}

func plotLangevinPaths(w io.Writer, m *toy.Mixture, r *rand.Rand) error {
	p := newPlot("Langevin dynamics from (0, 0), τ = 0.05, 400 steps")
	g := newDensityGrid(m, -9, 9, 80)
	p.Add(plotter.NewContour(g, contourLevels(g), palette.Heat(8, 1)))
	cols := []color.RGBA{{0, 90, 200, 255}, {200, 40, 40, 255}, {30, 150, 60, 255}, {140, 60, 170, 255}, {20, 20, 20, 255}}
	for _, col := range cols {
		x := []float64{0, 0}
		path := plotter.XYs{{X: 0, Y: 0}}
		for s := 0; s < 400; s++ {
			if err := sample.Langevin(m, x, 0, 0.05, 1, true, r); err != nil {
				return err
			}
			path = append(path, plotter.XY{X: x[0], Y: x[1]})
		}
		l, err := plotter.NewLine(path)
		if err != nil {
			return err
		}
		l.Color = col
		l.Width = vg.Points(0.7)
		p.Add(l)
	}
	square(p, -9, 9)
	return plotutil.WriteGrid(w, [][]*plot.Plot{{p}}, 14*vg.Centimeter)
}

// plotSamplers draws each sampler's points over the true density, one row
// per group (Langevin; VE; VP; sub-VP), the exact samples first.
func plotSamplers(w io.Writer, m *toy.Mixture, res []samplerResult) error {
	g := newDensityGrid(m, -9, 9, 80)
	exact := m.Sample(1000, rand.New(rand.NewPCG(3, 3)))
	all := append([]samplerResult{{"exact samples", groupLangevin, exact}}, res...)
	cols := 0
	groups := map[int]int{}
	for _, s := range all {
		groups[s.group]++
		cols = max(cols, groups[s.group])
	}
	var rows [][]*plot.Plot
	for i, s := range all {
		w := m.ModeWeights(s.x)
		p := newPlot(s.name)
		p.X.Label.Text = "weights " + fmtWeights(w)
		p.Add(plotter.NewContour(g, contourLevels(g), palette.Heat(8, 1)))
		sc, err := plotter.NewScatter(points(s.x, 1000))
		if err != nil {
			return err
		}
		sc.GlyphStyle.Radius = vg.Points(1)
		sc.GlyphStyle.Color = color.RGBA{0, 60, 160, 255}
		p.Add(sc)
		square(p, -9, 9)
		if i == 0 || s.group != all[i-1].group {
			rows = append(rows, make([]*plot.Plot, 0, cols))
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], p)
	}
	for i := range rows {
		for len(rows[i]) < cols {
			rows[i] = append(rows[i], nil)
		}
	}
	return plotutil.WriteGrid(w, rows, 10*vg.Centimeter)
}

func fmtWeights(w []float64) string {
	s := ""
	for i, v := range w {
		if i > 0 {
			s += " / "
		}
		s += trim(v)
	}
	return s
}

func trim(v float64) string { return fmtFloat(v, 3) }

// plotMixture1D compares histograms of plain and annealed Langevin with the
// true density of the 1-D mixture.
func plotMixture1D(w io.Writer, n int, r *rand.Rand) error {
	m := toy.Mixture1D()
	start := func() []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = 20*r.Float64() - 10
		}
		return x
	}
	plain := start()
	if err := sample.Langevin(m, plain, 0, 0.1, 1000, true, r); err != nil {
		return err
	}
	annealed := start()
	sig, err := sde.Geometric(20, 0.01, 20)
	if err != nil {
		return err
	}
	if err := sample.AnnealedLangevin(m, annealed, sample.Annealed{Sigmas: sig, StepsPerLevel: 100, Eps: 2e-5, Denoise: true}, r); err != nil {
		return err
	}
	density := func(x float64) float64 { return math.Exp(m.LogDensity([]float64{x}, 0)) }
	// Both panels share one height that holds the tallest bar and the
	// true density's peak (the histogram's own range cut the red curve
	// off at the top of the first panel).
	top := 0.0
	for i := 0; i <= 2000; i++ {
		top = math.Max(top, density(-10+float64(i)/100))
	}
	var ps []*plot.Plot
	for _, c := range []struct {
		name string
		x    []float64
	}{{"Langevin, τ = 0.1", plain}, {"annealed Langevin", annealed}} {
		p := newPlot(c.name + ": 0.2 N(−5,1) + 0.8 N(5,1)")
		h, err := plotter.NewHist(plotter.Values(c.x), 60)
		if err != nil {
			return err
		}
		h.Normalize(1)
		for _, b := range h.Bins {
			top = math.Max(top, b.Weight)
		}
		h.FillColor = color.RGBA{120, 160, 220, 255}
		p.Add(h)
		f := plotter.NewFunction(density)
		f.Color = color.RGBA{200, 30, 30, 255}
		f.Width = vg.Points(1.5)
		f.Samples = 400
		p.Add(f)
		p.X.Min, p.X.Max = -10, 10
		ps = append(ps, p)
	}
	for _, p := range ps {
		p.Y.Min, p.Y.Max = 0, 1.05*top
	}
	return plotutil.WriteGrid(w, [][]*plot.Plot{ps}, 12*vg.Centimeter)
}

func plotObjectives(w io.Writer, m *toy.Mixture, models map[objective.Kind]*objective.Model, rows []ObjectiveRow) error {
	g := newDensityGrid(m, -9, 9, 60)
	mk := func(title string, s objective.Scorer, sigma float64) (*plot.Plot, error) {
		p := newPlot(title)
		p.Add(plotter.NewContour(g, contourLevels(g), palette.Heat(8, 1)))
		f, err := newField(s, sigma, -9, 9, 19)
		if err != nil {
			return nil, err
		}
		p.Add(arrows(f))
		square(p, -9, 9)
		return p, nil
	}
	truth, err := mk("true score grad log p", m, 0)
	if err != nil {
		return err
	}
	ps := []*plot.Plot{truth}
	for _, o := range rows {
		p, err := mk(o.Objective+": relative error "+fmtFloat(o.RelError, 4), models[objective.Kind(o.Objective)], o.Sigma)
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	return plotutil.WriteGrid(w, [][]*plot.Plot{ps[:3], ps[3:6]}, 10*vg.Centimeter)
}

// plotODEvsSDE draws x(t) for the 1-D mixture m under VE and VP:
// deterministic probability-flow paths (RK4, 100 steps) and stochastic
// reverse-SDE paths (Euler–Maruyama, 400 steps) from the same prior points.
// The paths are the samplers' own: a score that records x at the first
// evaluation of each step (every RK4 step evaluates first at its start).
func plotODEvsSDE(w io.Writer, m *toy.Mixture, r *rand.Rand) error {
	ve, vp, _, err := processes()
	if err != nil {
		return err
	}
	const paths = 24
	var rows [][]*plot.Plot
	for _, pr := range []struct {
		name string
		p    sde.Process
		lim  float64
	}{{"VE", ve, 30}, {"VP", vp, 8}} {
		var row []*plot.Plot
		for _, kind := range []string{"probability-flow ODE", "reverse SDE"} {
			x := make([]float64, paths)
			sample.Prior(x, pr.p, rand.New(rand.NewPCG(42, 42))) // same starting points for both
			lines := make([]plotter.XYs, paths)
			calls := 0
			record := sample.ScoreFunc(func(x []float64, sigma float64, dst []float64) error {
				if kind == "reverse SDE" || calls%4 == 0 {
					t := pr.p.TimeOf(sigma)
					for i := range lines {
						lines[i] = append(lines[i], plotter.XY{X: t, Y: x[i]})
					}
				}
				calls++
				return toy.Diffused{Mixture: m, Process: pr.p}.Score(x, sigma, dst)
			})
			c := sample.Continuous{Process: pr.p, Steps: 400, Dim: 1}
			end := 0.0 // Euler–Maruyama's last step ends at t = 0, the ODE at ε
			if kind == "reverse SDE" {
				_, err = sample.EulerMaruyama(record, x, c, r)
			} else {
				c.Steps = 100
				end = sde.SamplingEps(pr.p)
				_, err = sample.ProbabilityFlowRK4(record, x, c)
			}
			if err != nil {
				return err
			}
			p := newPlot(kind + " (" + pr.name + "): x(t), t from 1 to 0")
			p.X.Label.Text = "t"
			for i, line := range lines {
				line = append(line, plotter.XY{X: end, Y: x[i]})
				l, err := plotter.NewLine(line)
				if err != nil {
					return err
				}
				l.Width = vg.Points(0.6)
				l.Color = color.RGBA{uint8(30 + 9*i), 60, uint8(220 - 8*i), 255}
				p.Add(l)
			}
			p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, -pr.lim, pr.lim
			row = append(row, p)
		}
		rows = append(rows, row)
	}
	return plotutil.WriteGrid(w, rows, 12*vg.Centimeter)
}
