// Package sde is the diffusion process of score-based models, and the only
// place where σ, β and t are turned into one another: NCSN's discrete ladder
// of noise levels, the continuous variance-exploding (VE), variance-preserving
// (VP, DDPM's forward process in the limit) and sub-VP SDEs of Song et al.
// (2021), NCSNv2's rules for choosing σ from the data, the geometric
// ladders themselves, the times samplers stop at (SamplingEps), and EDM's
// preconditioning and log-normal training σ (precond.go).
//
// Every process has a linear drift, dx = a(t)·x dt + g(t) dw on t ∈ [0, 1],
// so its marginal given the data is Gaussian: x_t | x₀ ~ N(m(t)·x₀, s(t)²I).
// Score networks are conditioned on s(t), the marginal's noise scale, which
// each process maps back to t (TimeOf), so a sampler can drive a network
// through any process. Everything is float64.
package sde

import (
	"fmt"
	"math"
)

// Process is a forward diffusion dx = a(t)·x dt + g(t) dw on [0, 1].
type Process interface {
	// Name is the process's name: "ncsn", "ve", "vp" or "subvp".
	Name() string
	// Marginal returns m(t) and s(t): x_t | x₀ ~ N(m(t)·x₀, s(t)² I).
	Marginal(t float64) (mean, std float64)
	// Coefficients returns the drift coefficient a(t) and the diffusion g(t).
	Coefficients(t float64) (drift, diffusion float64)
	// TimeOf inverts the marginal's noise scale: the t with s(t) = std.
	TimeOf(std float64) float64
	// PriorStd is the standard deviation of the prior N(0, PriorStd² I)
	// that the reverse process starts from at t = 1.
	PriorStd() float64
	// Discretize returns the step from t − dt to t of the process's own
	// discrete chain (NCSN's ladder, DDPM's β_i): x_t = (1+f)·x_{t−dt} + G·z.
	// score_sde's reverse-diffusion predictor inverts it as
	// x_{t−dt} = x − f·x + G²·s(x, t) + G·z.
	Discretize(t, dt float64) (f, G float64)
	// Eps is the smallest t that training draws and likelihoods reach (the
	// samplers stop at SamplingEps, later for VP and sub-VP).
	Eps() float64
	// Spec is the process's description, saved with checkpoints.
	Spec() Spec
}

// Spec names a process and its parameters; New builds it. The zero values
// of the parameters a process does not use are omitted when it is saved.
type Spec struct {
	Name     string    `json:"name"`
	SigmaMin float64   `json:"sigma_min,omitempty"` // ve
	SigmaMax float64   `json:"sigma_max,omitempty"` // ve
	Sigmas   []float64 `json:"sigmas,omitempty"`    // ncsn: σ₁ > … > σ_L
	BetaMin  float64   `json:"beta_min,omitempty"`  // vp, subvp
	BetaMax  float64   `json:"beta_max,omitempty"`  // vp, subvp
	// MinT is the smallest time of training and likelihoods, and of
	// sampling where it is not the default (0: the default, 1e-5; VP and
	// sub-VP then sample to 1e-3, see SamplingEps).
	MinT float64 `json:"eps,omitempty"`
}

// Names are the processes New knows, "ncsn" first.
var Names = []string{"ncsn", "ve", "vp", "subvp"}

// Default returns the default spec of a process by name: NCSN's MNIST ladder
// (σ 1 → 0.01 over 10 levels), VE from σ_max = 25 (above the largest pairwise
// distance of MNIST and Fashion-MNIST, NCSNv2's technique 1; 50 for CIFAR-10
// in the trainer's presets) to 0.01, and β from 0.1 to 20 for VP and sub-VP,
// as score_sde uses them.
func Default(name string) (Spec, error) {
	switch name {
	case "ncsn":
		s, err := Geometric(1, 0.01, 10)
		return Spec{Name: name, Sigmas: s}, err
	case "ve":
		return Spec{Name: name, SigmaMin: 0.01, SigmaMax: 25}, nil
	case "vp", "subvp":
		return Spec{Name: name, BetaMin: 0.1, BetaMax: 20}, nil
	}
	return Spec{}, fmt.Errorf("%w: unknown process %q (ncsn, ve, vp or subvp)", ErrSchedule, name)
}

const defaultEps = 1e-5

// vpSamplingEps is where score_sde's samplers stop the VP and sub-VP
// processes (run_lib.py's sampling_eps); their training and likelihoods go
// down to defaultEps.
const vpSamplingEps = 1e-3

// SamplingEps is the smallest time the samplers reach: 10⁻³ for VP and
// sub-VP, as score_sde samples them (below it s(t) < 0.01, where the
// network, trained on t ~ U(10⁻⁵, 1), has seen few draws), p.Eps() for the
// others, or where a spec sets a smallest time other than the default.
func SamplingEps(p Process) float64 {
	var v *VP
	switch q := p.(type) {
	case *VP:
		v = q
	case *SubVP:
		v = &q.VP
	}
	if v != nil && v.eps == defaultEps {
		return vpSamplingEps
	}
	return p.Eps()
}

// SamplingTimes is the samplers' grid t_0 = 1 > … > t_{N−1} = ε of
// score_sde's linspace(1, ε, N), ε = SamplingEps(p), and t_N = 0 (n+1
// times); nil for n < 1.
func SamplingTimes(p Process, n int) []float64 {
	if n < 1 {
		return nil
	}
	ts := make([]float64, n+1)
	ts[0] = 1
	if n > 1 {
		eps := SamplingEps(p)
		for i := 1; i < n-1; i++ {
			ts[i] = 1 + (eps-1)*float64(i)/float64(n-1)
		}
		ts[n-1] = eps
	}
	return ts
}

// TrainingTime maps u ~ U[0, 1) to t ~ U[ε, 1), the time a continuous
// process's training draws, ε = p.Eps().
func TrainingTime(p Process, u float64) float64 {
	eps := p.Eps()
	return eps + (1-eps)*u
}

// AnnealedStepSize is annealed Langevin dynamics' step at noise level σ of
// a ladder whose smallest is σ_L: α = ε σ²/σ_L² (NCSN, Algorithm 1).
func AnnealedStepSize(eps, sigma, sigmaL float64) float64 {
	return eps * (sigma / sigmaL) * (sigma / sigmaL)
}

// PriorLogP is the log-density of p's prior N(0, PriorStd² I) at x, one
// value of len(x) dimensions (score_sde's prior_logp).
func PriorLogP(p Process, x []float64) float64 {
	ps := p.PriorStd()
	var q float64
	for _, v := range x {
		q += v * v
	}
	return -0.5*q/(ps*ps) - float64(len(x))*(math.Log(ps)+0.5*math.Log(2*math.Pi))
}

// New builds the process a spec describes.
func New(s Spec) (Process, error) {
	eps := s.MinT
	if eps == 0 {
		eps = defaultEps
	}
	if !(eps > 0 && eps < 0.5) {
		return nil, fmt.Errorf("%w: smallest time %g must be in (0, 0.5)", ErrSchedule, s.MinT)
	}
	switch s.Name {
	case "ncsn":
		if len(s.Sigmas) < 2 {
			return nil, fmt.Errorf("%w: ncsn needs at least 2 noise levels, got %d", ErrSchedule, len(s.Sigmas))
		}
		for i, v := range s.Sigmas {
			if !(v > 0) || math.IsInf(v, 0) || (i > 0 && !(v < s.Sigmas[i-1])) {
				return nil, fmt.Errorf("%w: ncsn noise levels must decrease and be positive: σ_%d = %g", ErrSchedule, i+1, v)
			}
		}
		l := len(s.Sigmas)
		return &NCSN{VE: VE{SigmaMin: s.Sigmas[l-1], SigmaMax: s.Sigmas[0], eps: eps}, Sigmas: append([]float64(nil), s.Sigmas...)}, nil
	case "ve":
		if !(s.SigmaMin > 0) || !(s.SigmaMax > s.SigmaMin) || math.IsInf(s.SigmaMax, 0) {
			return nil, fmt.Errorf("%w: ve needs σ_max > σ_min > 0, got σ_max = %g, σ_min = %g", ErrSchedule, s.SigmaMax, s.SigmaMin)
		}
		return &VE{SigmaMin: s.SigmaMin, SigmaMax: s.SigmaMax, eps: eps}, nil
	case "vp", "subvp":
		if !(s.BetaMin > 0) || !(s.BetaMax >= s.BetaMin) || math.IsInf(s.BetaMax, 0) {
			return nil, fmt.Errorf("%w: %s needs β_max ≥ β_min > 0, got β_min = %g, β_max = %g", ErrSchedule, s.Name, s.BetaMin, s.BetaMax)
		}
		v := VP{BetaMin: s.BetaMin, BetaMax: s.BetaMax, eps: eps}
		if s.Name == "subvp" {
			return &SubVP{VP: v}, nil
		}
		return &v, nil
	}
	return nil, fmt.Errorf("%w: unknown process %q (ncsn, ve, vp or subvp)", ErrSchedule, s.Name)
}

// VE is the variance-exploding SDE dx = g(t) dw with σ(t) =
// σ_min(σ_max/σ_min)^t, so g(t)² = d[σ²]/dt = 2σ(t)² ln(σ_max/σ_min). Its
// marginal is the data plus N(0, σ(t)²I) (score_sde's approximation: the
// exact variance is σ(t)² − σ(0)²). Build it with New: a literal has no
// smallest time ε, which the samplers refuse.
type VE struct {
	SigmaMin, SigmaMax float64
	eps                float64
}

// Sigma is σ(t).
func (v *VE) Sigma(t float64) float64 { return v.SigmaMin * math.Pow(v.SigmaMax/v.SigmaMin, t) }

func (v *VE) Name() string { return "ve" }

func (v *VE) Marginal(t float64) (float64, float64) { return 1, v.Sigma(t) }

func (v *VE) Coefficients(t float64) (float64, float64) {
	return 0, v.Sigma(t) * math.Sqrt(2*math.Log(v.SigmaMax/v.SigmaMin))
}

func (v *VE) TimeOf(std float64) float64 {
	return math.Log(std/v.SigmaMin) / math.Log(v.SigmaMax/v.SigmaMin)
}

func (v *VE) PriorStd() float64 { return v.SigmaMax }

// Discretize: the reverse-diffusion step of SMLD, from σ(t) to σ(t − dt)
// (0 below t = 0): f = 0, G² = σ(t)² − σ(t−dt)².
func (v *VE) Discretize(t, dt float64) (float64, float64) {
	s, prev := v.Sigma(t), 0.0
	if t-dt > 0 {
		prev = v.Sigma(t - dt)
	}
	return 0, math.Sqrt(s*s - prev*prev)
}

func (v *VE) Eps() float64 { return v.eps }

func (v *VE) Spec() Spec {
	return Spec{Name: "ve", SigmaMin: v.SigmaMin, SigmaMax: v.SigmaMax, MinT: v.specEps()}
}

func (v *VE) specEps() float64 {
	if v.eps == defaultEps {
		return 0
	}
	return v.eps
}

// NCSN is the discrete ladder σ₁ > … > σ_L of Song & Ermon (2019): a model
// trained at these levels only, sampled by annealed Langevin dynamics. As a
// process it is the VE SDE through σ₁ and σ_L, on which the levels lie when
// they are geometric.
type NCSN struct {
	VE
	Sigmas []float64
}

func (n *NCSN) Name() string { return "ncsn" }

func (n *NCSN) Spec() Spec {
	return Spec{Name: "ncsn", Sigmas: append([]float64(nil), n.Sigmas...), MinT: n.specEps()}
}

// VP is the variance-preserving SDE dx = −½β(t)x dt + √β(t) dw with β(t) =
// β_min + t(β_max − β_min): m(t) = exp(−½∫β), s(t)² = 1 − m(t)². Its
// discretisation is DDPM's chain with β_i = β(t)·dt. Build it with New: a
// literal has no smallest time ε, which the samplers refuse.
type VP struct {
	BetaMin, BetaMax float64
	eps              float64
}

// Beta is β(t).
func (v *VP) Beta(t float64) float64 { return v.BetaMin + t*(v.BetaMax-v.BetaMin) }

// logMean is log m(t) = −½∫₀ᵗβ = −¼t²(β_max−β_min) − ½tβ_min.
func (v *VP) logMean(t float64) float64 {
	return -0.25*t*t*(v.BetaMax-v.BetaMin) - 0.5*t*v.BetaMin
}

func (v *VP) Name() string { return "vp" }

func (v *VP) Marginal(t float64) (float64, float64) {
	lm := v.logMean(t)
	return math.Exp(lm), math.Sqrt(-math.Expm1(2 * lm))
}

func (v *VP) Coefficients(t float64) (float64, float64) {
	b := v.Beta(t)
	return -0.5 * b, math.Sqrt(b)
}

// timeOfLogMean solves −¼t²(β_max−β_min) − ½tβ_min = lm for t ≥ 0.
func (v *VP) timeOfLogMean(lm float64) float64 {
	a, b := 0.25*(v.BetaMax-v.BetaMin), 0.5*v.BetaMin
	if a == 0 {
		return -lm / b
	}
	// a t² + b t + lm = 0, the positive root, in a form without cancellation.
	return 2 * -lm / (b + math.Sqrt(b*b-4*a*lm))
}

// TimeOf: s² = 1 − m², so log m = ½ log(1 − s²).
func (v *VP) TimeOf(std float64) float64 { return v.timeOfLogMean(0.5 * math.Log1p(-std*std)) }

func (v *VP) PriorStd() float64 { return 1 }

// Discretize: DDPM's step with β_i = β(t)·dt: x_t = √(1−β_i)·x_{t−dt} + √β_i z.
func (v *VP) Discretize(t, dt float64) (float64, float64) {
	b := v.Beta(t) * dt
	return math.Sqrt(1-b) - 1, math.Sqrt(b)
}

func (v *VP) Eps() float64 { return v.eps }

func (v *VP) Spec() Spec {
	e := v.eps
	if e == defaultEps {
		e = 0
	}
	return Spec{Name: "vp", BetaMin: v.BetaMin, BetaMax: v.BetaMax, MinT: e}
}

// SubVP is the sub-VP SDE dx = −½β(t)x dt + √(β(t)(1 − m(t)⁴)) dw: the VP
// drift with less noise, s(t) = 1 − m(t)², below VP's at every t.
type SubVP struct{ VP }

func (v *SubVP) Name() string { return "subvp" }

func (v *SubVP) Marginal(t float64) (float64, float64) {
	lm := v.logMean(t)
	return math.Exp(lm), -math.Expm1(2 * lm)
}

func (v *SubVP) Coefficients(t float64) (float64, float64) {
	b := v.Beta(t)
	return -0.5 * b, math.Sqrt(b * -math.Expm1(4*v.logMean(t)))
}

// TimeOf: s = 1 − m², so log m = ½ log(1 − s).
func (v *SubVP) TimeOf(std float64) float64 { return v.timeOfLogMean(0.5 * math.Log1p(-std)) }

// Discretize: Euler–Maruyama of the SDE, f = a(t)·dt, G = g(t)·√dt.
func (v *SubVP) Discretize(t, dt float64) (float64, float64) {
	a, g := v.Coefficients(t)
	return a * dt, g * math.Sqrt(dt)
}

func (v *SubVP) Spec() Spec {
	s := v.VP.Spec()
	s.Name = "subvp"
	return s
}

// Compatible reports why a network trained on the process trained (a
// noise-conditional classifier, say) cannot be used beside one trained on
// used, if it cannot: the processes must be the same family, the same
// marginals for a given σ (VP and sub-VP: the same β), and the trained σ
// range must cover the used one (NCSN and VE).
func Compatible(trained, used Spec) error {
	if trained.Name != used.Name {
		return fmt.Errorf("sde: trained on the %s process, used with %s", trained.Name, used.Name)
	}
	cover := func(tlo, thi, ulo, uhi float64) error {
		const tol = 1e-9
		if tlo > ulo*(1+tol) || thi < uhi*(1-tol) {
			return fmt.Errorf("sde: trained for σ from %g to %g, used from %g to %g", tlo, thi, ulo, uhi)
		}
		return nil
	}
	switch trained.Name {
	case "ncsn":
		if len(trained.Sigmas) == 0 || len(used.Sigmas) == 0 {
			return fmt.Errorf("sde: an NCSN spec without levels")
		}
		t, u := trained.Sigmas, used.Sigmas
		return cover(t[len(t)-1], t[0], u[len(u)-1], u[0])
	case "ve":
		return cover(trained.SigmaMin, trained.SigmaMax, used.SigmaMin, used.SigmaMax)
	default:
		if trained.BetaMin != used.BetaMin || trained.BetaMax != used.BetaMax {
			return fmt.Errorf("sde: trained with β from %g to %g, used with %g to %g", trained.BetaMin, trained.BetaMax, used.BetaMin, used.BetaMax)
		}
	}
	return nil
}
