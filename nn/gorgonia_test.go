package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// toNCHW and toCBHW move data between Gorgonia's layout and ours.
func toNCHW(x []float64, c, b, hw int) []float64 {
	y := make([]float64, len(x))
	for ch := 0; ch < c; ch++ {
		for i := 0; i < b; i++ {
			copy(y[(i*c+ch)*hw:][:hw], x[(ch*b+i)*hw:][:hw])
		}
	}
	return y
}

// runGrad evaluates L = Σ out⊙R and the gradients with respect to wrt.
func runGrad(t *testing.T, g *G.ExprGraph, out *G.Node, r []float64, wrt ...*G.Node) ([]float64, [][]float64) {
	t.Helper()
	rn := G.NodeFromAny(g, tensor.New(tensor.WithShape(out.Shape()...), tensor.WithBacking(r)), G.WithName("R"))
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
	var gs [][]float64
	for _, gn := range grads {
		gs = append(gs, append([]float64(nil), gn.Value().Data().([]float64)...))
	}
	return append([]float64(nil), out.Value().Data().([]float64)...), gs
}

func closeAll(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-9*(1+math.Abs(want[i])) {
			t.Fatalf("%s[%d] = %.12g, Gorgonia's %.12g", what, i, got[i], want[i])
		}
	}
}

// TestConvMatchesGorgonia: our Conv2D (im2col, channel-major) and Gorgonia's
// Conv2d (NCHW) agree on outputs and on the gradients of x and w.
func TestConvMatchesGorgonia(t *testing.T) {
	for _, geom := range []ConvGeom{{3, 1, 1}, {3, 2, 1}, {1, 1, 0}} {
		r := rand.New(rand.NewPCG(8, 8))
		c, b, h, w, o := 3, 2, 6, 6, 4
		x := randn(r, c*b*h*w) // ours: (C,B,H,W)
		wt := randn(r, o*c*geom.K*geom.K)
		oh, ow := geom.outSize(h), geom.outSize(w)
		rw := randn(r, o*b*oh*ow) // upstream weights, ours (O,B,OH,OW)

		g1 := G.NewGraph()
		xn := G.NodeFromAny(g1, tensor.New(tensor.WithShape(c, b, h, w), tensor.WithBacking(append([]float64(nil), x...))), G.WithName("x"))
		wn := G.NodeFromAny(g1, tensor.New(tensor.WithShape(o, c, geom.K, geom.K), tensor.WithBacking(append([]float64(nil), wt...))), G.WithName("w"))
		bn := G.NodeFromAny(g1, tensor.New(tensor.WithShape(o), tensor.WithBacking(make([]float64, o))), G.WithName("b"))
		y1, err := Conv2D(xn, wn, bn, geom)
		if err != nil {
			t.Fatal(err)
		}
		out1, gr1 := runGrad(t, g1, y1, rw, xn, wn)

		g2 := G.NewGraph()
		xg := G.NodeFromAny(g2, tensor.New(tensor.WithShape(b, c, h, w), tensor.WithBacking(toNCHW(x, c, b, h*w))), G.WithName("x"))
		wg := G.NodeFromAny(g2, tensor.New(tensor.WithShape(o, c, geom.K, geom.K), tensor.WithBacking(append([]float64(nil), wt...))), G.WithName("w"))
		y2, err := G.Conv2d(xg, wg, tensor.Shape{geom.K, geom.K}, []int{geom.Pad, geom.Pad}, []int{geom.Stride, geom.Stride}, []int{1, 1})
		if err != nil {
			t.Fatal(err)
		}
		out2, gr2 := runGrad(t, g2, y2, toNCHW(rw, o, b, oh*ow), xg, wg)

		closeAll(t, "output", toNCHW(out1, o, b, oh*ow), out2)
		closeAll(t, "∂x", toNCHW(gr1[0], c, b, h*w), gr2[0])
		closeAll(t, "∂w", gr1[1], gr2[1])
	}
}

// TestUpsampleConcatMatchGorgonia: nearest ×2 and channel concatenation
// against Gorgonia's Upsample2D and Concat, values and gradients.
func TestUpsampleConcatMatchGorgonia(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	c, b, h, w := 2, 3, 3, 4
	x, z := randn(r, c*b*h*w), randn(r, c*b*4*h*w)
	rw := randn(r, 2*c*b*4*h*w)

	g1 := G.NewGraph()
	xn := G.NodeFromAny(g1, tensor.New(tensor.WithShape(c, b, h, w), tensor.WithBacking(append([]float64(nil), x...))), G.WithName("x"))
	zn := G.NodeFromAny(g1, tensor.New(tensor.WithShape(c, b, 2*h, 2*w), tensor.WithBacking(append([]float64(nil), z...))), G.WithName("z"))
	u := G.Must(Upsample2x(xn))
	y1 := G.Must(ConcatChannels(u, zn))
	out1, gr1 := runGrad(t, g1, y1, rw, xn, zn)

	g2 := G.NewGraph()
	xg := G.NodeFromAny(g2, tensor.New(tensor.WithShape(b, c, h, w), tensor.WithBacking(toNCHW(x, c, b, h*w))), G.WithName("x"))
	zg := G.NodeFromAny(g2, tensor.New(tensor.WithShape(b, c, 2*h, 2*w), tensor.WithBacking(toNCHW(z, c, b, 4*h*w))), G.WithName("z"))
	ug := G.Must(G.Upsample2D(xg, 2))
	y2 := G.Must(G.Concat(1, ug, zg))
	out2, gr2 := runGrad(t, g2, y2, toNCHW(rw, 2*c, b, 4*h*w), xg, zg)

	closeAll(t, "output", toNCHW(out1, 2*c, b, 4*h*w), out2)
	closeAll(t, "∂x", toNCHW(gr1[0], c, b, h*w), gr2[0])
	closeAll(t, "∂z", toNCHW(gr1[1], c, b, 4*h*w), gr2[1])
}

// TestGroupNormMatchesGorgonia: our fused GroupNorm+SiLU against Gorgonia's
// GroupNorm followed by x·sigmoid(x), values and the gradients of x, γ, β.
func TestGroupNormMatchesGorgonia(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 10))
	c, b, h, w, groups := 4, 3, 3, 2, 2
	x, gam, bet := randn(r, c*b*h*w), randn(r, c), randn(r, c)
	rw := randn(r, c*b*h*w)

	g1 := G.NewGraph()
	xn := G.NodeFromAny(g1, tensor.New(tensor.WithShape(c, b, h, w), tensor.WithBacking(append([]float64(nil), x...))), G.WithName("x"))
	gn := G.NodeFromAny(g1, tensor.New(tensor.WithShape(c), tensor.WithBacking(append([]float64(nil), gam...))), G.WithName("g"))
	bn := G.NodeFromAny(g1, tensor.New(tensor.WithShape(c), tensor.WithBacking(append([]float64(nil), bet...))), G.WithName("b"))
	y1 := G.Must(GroupNormSiLU(xn, gn, bn, groups))
	out1, gr1 := runGrad(t, g1, y1, rw, xn, gn, bn)

	g2 := G.NewGraph()
	xg := G.NodeFromAny(g2, tensor.New(tensor.WithShape(b, c, h, w), tensor.WithBacking(toNCHW(x, c, b, h*w))), G.WithName("x"))
	gg := G.NodeFromAny(g2, tensor.New(tensor.WithShape(1, c, 1, 1), tensor.WithBacking(append([]float64(nil), gam...))), G.WithName("g"))
	bg := G.NodeFromAny(g2, tensor.New(tensor.WithShape(1, c, 1, 1), tensor.WithBacking(append([]float64(nil), bet...))), G.WithName("b"))
	a := G.Must(G.GroupNorm(xg, gg, bg, groups, c, gnEps))
	y2 := G.Must(G.HadamardProd(a, G.Must(G.Sigmoid(a))))
	out2, gr2 := runGrad(t, g2, y2, toNCHW(rw, c, b, h*w), xg, gg, bg)

	closeAll(t, "output", toNCHW(out1, c, b, h*w), out2)
	closeAll(t, "∂x", toNCHW(gr1[0], c, b, h*w), gr2[0])
	closeAll(t, "∂γ", gr1[1], gr2[1])
	closeAll(t, "∂β", gr1[2], gr2[2])
}
