package sde

import (
	"math"
	"reflect"
	"testing"
)

func processes(t *testing.T) []Process {
	t.Helper()
	var ps []Process
	for _, n := range Names {
		s, err := Default(n)
		if err != nil {
			t.Fatal(err)
		}
		p, err := New(s)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// TestMarginalSolvesTheSDE: m(t) and s(t)² follow from integrating the
// moment equations of dx = a x dt + g dw numerically (dm/dt = a m,
// dΣ/dt = 2aΣ + g²) from t = 0, RK4 with 20000 steps.
func TestMarginalSolvesTheSDE(t *testing.T) {
	for _, p := range processes(t) {
		t.Run(p.Name(), func(t *testing.T) {
			m0, s0 := p.Marginal(0)
			y := [2]float64{m0, s0 * s0}
			deriv := func(tt float64, y [2]float64) [2]float64 {
				a, g := p.Coefficients(tt)
				return [2]float64{a * y[0], 2*a*y[1] + g*g}
			}
			const n = 20000
			h := 1.0 / n
			for i := 0; i < n; i++ {
				tt := float64(i) * h
				add := func(y [2]float64, k [2]float64, c float64) [2]float64 {
					return [2]float64{y[0] + c*k[0], y[1] + c*k[1]}
				}
				k1 := deriv(tt, y)
				k2 := deriv(tt+h/2, add(y, k1, h/2))
				k3 := deriv(tt+h/2, add(y, k2, h/2))
				k4 := deriv(tt+h, add(y, k3, h))
				for j := range y {
					y[j] += h / 6 * (k1[j] + 2*k2[j] + 2*k3[j] + k4[j])
				}
				if (i+1)%5000 == 0 {
					m, s := p.Marginal(tt + h)
					if math.Abs(y[0]-m) > 1e-9*math.Max(1, m) || math.Abs(y[1]-s*s) > 1e-8*math.Max(1, s*s) {
						t.Fatalf("t=%g: integrated m=%g s²=%g, Marginal m=%g s²=%g", tt+h, y[0], y[1], m, s*s)
					}
				}
			}
		})
	}
}

// TestTimeOf: TimeOf inverts the marginal's noise scale over [ε, 1].
func TestTimeOf(t *testing.T) {
	for _, p := range processes(t) {
		t.Run(p.Name(), func(t *testing.T) {
			for _, tt := range []float64{p.Eps(), 1e-3, 0.1, 0.37, 0.9, 1} {
				_, s := p.Marginal(tt)
				if got := p.TimeOf(s); math.Abs(got-tt) > 1e-9*math.Max(tt, 1e-3) {
					t.Fatalf("TimeOf(s(%g) = %g) = %g", tt, s, got)
				}
			}
		})
	}
}

// TestDiscretize: every chain's step tends to the SDE's (f/dt → a,
// G²/dt → g²); VE's step adds exactly the variance between its levels and
// VP's preserves unit variance, as DDPM's chain does.
func TestDiscretize(t *testing.T) {
	for _, p := range processes(t) {
		t.Run(p.Name(), func(t *testing.T) {
			for _, tt := range []float64{0.05, 0.5, 1} {
				a, g := p.Coefficients(tt)
				const dt = 1e-6
				f, G := p.Discretize(tt, dt)
				if math.Abs(f/dt-a) > 1e-3*math.Max(1, math.Abs(a)) || math.Abs(G*G/dt-g*g) > 1e-3*g*g {
					t.Fatalf("t=%g: f/dt=%g vs a=%g, G²/dt=%g vs g²=%g", tt, f/dt, a, G*G/dt, g*g)
				}
			}
			f, G := p.Discretize(0.5, 0.1)
			switch v := p.(type) {
			case *VE:
				if s1, s0 := v.Sigma(0.5), v.Sigma(0.4); f != 0 || math.Abs(G*G-(s1*s1-s0*s0)) > 1e-12 {
					t.Fatalf("VE step f=%g G²=%g", f, G*G)
				}
			case *VP:
				if math.Abs((1+f)*(1+f)+G*G-1) > 1e-12 || math.Abs(G*G-v.Beta(0.5)*0.1) > 1e-12 {
					t.Fatalf("VP step: (1+f)²+G² = %g, G² = %g", (1+f)*(1+f)+G*G, G*G)
				}
			}
		})
	}
}

// TestVPLimits: VP's prior is N(0, I) and its noise reaches it at t = 1;
// sub-VP's noise is below VP's everywhere.
func TestVPLimits(t *testing.T) {
	vp, _ := New(Spec{Name: "vp", BetaMin: 0.1, BetaMax: 20})
	sub, _ := New(Spec{Name: "subvp", BetaMin: 0.1, BetaMax: 20})
	m, s := vp.Marginal(1)
	if math.Abs(m*m+s*s-1) > 1e-15 || m > 0.007 {
		t.Fatalf("VP at 1: m=%g s=%g", m, s)
	}
	for _, tt := range []float64{1e-4, 0.01, 0.3, 1} {
		_, a := vp.Marginal(tt)
		_, b := sub.Marginal(tt)
		if !(b < a) {
			t.Fatalf("t=%g: sub-VP s=%g, VP s=%g", tt, b, a)
		}
	}
}

func TestSpecRoundTrip(t *testing.T) {
	for _, p := range processes(t) {
		q, err := New(p.Spec())
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("%s: %v %+v %+v", p.Name(), err, p, q)
		}
	}
	p, _ := New(Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 50, MinT: 1e-3})
	if p.Eps() != 1e-3 || p.Spec().MinT != 1e-3 {
		t.Fatalf("eps %g", p.Eps())
	}
}

func TestSpecErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Spec
	}{
		{"unknown", Spec{Name: "edm"}},
		{"ncsn-one-level", Spec{Name: "ncsn", Sigmas: []float64{1}}},
		{"ncsn-increasing", Spec{Name: "ncsn", Sigmas: []float64{1, 2}}},
		{"ve-inverted", Spec{Name: "ve", SigmaMin: 1, SigmaMax: 0.1}},
		{"vp-zero-beta", Spec{Name: "vp", BetaMin: 0, BetaMax: 20}},
		{"subvp-nan", Spec{Name: "subvp", BetaMin: math.NaN(), BetaMax: 20}},
		{"eps", Spec{Name: "vp", BetaMin: 0.1, BetaMax: 20, MinT: 0.7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.s); err == nil {
				t.Fatalf("%+v accepted", tc.s)
			}
		})
	}
	if _, err := Default("edm"); err == nil {
		t.Fatal("unknown default accepted")
	}
}

func TestCompatible(t *testing.T) {
	n := func(s ...float64) Spec { return Spec{Name: "ncsn", Sigmas: s} }
	for _, c := range []struct {
		a, b Spec
		ok   bool
	}{
		{n(1, 0.1, 0.01), n(1, 0.01), true},
		{n(1, 0.1, 0.01), n(2, 0.01), false},
		{n(1, 0.1), n(1, 0.01), false},
		{n(1, 0.01), Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 1}, false},
		{Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 50}, Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 25}, true},
		{Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 25}, Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 50}, false},
		{Spec{Name: "vp", BetaMin: 0.1, BetaMax: 20}, Spec{Name: "vp", BetaMin: 0.1, BetaMax: 20}, true},
		{Spec{Name: "vp", BetaMin: 0.1, BetaMax: 20}, Spec{Name: "subvp", BetaMin: 0.1, BetaMax: 20}, false},
		{Spec{Name: "subvp", BetaMin: 0.1, BetaMax: 20}, Spec{Name: "subvp", BetaMin: 0.1, BetaMax: 10}, false},
	} {
		if err := Compatible(c.a, c.b); (err == nil) != c.ok {
			t.Errorf("Compatible(%+v, %+v) = %v, want ok %v", c.a, c.b, err, c.ok)
		}
	}
}

// PriorLogP is the sum of the prior's one-dimensional log-densities.
func TestPriorLogP(t *testing.T) {
	x := []float64{0.3, -1.7, 2.5, 0}
	for _, name := range []string{"ve", "vp", "subvp"} {
		spec, err := Default(name)
		if err != nil {
			t.Fatal(err)
		}
		p, err := New(spec)
		if err != nil {
			t.Fatal(err)
		}
		s := p.PriorStd()
		var want float64
		for _, v := range x {
			want += math.Log(math.Exp(-v*v/(2*s*s)) / (s * math.Sqrt(2*math.Pi)))
		}
		if got := PriorLogP(p, x); math.Abs(got-want) > 1e-12*math.Abs(want) {
			t.Errorf("%s: PriorLogP %v, want %v", name, got, want)
		}
	}
}

// SamplingEps: score_sde's sampling_eps, 10⁻³ for VP and sub-VP and the
// training's 10⁻⁵ for VE, unless a spec sets its own; the samplers' grid
// ends there.
func TestSamplingEps(t *testing.T) {
	for _, tc := range []struct {
		spec Spec
		want float64
	}{
		{Spec{Name: "vp", BetaMin: 0.1, BetaMax: 20}, 1e-3},
		{Spec{Name: "subvp", BetaMin: 0.1, BetaMax: 20}, 1e-3},
		{Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 25}, 1e-5},
		{Spec{Name: "vp", BetaMin: 0.1, BetaMax: 20, MinT: 2e-4}, 2e-4},
	} {
		p, err := New(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := SamplingEps(p); got != tc.want {
			t.Errorf("%+v: SamplingEps %g, want %g", tc.spec, got, tc.want)
		}
		if p.Eps() != max(tc.spec.MinT, 1e-5) {
			t.Errorf("%+v: training's ε %g", tc.spec, p.Eps())
		}
		ts := SamplingTimes(p, 10)
		if ts[0] != 1 || ts[9] != tc.want || ts[10] != 0 {
			t.Errorf("%+v: grid %v", tc.spec, ts)
		}
		for _, n := range []int{0, -1} { // -1 panicked
			if ts := SamplingTimes(p, n); ts != nil {
				t.Errorf("%+v: %d steps: %v", tc.spec, n, ts)
			}
		}
	}
}
