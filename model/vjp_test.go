package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// TestVJPMatchesFiniteDifferences: vᵀ∂s/∂x from the graph equals central
// differences of the score along each of a few input directions, in float64,
// and the float32 scorer agrees with the float64 one; its scores are the
// Scorer's.
func TestVJPMatchesFiniteDifferences(t *testing.T) {
	cfg := tiny()
	r := rand.New(rand.NewPCG(5, 6))
	params, err := Init(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	d := cfg.Dim()
	x, v := make([]float64, n*d), make([]float64, n*d)
	for i := range x {
		// Images enter the graph as float32: values and steps exact in it.
		x[i], v[i] = float64(float32(r.Float64())), r.NormFloat64()
	}
	const sigma = 0.3
	s64, err := newVJPScorer(cfg, params, 2, tensor.Float64) // 2 chunks, one padded
	if err != nil {
		t.Fatal(err)
	}
	defer s64.Close()
	score, vjp := make([]float64, len(x)), make([]float64, len(x))
	if err := s64.ScoreVJP(x, sigma, v, score, vjp); err != nil {
		t.Fatal(err)
	}
	// (vᵀJ)·e = vᵀ(J e) = vᵀ(s(x+he) − s(x−he))/2h for a direction e.
	plus, minus := make([]float64, len(x)), make([]float64, len(x))
	sp, sm := make([]float64, len(x)), make([]float64, len(x))
	for _, k := range []int{0, 7, d + 13, 2*d + d - 1} {
		const h = 1.0 / (1 << 12)
		copy(plus, x)
		copy(minus, x)
		plus[k] += h
		minus[k] -= h
		for _, pair := range [][2][]float64{{plus, sp}, {minus, sm}} {
			if err := s64.ScoreVJP(pair[0], sigma, v, pair[1], make([]float64, len(x))); err != nil {
				t.Fatal(err)
			}
		}
		var fd float64
		for i := range sp {
			fd += v[i] * (sp[i] - sm[i]) / (2 * h)
		}
		if math.Abs(fd-vjp[k]) > 1e-5*(1+math.Abs(fd)) {
			t.Fatalf("input %d: graph %g, finite differences %g", k, vjp[k], fd)
		}
	}
	s32, err := NewVJPScorer(cfg, params, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer s32.Close()
	score32, vjp32 := make([]float64, len(x)), make([]float64, len(x))
	if err := s32.ScoreVJP(x, sigma, v, score32, vjp32); err != nil {
		t.Fatal(err)
	}
	sc, err := NewScorer(cfg, params, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	plain := make([]float64, len(x))
	if err := sc.Score(x, sigma, plain); err != nil {
		t.Fatal(err)
	}
	for i := range x {
		if score32[i] != plain[i] {
			t.Fatalf("score[%d]: %g with the VJP, %g without", i, score32[i], plain[i])
		}
		if math.Abs(vjp32[i]-vjp[i]) > 1e-3*(1+math.Abs(vjp[i])) || math.Abs(score32[i]-score[i]) > 1e-4*(1+math.Abs(score[i])) {
			t.Fatalf("value %d: float32 %g/%g, float64 %g/%g", i, score32[i], vjp32[i], score[i], vjp[i])
		}
	}
}
