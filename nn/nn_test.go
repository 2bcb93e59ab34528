package nn

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// gradCheck builds f on float64 inputs of the given shapes, differentiates
// L = Σ f(x)⊙R (R random) with gorgonia.Grad, and compares every input's
// gradient with central finite differences.
func gradCheck(t *testing.T, shapes []tensor.Shape, f func(in []*G.Node) (*G.Node, error)) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 11))
	g := G.NewGraph()
	in := make([]*G.Node, len(shapes))
	data := make([][]float64, len(shapes))
	for i, s := range shapes {
		data[i] = make([]float64, s.TotalSize())
		for j := range data[i] {
			data[i][j] = r.NormFloat64()
		}
		v := tensor.New(tensor.WithShape(s...), tensor.WithBacking(data[i]))
		in[i] = G.NodeFromAny(g, v, G.WithName(string(rune('a'+i))))
	}
	out, err := f(in)
	if err != nil {
		t.Fatal(err)
	}
	loss := out
	if !out.IsScalar() {
		rw := make([]float64, out.Shape().TotalSize())
		for j := range rw {
			rw[j] = r.NormFloat64()
		}
		rn := G.NodeFromAny(g, tensor.New(tensor.WithShape(out.Shape()...), tensor.WithBacking(rw)), G.WithName("R"))
		loss = G.Must(G.Sum(G.Must(G.HadamardProd(out, rn))))
	}
	grads, err := G.Grad(loss, in...)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	run := func() float64 {
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		return loss.Value().Data().(float64)
	}
	run()
	analytic := make([][]float64, len(in))
	for i, gn := range grads {
		analytic[i] = append([]float64(nil), gn.Value().Data().([]float64)...)
	}
	const h = 1e-5
	for i := range in {
		for j := range data[i] {
			old := data[i][j]
			data[i][j] = old + h
			lp := run()
			data[i][j] = old - h
			lm := run()
			data[i][j] = old
			num := (lp - lm) / (2 * h)
			if d := math.Abs(num - analytic[i][j]); d > 1e-6*(1+math.Abs(num)) {
				t.Fatalf("input %d element %d: analytic %.9g, finite difference %.9g", i, j, analytic[i][j], num)
			}
		}
	}
}

func TestConvGradients(t *testing.T) {
	for _, tc := range []struct {
		name string
		geom ConvGeom
		x, w tensor.Shape
	}{
		{"3x3 s1", ConvGeom{3, 1, 1}, tensor.Shape{2, 3, 5, 4}, tensor.Shape{3, 2, 3, 3}},
		{"3x3 s2", ConvGeom{3, 2, 1}, tensor.Shape{2, 2, 5, 6}, tensor.Shape{3, 2, 3, 3}},
		{"1x1", ConvGeom{1, 1, 0}, tensor.Shape{3, 2, 3, 3}, tensor.Shape{2, 3, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gradCheck(t, []tensor.Shape{tc.x, tc.w, {tc.w[0]}}, func(in []*G.Node) (*G.Node, error) {
				return Conv2D(in[0], in[1], in[2], tc.geom)
			})
		})
	}
}

// TestConvForward compares the im2col convolution with a direct loop.
func TestConvForward(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, geom := range []ConvGeom{{3, 1, 1}, {3, 2, 1}, {1, 1, 0}} {
		c, b, h, w, o := 3, 4, 7, 6, 5
		x := randn(r, c*b*h*w)
		wt := randn(r, o*c*geom.K*geom.K)
		bias := randn(r, o)
		oh, ow := geom.outSize(h), geom.outSize(w)
		y := make([]float64, o*b*oh*ow)
		var col any
		convForward(x, wt, bias, y, tensor.Shape{c, b, h, w}, o, geom, &col)
		for oc := 0; oc < o; oc++ {
			for bi := 0; bi < b; bi++ {
				for oy := 0; oy < oh; oy++ {
					for ox := 0; ox < ow; ox++ {
						s := bias[oc]
						for ic := 0; ic < c; ic++ {
							for ky := 0; ky < geom.K; ky++ {
								for kx := 0; kx < geom.K; kx++ {
									iy, ix := oy*geom.Stride+ky-geom.Pad, ox*geom.Stride+kx-geom.Pad
									if iy >= 0 && iy < h && ix >= 0 && ix < w {
										s += wt[((oc*c+ic)*geom.K+ky)*geom.K+kx] * x[((ic*b+bi)*h+iy)*w+ix]
									}
								}
							}
						}
						got := y[((oc*b+bi)*oh+oy)*ow+ox]
						if math.Abs(got-s) > 1e-9 {
							t.Fatalf("%+v: y[%d,%d,%d,%d] = %g, direct %g", geom, oc, bi, oy, ox, got, s)
						}
					}
				}
			}
		}
	}
}

// TestGroupNormForward compares with the textbook definition.
func TestGroupNormForward(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	c, b, h, w, groups := 4, 3, 2, 3, 2
	x, gam, bet := randn(r, c*b*h*w), randn(r, c), randn(r, c)
	y := make([]float64, len(x))
	gnForward(x, gam, bet, y, make([]float64, 2*b*groups), tensor.Shape{c, b, h, w}, groups)
	cpg := c / groups
	for bi := 0; bi < b; bi++ {
		for gi := 0; gi < groups; gi++ {
			var vals []float64
			for ch := gi * cpg; ch < (gi+1)*cpg; ch++ {
				vals = append(vals, x[(ch*b+bi)*h*w:][:h*w]...)
			}
			var mean, vr float64
			for _, v := range vals {
				mean += v
			}
			mean /= float64(len(vals))
			for _, v := range vals {
				vr += (v - mean) * (v - mean)
			}
			vr /= float64(len(vals))
			for ch := gi * cpg; ch < (gi+1)*cpg; ch++ {
				for i := 0; i < h*w; i++ {
					a := (x[(ch*b+bi)*h*w+i]-mean)/math.Sqrt(vr+gnEps)*gam[ch] + bet[ch]
					want := a / (1 + math.Exp(-a))
					if got := y[(ch*b+bi)*h*w+i]; math.Abs(got-want) > 1e-12 {
						t.Fatalf("y = %g, want %g", got, want)
					}
				}
			}
		}
	}
}

func TestGroupNormGradients(t *testing.T) {
	gradCheck(t, []tensor.Shape{{4, 3, 2, 3}, {4}, {4}}, func(in []*G.Node) (*G.Node, error) {
		return GroupNormSiLU(in[0], in[1], in[2], 2)
	})
}

func TestLayerGradients(t *testing.T) {
	t.Run("channel bias", func(t *testing.T) {
		gradCheck(t, []tensor.Shape{{3, 2, 2, 2}, {2, 3}}, func(in []*G.Node) (*G.Node, error) {
			return AddChannelBias(in[0], in[1])
		})
	})
	t.Run("upsample", func(t *testing.T) {
		gradCheck(t, []tensor.Shape{{2, 2, 3, 2}}, func(in []*G.Node) (*G.Node, error) { return Upsample2x(in[0]) })
	})
	t.Run("concat", func(t *testing.T) {
		gradCheck(t, []tensor.Shape{{2, 2, 2, 3}, {3, 2, 2, 3}}, func(in []*G.Node) (*G.Node, error) {
			return ConcatChannels(in[0], in[1])
		})
	})
	t.Run("linear+silu", func(t *testing.T) {
		gradCheck(t, []tensor.Shape{{3, 4}, {4, 5}, {5}}, func(in []*G.Node) (*G.Node, error) {
			l, err := Linear(in[0], in[1], in[2])
			if err != nil {
				return nil, err
			}
			return SiLU(l)
		})
	})
	t.Run("add", func(t *testing.T) {
		gradCheck(t, []tensor.Shape{{2, 3, 2, 2}, {2, 3, 2, 2}}, func(in []*G.Node) (*G.Node, error) { return Add(in[0], in[1]) })
	})
	t.Run("scale batch", func(t *testing.T) {
		gradCheck(t, []tensor.Shape{{2, 3, 2, 2}}, func(in []*G.Node) (*G.Node, error) {
			s := G.NodeFromAny(in[0].Graph(), tensor.New(tensor.WithShape(3), tensor.WithBacking([]float64{0.5, 2, -1})), G.WithName("s"))
			return ScaleBatch(in[0], s)
		})
	})
}

func randn(r *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = r.NormFloat64()
	}
	return x
}

func TestResidualLossGradients(t *testing.T) {
	gradCheck(t, []tensor.Shape{{2, 3, 2, 2}}, func(in []*G.Node) (*G.Node, error) {
		g := in[0].Graph()
		w := G.NodeFromAny(g, tensor.New(tensor.WithShape(3), tensor.WithBacking([]float64{0.5, 2, 0.1})), G.WithName("w"))
		z := G.NodeFromAny(g, tensor.New(tensor.WithShape(2, 3, 2, 2), tensor.WithBacking(randn(rand.New(rand.NewPCG(3, 3)), 24))), G.WithName("z"))
		l, _, err := ResidualLoss(in[0], w, z)
		return l, err
	})
}

func TestSigmoid32(t *testing.T) {
	for x := float32(-30); x < 30; x += 0.0137 {
		got, want := float64(sigmoid32(x)), 1/(1+math.Exp(-float64(x)))
		if math.Abs(got-want) > 1e-6 {
			t.Fatalf("sigmoid32(%g) = %g, want %g", x, got, want)
		}
	}
	if v := sigmoid32(float32(math.NaN())); v == v {
		t.Fatal("NaN in, not NaN out")
	}
}

func TestClassifierOpGradients(t *testing.T) {
	t.Run("flatten", func(t *testing.T) {
		gradCheck(t, []tensor.Shape{{2, 3, 2, 2}}, func(in []*G.Node) (*G.Node, error) { return Flatten(in[0]) })
	})
	t.Run("cross-entropy", func(t *testing.T) {
		gradCheck(t, []tensor.Shape{{3, 4}}, func(in []*G.Node) (*G.Node, error) {
			y := G.NodeFromAny(in[0].Graph(), tensor.New(tensor.WithShape(3, 4), tensor.WithBacking([]float64{0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1})), G.WithName("y"))
			l, _, err := SoftmaxCrossEntropy(in[0], y)
			return l, err
		})
	})
}

func TestFlattenLayout(t *testing.T) {
	// (C=2, B=2, 1×2): image b's row is [c0 pixels, c1 pixels].
	x := []float64{1, 2, 3, 4, 5, 6, 7, 8} // c0b0 c0b1 c1b0 c1b1
	y := make([]float64, 8)
	flatten(x, y, tensor.Shape{2, 2, 1, 2}, false)
	want := []float64{1, 2, 5, 6, 3, 4, 7, 8}
	for i := range y {
		if y[i] != want[i] {
			t.Fatalf("%v, want %v", y, want)
		}
	}
}

// TestParallelCopyAndPixelSum: the split copy equals copy at lengths around
// its block size, and the parallel per-channel sum gives the serial loop's
// bits, on one core and on several.
func TestParallelCopyAndPixelSum(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 8))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 3} {
		runtime.GOMAXPROCS(procs)
		for _, n := range []int{0, 1, 1<<16 - 1, 1 << 16, 1<<16 + 1, 3<<16 + 7} {
			src := make([]float32, n)
			for i := range src {
				src[i] = float32(r.NormFloat64())
			}
			dst := make([]float32, n+3)
			for i := range dst {
				dst[i] = float32(math.NaN())
			}
			parallelCopy(dst, src)
			for i := range src {
				if dst[i] != src[i] {
					t.Fatalf("GOMAXPROCS %d, n %d: dst[%d] = %g, want %g", procs, n, i, dst[i], src[i])
				}
			}
			for i := n; i < len(dst); i++ {
				if dst[i] == dst[i] {
					t.Fatalf("GOMAXPROCS %d, n %d: wrote past the source (dst[%d])", procs, n, i)
				}
			}
		}
		s := tensor.Shape{5, 3, 4, 7}
		g := make([]float32, s.TotalSize())
		for i := range g {
			g[i] = float32(r.NormFloat64())
		}
		got := make([]float32, 15)
		pixelSum(g, got, s)
		for ch := 0; ch < 5; ch++ {
			for b := 0; b < 3; b++ {
				var sum float64
				for _, v := range g[(ch*3+b)*28:][:28] {
					sum += float64(v)
				}
				if got[b*5+ch] != float32(sum) {
					t.Fatalf("GOMAXPROCS %d: pixel sum [%d,%d] = %g, want %g", procs, b, ch, got[b*5+ch], sum)
				}
			}
		}
	}
}
