package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ncsn-go/ncsn/internal/kernel"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// runF32 is runGrad in float32: the path training takes, on the SIMD kernels
// (AVX-512, AVX2, or the set NCSN_SIMD names) where the CPU has them.
func runF32(t *testing.T, build func(g *G.ExprGraph, dt tensor.Dtype) (*G.Node, []*G.Node), r []float64) ([]float64, [][]float64) {
	t.Helper()
	g := G.NewGraph()
	out, wrt := build(g, tensor.Float32)
	r32 := make([]float32, len(r))
	for i, v := range r {
		r32[i] = float32(v)
	}
	rn := G.NodeFromAny(g, tensor.New(tensor.WithShape(out.Shape()...), tensor.WithBacking(r32)), G.WithName("R"))
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(out, rn))))
	grads, err := G.Grad(loss, wrt...)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	widen := func(v []float32) []float64 {
		d := make([]float64, len(v))
		for i, x := range v {
			d[i] = float64(x)
		}
		return d
	}
	var gs [][]float64
	for _, gn := range grads {
		gs = append(gs, widen(gn.Value().Data().([]float32)))
	}
	return widen(out.Value().Data().([]float32)), gs
}

func tensorOf(g *G.ExprGraph, dt tensor.Dtype, name string, v []float64, shape ...int) *G.Node {
	var t tensor.Tensor
	if dt == tensor.Float32 {
		d := make([]float32, len(v))
		for i, x := range v {
			d[i] = float32(x)
		}
		t = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
	} else {
		t = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float64(nil), v...)))
	}
	return G.NodeFromAny(g, t, G.WithName(name))
}

// TestFloat32MatchesFloat64: conv 3×3 → GroupNorm+SiLU → conv 3×3 → conv 3×3
// stride 2 in float32
// (the kernels) against the same graph in float64 (the portable path, itself
// checked against Gorgonia and finite differences), values and gradients.
func TestFloat32MatchesFloat64(t *testing.T) {
	t.Logf("%s", kernel.Describe())
	for _, s := range []struct{ c, o, b, h, w, groups int }{
		{1, 16, 3, 28, 28, 8}, {16, 32, 4, 14, 14, 8}, {6, 10, 5, 7, 7, 5}, {4, 8, 2, 3, 9, 2}, {3, 4, 2, 6, 10, 2},
	} {
		r := rand.New(rand.NewPCG(5, uint64(s.c)))
		x := randn(r, s.c*s.b*s.h*s.w)
		w1, b1 := randn(r, s.o*s.c*9), randn(r, s.o)
		gam, bet := randn(r, s.o), randn(r, s.o)
		w2, b2 := randn(r, s.c*s.o*9), randn(r, s.c)
		w3, b3 := randn(r, s.c*s.c*9), randn(r, s.c)
		for i := range w3 {
			w3[i] /= 3 * math.Sqrt(float64(s.c))
		}
		for i := range w1 {
			w1[i] /= 3 * math.Sqrt(float64(s.c))
		}
		for i := range w2 {
			w2[i] /= 3 * math.Sqrt(float64(s.o))
		}
		build := func(g *G.ExprGraph, dt tensor.Dtype) (*G.Node, []*G.Node) {
			xn := tensorOf(g, dt, "x", x, s.c, s.b, s.h, s.w)
			nodes := []*G.Node{xn,
				tensorOf(g, dt, "w1", w1, s.o, s.c, 3, 3), tensorOf(g, dt, "b1", b1, s.o),
				tensorOf(g, dt, "gam", gam, s.o), tensorOf(g, dt, "bet", bet, s.o),
				tensorOf(g, dt, "w2", w2, s.c, s.o, 3, 3), tensorOf(g, dt, "b2", b2, s.c),
				tensorOf(g, dt, "w3", w3, s.c, s.c, 3, 3), tensorOf(g, dt, "b3", b3, s.c)}
			h := G.Must(Conv2D(xn, nodes[1], nodes[2], ConvGeom{3, 1, 1}))
			h = G.Must(GroupNormSiLU(h, nodes[3], nodes[4], s.groups))
			h = G.Must(Conv2D(h, nodes[5], nodes[6], ConvGeom{3, 1, 1}))
			h = G.Must(Conv2D(h, nodes[7], nodes[8], ConvGeom{3, 2, 1}))
			return h, nodes
		}
		rr := randn(r, s.c*s.b*((s.h+1)/2)*((s.w+1)/2))
		g64 := G.NewGraph()
		out64, wrt64 := build(g64, tensor.Float64)
		want, wantG := runGrad(t, g64, out64, rr, wrt64...)
		got, gotG := runF32(t, build, rr)
		near := func(what string, got, want []float64) {
			t.Helper()
			var scale float64
			for _, v := range want {
				scale = math.Max(scale, math.Abs(v))
			}
			for i := range want {
				if d := math.Abs(got[i] - want[i]); !(d <= 2e-5*scale) {
					t.Fatalf("%+v %s[%d] = %g, float64 gives %g (scale %g)", s, what, i, got[i], want[i], scale)
				}
			}
		}
		near("y", got, want)
		for i, name := range []string{"∂x", "∂w1", "∂b1", "∂γ", "∂β", "∂w2", "∂b2", "∂w3", "∂b3"} {
			near(name, gotG[i], wantG[i])
		}
	}
}
