package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ncsn-go/ncsn/sde"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func edmTiny() Config {
	c := tiny()
	c.Precond, c.SigmaData = PrecondEDM, 0.4
	return c
}

// scoresOf runs cfg's float64 graph on x at the σs and returns the scores
// in (B,C,H,W) order.
func scoresOf(t *testing.T, cfg Config, params Params, x []float32, s []float64) []float32 {
	t.Helper()
	net, err := Build(cfg, params, len(s), tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	if err := net.SetInput(x, s); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(net.Graph)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(x))
	if err := net.ReadOutput(out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEDMScore: with the same weights, the EDM network's score is
// (c_skip − 1)/σ²·x + c_out/σ²·F(c_in·x), where F = σ·s_NCSNv2 is the plain
// network's output.
func TestEDMScore(t *testing.T) {
	cfg := edmTiny()
	r := rand.New(rand.NewPCG(7, 8))
	params, err := Init(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 3
	x, s := randomInput(r, cfg, batch)
	s[2] = 5 // a σ far above σ_data
	got := scoresOf(t, cfg, params, x, s)
	d := cfg.Dim()
	scaled := make([]float32, len(x))
	for b := range batch {
		e := sde.EDMPreconditioning(s[b], cfg.SigmaData)
		for j := range d {
			scaled[b*d+j] = float32(e.In * float64(x[b*d+j]))
		}
	}
	plain := scoresOf(t, tiny(), params, scaled, s)
	for b := range batch {
		e := sde.EDMPreconditioning(s[b], cfg.SigmaData)
		for j := range d {
			i := b*d + j
			f := s[b] * float64(plain[i])
			want := e.SkipScale*float64(x[i]) + e.OutScale*f
			if math.Abs(float64(got[i])-want) > 1e-5*(1+math.Abs(want)) {
				t.Fatalf("image %d value %d: score %g, want %g", b, j, got[i], want)
			}
		}
	}
}

// TestEDMGradients: gorgonia.Grad through the EDM network (its input scale
// and skip term included) matches finite differences, as for the plain one.
func TestEDMGradients(t *testing.T) {
	if checked := checkGradients(t, edmTiny(), rand.New(rand.NewPCG(5, 7)), 2, []int{0, -1}); checked < 2*30 {
		t.Fatalf("only %d gradient entries checked", checked)
	}
}

// TestEDMConfigErrors: the preconditioning's settings are checked.
func TestEDMConfigErrors(t *testing.T) {
	bad := map[string]func(*Config){
		"unknown":             func(c *Config) { c.Precond = "karras" },
		"no sigma_data":       func(c *Config) { c.SigmaData = 0 },
		"negative sigma_data": func(c *Config) { c.SigmaData = -1 },
		"NaN sigma_data":      func(c *Config) { c.SigmaData = math.NaN() },
		"sigma_data, no EDM":  func(c *Config) { c.Precond = "" },
		"EDM classifier":      func(c *Config) { c.Classes = 10 },
		"huge sigma_data":     func(c *Config) { c.SigmaData = 1e9 },
	}
	for name, f := range bad {
		c := edmTiny()
		f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := edmTiny().Validate(); err != nil {
		t.Fatal(err)
	}
}
