// Package toy holds distributions whose density and score are known exactly:
// Gaussians and mixtures of Gaussians in any dimension. Convolved with
// N(0, σ²I) a mixture stays a mixture (each covariance grows by σ²I), and so
// does the law of m·X + s·Z, X from the mixture and Z ~ N(0, I) (component k
// becomes N(m μ_k, m²Σ_k + s²I)), the marginal of every diffusion process of
// package sde. So the score of every noised version is exact too, and
// samplers and score-matching objectives can be checked against the truth.
package toy

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/ncsn-go/ncsn/sde"
	"gonum.org/v1/gonum/mat"
)

// ErrSpec is wrapped by every error about a malformed distribution.
var ErrSpec = errors.New("toy: bad distribution")

// Gaussian is N(Mean, Cov).
type Gaussian struct {
	Mean []float64
	Cov  *mat.SymDense
}

// Mixture is Σ_k Weights[k] N(Comps[k]). Build it with NewMixture (or the
// constructors that call it): a literal has no dimension, and its methods
// return errors, NaN or nil.
type Mixture struct {
	Weights []float64
	Comps   []Gaussian
	dim     int
	mu      sync.Mutex
	cache   map[scaling][]noised // per (m, s): mean, inverse covariance, log normaliser, Cholesky factor
}

// scaling names the law of m·X + s·Z.
type scaling struct{ mean, std float64 }

// maxCache bounds the cached scalings: samplers with adaptive steps ask for a
// new one at nearly every evaluation.
const maxCache = 4096

type noised struct {
	mean    []float64 // m μ_k
	inv     *mat.SymDense
	logNorm float64 // log weight − ½ log det(2π Σ)
	chol    *mat.TriDense
}

// NewMixture validates and builds a mixture; weights are normalised.
func NewMixture(weights []float64, comps []Gaussian) (*Mixture, error) {
	if len(weights) == 0 || len(weights) != len(comps) {
		return nil, fmt.Errorf("%w: %d weights for %d components", ErrSpec, len(weights), len(comps))
	}
	var sum float64
	for _, w := range weights {
		if !(w > 0) {
			return nil, fmt.Errorf("%w: weight %g", ErrSpec, w)
		}
		sum += w
	}
	d := len(comps[0].Mean)
	m := &Mixture{Weights: make([]float64, len(weights)), Comps: comps, dim: d, cache: map[scaling][]noised{}}
	for k, w := range weights {
		m.Weights[k] = w / sum
		c := comps[k]
		if len(c.Mean) != d || c.Cov == nil || c.Cov.SymmetricDim() != d {
			return nil, fmt.Errorf("%w: component %d does not have dimension %d", ErrSpec, k, d)
		}
	}
	if _, err := m.level(1, 0); err != nil {
		return nil, err
	}
	return m, nil
}

// Dim is the dimension of the space.
func (m *Mixture) Dim() int { return m.dim }

// level returns the components of m·X + s·Z: N(m μ_k, m²Σ_k + s²I).
func (m *Mixture) level(mean, std float64) ([]noised, error) {
	if !(mean > 0) || math.IsInf(mean, 0) || !(std >= 0) || math.IsInf(std, 0) {
		return nil, fmt.Errorf("%w: scaling m = %g, s = %g (need m > 0, s ≥ 0, both finite)", ErrSpec, mean, std)
	}
	if m.dim == 0 {
		return nil, fmt.Errorf("%w: a mixture not built by NewMixture", ErrSpec)
	}
	key := scaling{mean, std}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cache == nil {
		m.cache = map[scaling][]noised{}
	}
	if l, ok := m.cache[key]; ok {
		return l, nil
	}
	l := make([]noised, len(m.Comps))
	for k, c := range m.Comps {
		cov := mat.NewSymDense(m.dim, nil)
		cov.CopySym(c.Cov)
		if mean != 1 {
			cov.ScaleSym(mean*mean, cov)
		}
		for i := 0; i < m.dim; i++ {
			cov.SetSym(i, i, cov.At(i, i)+std*std)
		}
		mu := make([]float64, m.dim)
		for i := range mu {
			mu[i] = mean * c.Mean[i]
		}
		var ch mat.Cholesky
		if !ch.Factorize(cov) {
			return nil, fmt.Errorf("%w: covariance of component %d is not positive definite", ErrSpec, k)
		}
		inv := mat.NewSymDense(m.dim, nil)
		if err := ch.InverseTo(inv); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSpec, err)
		}
		var lt mat.TriDense
		ch.LTo(&lt)
		l[k] = noised{mean: mu, inv: inv, chol: &lt,
			logNorm: math.Log(m.Weights[k]) - 0.5*(float64(m.dim)*math.Log(2*math.Pi)+ch.LogDet())}
	}
	if len(m.cache) >= maxCache {
		clear(m.cache)
	}
	m.cache[key] = l
	return l, nil
}

// logTerms writes log(w_k N(x; m μ_k, m²Σ_k + s²I)) for each k, and
// Σ⁻¹(x−mμ) into grads[k] when grads is not nil; diff is scratch of length d.
func (m *Mixture) logTerms(x []float64, l []noised, terms []float64, grads [][]float64, diff []float64) {
	d := m.dim
	for k := range m.Comps {
		for i := range diff {
			diff[i] = x[i] - l[k].mean[i]
		}
		var q float64
		for i := 0; i < d; i++ {
			var s float64
			for j := 0; j < d; j++ {
				s += l[k].inv.At(i, j) * diff[j]
			}
			q += diff[i] * s
			if grads != nil {
				grads[k][i] = s
			}
		}
		terms[k] = l[k].logNorm - q/2
	}
}

// LogDensity is log p_σ(x), the mixture convolved with N(0, σ²I) (σ = 0: the
// mixture itself).
func (m *Mixture) LogDensity(x []float64, sigma float64) float64 {
	return m.ScaledLogDensity(x, 1, sigma)
}

// ScaledLogDensity is the log density at x of m·X + s·Z, X from the mixture
// and Z ~ N(0, I) independent (NaN for m ≤ 0 or s < 0).
func (m *Mixture) ScaledLogDensity(x []float64, mean, std float64) float64 {
	l, err := m.level(mean, std)
	if err != nil || len(x) != m.dim {
		return math.NaN()
	}
	terms := make([]float64, len(m.Comps))
	m.logTerms(x, l, terms, nil, make([]float64, m.dim))
	return logSumExp(terms)
}

// Score writes ∇ₓ log p_σ(x) for a batch of points (back to back) into dst:
// the responsibilities times each component's −(Σ_k+σ²I)⁻¹(x−μ_k). It
// implements sample.Score for the VE processes, whose marginal is the data
// plus N(0, σ²I).
func (m *Mixture) Score(x []float64, sigma float64, dst []float64) error {
	return m.ScaledScore(x, 1, sigma, dst)
}

// ScaledScore writes the score of m·X + s·Z (X from the mixture, Z ~ N(0, I)
// independent) for a batch of points into dst: the responsibilities times
// each component's −(m²Σ_k + s²I)⁻¹(x − m μ_k). With m = 1 it is Score.
func (m *Mixture) ScaledScore(x []float64, mean, std float64, dst []float64) error {
	l, err := m.level(mean, std)
	if err != nil {
		return err
	}
	d := m.dim
	if len(x)%d != 0 || len(dst) != len(x) {
		return fmt.Errorf("toy: %d values into %d for dimension %d", len(x), len(dst), d)
	}
	K := len(m.Comps)
	terms := make([]float64, K)
	grads := make([][]float64, K)
	for k := range grads {
		grads[k] = make([]float64, d)
	}
	diff := make([]float64, d)
	for p := 0; p < len(x)/d; p++ {
		xp, out := x[p*d:(p+1)*d], dst[p*d:(p+1)*d]
		m.logTerms(xp, l, terms, grads, diff)
		lse := logSumExp(terms)
		clear(out)
		for k := 0; k < K; k++ {
			r := math.Exp(terms[k] - lse)
			for i := range out {
				out[i] -= r * grads[k][i]
			}
		}
	}
	return nil
}

// Diffused is a mixture carried forward by a diffusion process: p_t, the law
// of m(t)·X + s(t)·Z. Its Score(x, σ) is the exact score of p_t at the time
// t = Process.TimeOf(σ) where the marginal's noise scale s(t) is σ, with
// m = the marginal's mean factor there: the convention of the samplers of
// package sample, which it implements sample.Score for. For VE processes
// (m = 1) it is the mixture's own Score.
type Diffused struct {
	Mixture *Mixture
	Process sde.Process
}

// Score writes the exact score of p_t, s(t) = sigma, for a batch of points.
func (d Diffused) Score(x []float64, sigma float64, dst []float64) error {
	if d.Mixture == nil || d.Process == nil {
		return fmt.Errorf("%w: diffused mixture without a mixture or a process", ErrSpec)
	}
	t := d.Process.TimeOf(sigma)
	mean, _ := d.Process.Marginal(t)
	if math.IsNaN(t) || math.IsInf(t, 0) || !(mean > 0) || math.IsInf(mean, 0) {
		return fmt.Errorf("%w: the %s process has no time with noise scale %g (t = %g, m = %g)", ErrSpec, d.Process.Name(), sigma, t, mean)
	}
	return d.Mixture.ScaledScore(x, mean, sigma, dst)
}

// Assign returns, for each point, the index of the component most
// likely to have produced it (at σ = 0).
func (m *Mixture) Assign(x []float64) []int {
	l, err := m.level(1, 0)
	if err != nil {
		return nil
	}
	d := m.dim
	terms := make([]float64, len(m.Comps))
	diff := make([]float64, d)
	out := make([]int, len(x)/d)
	for p := range out {
		m.logTerms(x[p*d:(p+1)*d], l, terms, nil, diff)
		best := 0
		for k := range terms {
			if terms[k] > terms[best] {
				best = k
			}
		}
		out[p] = best
	}
	return out
}

// Sample draws n points, back to back.
func (m *Mixture) Sample(n int, r *rand.Rand) []float64 {
	l, err := m.level(1, 0)
	if err != nil {
		return nil
	}
	d := m.dim
	x := make([]float64, n*d)
	z := make([]float64, d)
	for p := 0; p < n; p++ {
		u, k := r.Float64(), 0
		for k < len(m.Weights)-1 && u >= m.Weights[k] {
			u -= m.Weights[k]
			k++
		}
		for i := range z {
			z[i] = r.NormFloat64()
		}
		for i := 0; i < d; i++ {
			v := m.Comps[k].Mean[i]
			for j := 0; j <= i; j++ {
				v += l[k].chol.At(i, j) * z[j]
			}
			x[p*d+i] = v
		}
	}
	return x
}

func logSumExp(v []float64) float64 {
	mx := math.Inf(-1)
	for _, x := range v {
		mx = math.Max(mx, x)
	}
	if math.IsInf(mx, -1) {
		return mx
	}
	var s float64
	for _, x := range v {
		s += math.Exp(x - mx)
	}
	return mx + math.Log(s)
}

// iso returns s²I in d dimensions.
func iso(d int, s2 float64) *mat.SymDense {
	c := mat.NewSymDense(d, nil)
	for i := 0; i < d; i++ {
		c.SetSym(i, i, s2)
	}
	return c
}

// Mixture1D is the classic 1-D example: 0.2 N(−5, 1) + 0.8 N(5, 1).
func Mixture1D() *Mixture {
	m, _ := NewMixture([]float64{0.2, 0.8}, []Gaussian{{[]float64{-5}, iso(1, 1)}, {[]float64{5}, iso(1, 1)}})
	return m
}

// Mixture2D has unequal weights and well separated modes (NCSN's Figure 2
// setting): 0.2 N((−5,−5), I) + 0.8 N((5,5), I).
func Mixture2D() *Mixture {
	m, _ := NewMixture([]float64{0.2, 0.8}, []Gaussian{{[]float64{-5, -5}, iso(2, 1)}, {[]float64{5, 5}, iso(2, 1)}})
	return m
}

// Ring8 is 8 equal modes N(·, 0.3² I) on a circle of radius 4.
func Ring8() *Mixture {
	w := make([]float64, 8)
	cs := make([]Gaussian, 8)
	for k := range cs {
		a := 2 * math.Pi * float64(k) / 8
		w[k] = 1
		cs[k] = Gaussian{Mean: []float64{4 * math.Cos(a), 4 * math.Sin(a)}, Cov: iso(2, 0.09)}
	}
	m, _ := NewMixture(w, cs)
	return m
}

// NewGaussian is N(mean, cov) as a one-component mixture.
func NewGaussian(mean []float64, cov *mat.SymDense) (*Mixture, error) {
	return NewMixture([]float64{1}, []Gaussian{{Mean: mean, Cov: cov}})
}
