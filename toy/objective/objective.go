// Package objective trains small score networks on low-dimensional data with
// the classic score-matching objectives, so that each can be compared with
// the true score of a known distribution (package toy):
//
//   - ESM: explicit score matching against the score of a kernel density
//     estimate, ½E‖s_θ(x) − ∇log q_h(x)‖²;
//   - ISM: implicit score matching (Hyvärinen), E[tr ∇ₓs_θ(x) + ½‖s_θ(x)‖²],
//     with the Jacobian trace computed exactly;
//   - DSM: denoising score matching at one σ, ½E‖s_θ(x+σz) + z/σ‖²;
//   - SSM: sliced score matching, E[vᵀ∇ₓs_θ(x)v + ½(vᵀs_θ(x))²], v ~ N(0, I);
//   - NCSN: noise-conditional DSM over geometric σ with λ(σ) = σ².
//
// The network is an MLP of Gorgonia's own operators; derivatives of s_θ with
// respect to x are forward-mode tangent passes written into the graph, so
// gorgonia.Grad only differentiates once (with respect to θ).
package objective

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/ncsn-go/ncsn/nn"
	"github.com/ncsn-go/ncsn/sde"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Kind names an objective.
type Kind string

const (
	ESM  Kind = "esm"
	ISM  Kind = "ism"
	DSM  Kind = "dsm"
	SSM  Kind = "ssm"
	NCSN Kind = "ncsn"
)

// Kinds lists every objective.
var Kinds = []Kind{ESM, ISM, DSM, SSM, NCSN}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("objective: bad config")

// Config is one training run.
type Config struct {
	Kind     Kind
	Hidden   int     // MLP width (two hidden layers)
	Steps    int     // Adam steps
	Batch    int     // points per step
	LR       float64 // Adam learning rate
	Sigma    float64 // DSM's σ; ESM's kernel bandwidth h
	SigmaMax float64 // NCSN's σ₁
	SigmaMin float64 // NCSN's σ_L
	Levels   int     // NCSN's L
	Scale    float64 // inputs are divided by Scale (the data's spread) before the MLP
	Seed     uint64
}

// Defaults returns settings that learn the 2-D presets of package toy.
func Defaults(k Kind) Config {
	return Config{Kind: k, Hidden: 64, Steps: 3000, Batch: 256, LR: 3e-3, Sigma: 0.3,
		SigmaMax: 10, SigmaMin: 0.1, Levels: 10, Scale: 5, Seed: 1}
}

// Model is a trained score network s_θ(x) (or s_θ(x, σ) for NCSN).
type Model struct {
	cfg    Config
	dim    int
	params [][]float64 // W1 b1 W2 b2 W3 b3, row-major
	Losses []float64   // training loss per step
}

// mlp is the network built on a graph.
type mlp struct {
	w   []*G.Node
	out *G.Node // s, (B, d)
	// Directional derivatives vᵀJv for the given tangents.
	jvp []*G.Node
}

func buildMLP(g *G.ExprGraph, x *G.Node, inScale float64, invSigma *G.Node, tangents []*G.Node, w []*G.Node) (*mlp, error) {
	m := &mlp{w: w}
	lin := func(h, w, b *G.Node) (*G.Node, error) {
		a, err := G.Mul(h, w)
		if err != nil {
			return nil, err
		}
		return G.BroadcastAdd(a, b, nil, []byte{0})
	}
	xs, err := G.Mul(x, G.NewConstant(1/inScale))
	if err != nil {
		return nil, err
	}
	a1, err := lin(xs, w[0], w[1])
	if err != nil {
		return nil, err
	}
	h1, err := G.Tanh(a1)
	if err != nil {
		return nil, err
	}
	a2, err := lin(h1, w[2], w[3])
	if err != nil {
		return nil, err
	}
	h2, err := G.Tanh(a2)
	if err != nil {
		return nil, err
	}
	if m.out, err = lin(h2, w[4], w[5]); err != nil {
		return nil, err
	}
	if invSigma != nil {
		if m.out, err = G.HadamardProd(m.out, invSigma); err != nil {
			return nil, err
		}
	}
	// tanh' = 1 − tanh²
	d1, err := G.Sub(G.NewConstant(1.0), G.Must(G.Square(h1)))
	if err != nil {
		return nil, err
	}
	d2, err := G.Sub(G.NewConstant(1.0), G.Must(G.Square(h2)))
	if err != nil {
		return nil, err
	}
	for _, v := range tangents {
		// J v = W3ᵀ-side product of the tangent pushed through both layers.
		t1, err := G.Mul(v, w[0])
		if err != nil {
			return nil, err
		}
		t1 = G.Must(G.Mul(t1, G.NewConstant(1/inScale)))
		t1 = G.Must(G.HadamardProd(t1, d1))
		t2 := G.Must(G.HadamardProd(G.Must(G.Mul(t1, w[2])), d2))
		jv := G.Must(G.Mul(t2, w[4]))
		if invSigma != nil {
			jv = G.Must(G.HadamardProd(jv, invSigma))
		}
		vjv, err := G.Sum(G.Must(G.HadamardProd(v, jv)), 1)
		if err != nil {
			return nil, err
		}
		m.jvp = append(m.jvp, vjv)
	}
	return m, nil
}

func (c Config) validate() error {
	switch {
	case c.Hidden < 1 || c.Steps < 1 || c.Batch < 2 || !(c.LR > 0) || !(c.Scale > 0):
		return fmt.Errorf("%w: %+v", ErrConfig, c)
	case (c.Kind == DSM || c.Kind == ESM) && !(c.Sigma > 0):
		return fmt.Errorf("%w: %s needs σ > 0", ErrConfig, c.Kind)
	case c.Kind == NCSN && (!(c.SigmaMin > 0) || !(c.SigmaMax > c.SigmaMin) || c.Levels < 2):
		return fmt.Errorf("%w: NCSN needs σ₁ > σ_L > 0 and L ≥ 2", ErrConfig)
	}
	for _, k := range Kinds {
		if c.Kind == k {
			return nil
		}
	}
	return fmt.Errorf("%w: unknown objective %q", ErrConfig, c.Kind)
}

// Train fits a score network to the points of data (n×d, back to back).
func Train(c Config, data []float64, d int) (*Model, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	if d < 1 || len(data)%d != 0 || len(data)/d < c.Batch {
		return nil, fmt.Errorf("%w: %d values of dimension %d for batch %d", ErrConfig, len(data), d, c.Batch)
	}
	r := rand.New(rand.NewPCG(c.Seed, 0x6f626a))
	in := d
	if c.Kind == NCSN {
		in = d + 1 // x and log σ
	}
	h, B := c.Hidden, c.Batch
	g := G.NewGraph()
	shapes := [][]int{{in, h}, {1, h}, {h, h}, {1, h}, {h, d}, {1, d}}
	var w []*G.Node
	for i, s := range shapes {
		fan := float64(s[0])
		if i%2 == 1 {
			fan = float64(shapes[i-1][0])
		}
		v := make([]float64, s[0]*s[1])
		for j := range v {
			v[j] = (2*r.Float64() - 1) / math.Sqrt(fan)
		}
		w = append(w, G.NewMatrix(g, G.Float64, G.WithShape(s...), G.WithName(fmt.Sprintf("p%d", i)),
			G.WithValue(tensor.New(tensor.WithShape(s...), tensor.WithBacking(v)))))
	}
	mat := func(name string, cols int) (*G.Node, []float64) {
		v := make([]float64, B*cols)
		return G.NewMatrix(g, G.Float64, G.WithShape(B, cols), G.WithName(name),
			G.WithValue(tensor.New(tensor.WithShape(B, cols), tensor.WithBacking(v)))), v
	}
	x, xv := mat("x", in)
	var tangents []*G.Node
	var tv [][]float64
	switch c.Kind {
	case ISM:
		for k := 0; k < d; k++ {
			n, v := mat(fmt.Sprintf("e%d", k), d)
			for b := 0; b < B; b++ {
				v[b*d+k] = 1
			}
			tangents, tv = append(tangents, n), append(tv, v)
		}
	case SSM:
		n, v := mat("v", d)
		tangents, tv = append(tangents, n), append(tv, v)
	}
	var invSigma *G.Node
	var isv []float64
	if c.Kind == NCSN {
		invSigma, isv = mat("inv_sigma", d)
	}
	net, err := buildMLP(g, x, c.Scale, invSigma, tangents, w)
	if err != nil {
		return nil, err
	}
	s := net.out
	target, tgv := mat("target", d) // ESM: ∇log q_h; DSM/NCSN: −z/σ (times σ for NCSN)
	var loss *G.Node
	half := G.NewConstant(0.5)
	meanB := G.NewConstant(1 / float64(B))
	sqNorm := func(n *G.Node) *G.Node { return G.Must(G.Sum(G.Must(G.Square(n)))) }
	switch c.Kind {
	case ESM, DSM:
		loss = G.Must(G.Mul(G.Must(G.Mul(sqNorm(G.Must(G.Sub(s, target))), half)), meanB))
	case NCSN:
		// ½‖σ s + z‖²: the target holds −z and the weight σ is 1/inv_sigma.
		ss := G.Must(G.HadamardDiv(s, invSigma))
		loss = G.Must(G.Mul(G.Must(G.Mul(sqNorm(G.Must(G.Sub(ss, target))), half)), meanB))
	case ISM:
		tr := net.jvp[0]
		for _, j := range net.jvp[1:] {
			tr = G.Must(G.Add(tr, j))
		}
		loss = G.Must(G.Mul(G.Must(G.Add(G.Must(G.Sum(tr)), G.Must(G.Mul(sqNorm(s), half)))), meanB))
	case SSM:
		vs := G.Must(G.Sum(G.Must(G.HadamardProd(tangents[0], s)), 1))
		loss = G.Must(G.Mul(G.Must(G.Add(G.Must(G.Sum(net.jvp[0])), G.Must(G.Mul(sqNorm(vs), half)))), meanB))
	}
	if _, err := G.Grad(loss, w...); err != nil {
		return nil, fmt.Errorf("objective: differentiating the %s loss: %w", c.Kind, err)
	}
	// Gorgonia's own operators only: the hashes are fixed by the graph's
	// shape, so a collision cannot be built away, only refused.
	if err := nn.CheckHashes(g); err != nil {
		return nil, fmt.Errorf("objective: %w", err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(w...))
	defer vm.Close()
	solver := G.NewAdamSolver(G.WithLearnRate(c.LR))
	n := len(data) / d
	var kdeScore []float64 // ∇log q_h at every data point, computed once
	if c.Kind == ESM {
		kde := NewKDE(data, d, c.Sigma)
		kdeScore = make([]float64, len(data))
		for i := 0; i < n; i++ {
			kde.Score(data[i*d:(i+1)*d], kdeScore[i*d:(i+1)*d])
		}
	}
	var sigmas []float64
	if c.Kind == NCSN {
		var err error
		if sigmas, err = sde.Geometric(c.SigmaMax, c.SigmaMin, c.Levels); err != nil {
			return nil, fmt.Errorf("objective: %w", err)
		}
	}
	model := &Model{cfg: c, dim: d}
	for step := 0; step < c.Steps; step++ {
		for b := 0; b < B; b++ {
			idx := r.IntN(n)
			p := data[idx*d:][:d]
			switch c.Kind {
			case DSM:
				for k := 0; k < d; k++ {
					z := r.NormFloat64()
					xv[b*in+k] = p[k] + c.Sigma*z
					tgv[b*d+k] = -z / c.Sigma
				}
			case NCSN:
				sg := sigmas[r.IntN(len(sigmas))]
				for k := 0; k < d; k++ {
					z := r.NormFloat64()
					xv[b*in+k] = p[k] + sg*z
					tgv[b*d+k] = -z
					isv[b*d+k] = 1 / sg
				}
				xv[b*in+d] = math.Log(sg) * c.Scale // the MLP divides every input by Scale
			case ESM:
				copy(xv[b*in:], p)
				copy(tgv[b*d:], kdeScore[idx*d:(idx+1)*d])
			default:
				copy(xv[b*in:], p)
			}
			if c.Kind == SSM {
				for k := 0; k < d; k++ {
					tv[0][b*d+k] = r.NormFloat64()
				}
			}
		}
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			return nil, fmt.Errorf("objective: step %d: %w", step, err)
		}
		model.Losses = append(model.Losses, loss.Value().Data().(float64))
		if err := solver.Step(G.NodesToValueGrads(w)); err != nil {
			return nil, err
		}
	}
	for _, p := range w {
		model.params = append(model.params, append([]float64(nil), p.Value().Data().([]float64)...))
	}
	return model, nil
}

// Score evaluates the trained network at points x (back to back), writing
// into dst; sigma is the noise level for NCSN models and ignored otherwise.
// It implements sample.Score.
func (m *Model) Score(x []float64, sigma float64, dst []float64) error {
	d := m.dim
	if len(x)%d != 0 || len(dst) != len(x) {
		return fmt.Errorf("objective: %d values into %d for dimension %d", len(x), len(dst), d)
	}
	in := d
	if m.cfg.Kind == NCSN {
		in++
		if !(sigma > 0) {
			return fmt.Errorf("objective: an NCSN model needs σ > 0, got %g", sigma)
		}
	}
	h := m.cfg.Hidden
	p := m.params
	xin := make([]float64, in)
	h1, h2 := make([]float64, h), make([]float64, h)
	for q := 0; q < len(x)/d; q++ {
		for k := 0; k < d; k++ {
			xin[k] = x[q*d+k] / m.cfg.Scale
		}
		if m.cfg.Kind == NCSN {
			xin[d] = math.Log(sigma)
		}
		layer(xin, p[0], p[1], h1, true)
		layer(h1, p[2], p[3], h2, true)
		out := dst[q*d : (q+1)*d]
		layer(h2, p[4], p[5], out, false)
		if m.cfg.Kind == NCSN {
			for k := range out {
				out[k] /= sigma
			}
		}
	}
	return nil
}

func layer(in, w, b, out []float64, act bool) {
	n := len(out)
	for j := 0; j < n; j++ {
		s := b[j]
		for i, v := range in {
			s += v * w[i*n+j]
		}
		if act {
			s = math.Tanh(s)
		}
		out[j] = s
	}
}
