package sde

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestGeometric(t *testing.T) {
	s, err := Geometric(1, 0.01, 10)
	if err != nil {
		t.Fatal(err)
	}
	if s[0] != 1 || s[9] != 0.01 {
		t.Fatalf("ends %g %g", s[0], s[9])
	}
	for i := 1; i < 10; i++ {
		if r := s[i-1] / s[i]; math.Abs(r-math.Pow(100, 1.0/9)) > 1e-12 {
			t.Fatalf("ratio %g", r)
		}
	}
	for _, bad := range [][3]float64{{0.01, 1, 10}, {1, 0, 10}, {1, 0.01, 1}, {math.Inf(1), 0.01, 5}} {
		if _, err := Geometric(bad[0], bad[1], int(bad[2])); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestNCSNv2CIFAR: technique 2 solved exactly (the expression equals ½)
// at CIFAR-10's σ₁ = 50; NCSNv2's own choice, L = 232 (γ = 1.0376), puts it
// at 0.566, "≈ 0.5" in the paper, and ours lands nearby (L = 220).
func TestNCSNv2CIFAR(t *testing.T) {
	const d = 3 * 32 * 32
	v, err := NCSNv2(50, d, 0.01, 5)
	if err != nil {
		t.Fatal(err)
	}
	expr := func(g float64) float64 {
		a := math.Sqrt(2*d) * (g - 1)
		return phi(a+3*g) - phi(a-3*g)
	}
	if math.Abs(expr(v.Gamma)-0.5) > 1e-9 {
		t.Fatalf("at γ = %g the expression is %g", v.Gamma, expr(v.Gamma))
	}
	paper := math.Pow(50/0.01, 1.0/231)
	if e := expr(paper); math.Abs(e-0.5) > 0.1 || v.Levels < 210 || v.Levels > 232 {
		t.Fatalf("NCSNv2's γ %.4f gives %.3f; ours %.4f gives L = %d", paper, e, v.Gamma, v.Levels)
	}
	// Technique 4: f(ε) ≥ 1; the chosen ε minimises it, so it does at least
	// as well as NCSNv2's own ε = 6.2e-6 at T = 5 (f = 1.057).
	f := func(u float64) float64 {
		return 2/(2-u) + math.Pow(1-u, 10)*(v.Gamma*v.Gamma-2/(2-u))
	}
	if v.Stationary < 1 || v.Stationary > f(6.2e-6/1e-4)+1e-9 {
		t.Fatalf("f(ε) = %g; at NCSNv2's ε it is %g", v.Stationary, f(0.062))
	}
	if v.Eps != 2*v.EpsNCSN || v.EpsNCSN <= 0 || v.EpsNCSN >= 1e-4 {
		t.Fatalf("ε = %g (NCSN form %g)", v.Eps, v.EpsNCSN)
	}
	t.Logf("CIFAR-10 at σ₁=50: %+v", v)
}

// TestKarrasSigmas: the grid of EDM's eq. 5 against its formula, its ends, its
// order, and its refusals.
func TestKarrasSigmas(t *testing.T) {
	s, err := KarrasSigmas(80, 0.002, 18, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 19 || s[0] != 80 || s[17] != 0.002 || s[18] != 0 {
		t.Fatalf("grid %v", s)
	}
	for i := 1; i < len(s); i++ {
		if !(s[i] < s[i-1]) {
			t.Fatalf("not decreasing at %d: %v", i, s)
		}
	}
	// σ_i^{1/ρ} is linear in i.
	for i := 1; i < 17; i++ {
		want := math.Pow(math.Pow(80, 1.0/7)+float64(i)/17*(math.Pow(0.002, 1.0/7)-math.Pow(80, 1.0/7)), 7)
		if math.Abs(s[i]-want) > 1e-12*want {
			t.Errorf("σ_%d = %g, want %g", i, s[i], want)
		}
	}
	// ρ = 1 is an even grid; one step is σ_max then 0.
	if s, _ := KarrasSigmas(3, 1, 3, 1); s[1] != 2 {
		t.Errorf("ρ = 1: %v", s)
	}
	if s, _ := KarrasSigmas(3, 1, 1, 7); len(s) != 2 || s[0] != 3 || s[1] != 0 {
		t.Errorf("one step: %v", s)
	}
	for _, bad := range []struct {
		max, min float64
		n        int
		rho      float64
	}{{1, 2, 5, 7}, {1, 0, 5, 7}, {math.Inf(1), 1, 5, 7}, {2, 1, 0, 7}, {2, 1, 5, 0}, {2, 1, 5, math.NaN()}} {
		if _, err := KarrasSigmas(bad.max, bad.min, bad.n, bad.rho); !errors.Is(err, ErrSchedule) {
			t.Errorf("%+v: error %v", bad, err)
		}
	}
	if EDMChurn(2, 0, 10) != 2 || math.Abs(EDMChurn(2, 1, 10)-2.2) > 1e-15 || math.Abs(EDMChurn(2, 100, 10)-2*math.Sqrt2) > 1e-15 {
		t.Errorf("churn: %g %g %g", EDMChurn(2, 0, 10), EDMChurn(2, 1, 10), EDMChurn(2, 100, 10))
	}
}

// TestNCSNv2Extremes: a σ_L so small that the ladder would need more than
// MaxLevels levels (it overflowed int: L = -9223372036854775807), or that
// ε = u·σ_L² underflows to 0, is an error, not a schedule.
func TestNCSNv2Extremes(t *testing.T) {
	for _, c := range []struct {
		sigmaMin float64
		want     string
	}{{5e-324, "more than 10000"}, {1e-300, "is 0 in float64"}} {
		v, err := NCSNv2(16.9, 784, c.sigmaMin, 5)
		if !errors.Is(err, ErrSchedule) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("σ_L = %g: %+v, %v; want %q", c.sigmaMin, v, err, c.want)
		}
	}
	if v, err := NCSNv2(16.9, 784, 1e-20, 5); err != nil || v.Levels < 2 || v.Levels > MaxLevels || !(v.Eps > 0) {
		t.Errorf("σ_L = 1e-20: %+v, %v", v, err)
	}
}
