package nn

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/ncsn-go/ncsn/internal/kernel"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// gnEps matches PyTorch's GroupNorm default.
const gnEps = 1e-5

// GroupNormSiLU is silu(GroupNorm(x)·γ + β) for x (C,B,H,W), γ and β (C), with
// the channels split into `groups` groups. Every GroupNorm of the score network
// is followed by SiLU, so the two are one pass over memory, not four.
func GroupNormSiLU(x, gamma, beta *G.Node, groups int) (*G.Node, error) {
	if x.Dims() != 4 || gamma.Dims() != 1 || beta.Dims() != 1 {
		return nil, fmt.Errorf("nn: groupnorm wants x 4-D and γ, β 1-D; got %v %v %v", x.Shape(), gamma.Shape(), beta.Shape())
	}
	c := x.Shape()[0]
	if groups < 1 || c%groups != 0 || gamma.Shape()[0] != c || beta.Shape()[0] != c {
		return nil, fmt.Errorf("nn: groupnorm: %d channels, %d groups, γ %v, β %v", c, groups, gamma.Shape(), beta.Shape())
	}
	op := &gnOp{base: newBase(fmt.Sprintf("gnsilu%d", groups), 4, 4, 1, 1), groups: groups}
	return G.ApplyOp(op, x, gamma, beta)
}

type gnOp struct {
	base
	groups int
	// stats holds each (image, group)'s mean and 1/sqrt(var+eps) from the
	// last forward run, for the backward pass of the same run.
	stats []float64
}

func (op *gnOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in)
	if err != nil {
		return nil, err
	}
	return s[0].Clone(), nil
}

func (op *gnOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 3)
	if err != nil {
		return nil, err
	}
	out := op.output(in[0].Dtype(), in[0].Shape(), false)
	if n := 2 * in[0].Shape()[1] * op.groups; len(op.stats) != n {
		op.stats = make([]float64, n)
	}
	if in[0].Dtype() == tensor.Float32 {
		gnForward(f32(in[0]), f32(in[1]), f32(in[2]), f32(out), op.stats, in[0].Shape(), op.groups)
	} else {
		gnForward(f64(in[0]), f64(in[1]), f64(in[2]), f64(out), op.stats, in[0].Shape(), op.groups)
	}
	return out, nil
}

func (op *gnOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *gnOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	back := &gnGradOp{base: newBase(op.name+".dx", 4, 4, 1, 1, 4), groups: op.groups, fwd: op}
	dx, err := G.ApplyOp(back, inputs[0], inputs[1], inputs[2], grad)
	if err != nil {
		return nil, err
	}
	// ∂γ and ∂β fall out of the same pass as ∂x; these ops hand them over and
	// take dx as input so that they run after it.
	c := inputs[0].Shape()[0]
	dg, err := G.ApplyOp(&stashOp{base: newBase(op.name+".dγ", 1, 4), shape: tensor.Shape{c}, src: func() any { return back.dg }}, dx)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(&stashOp{base: newBase(op.name+".dβ", 1, 4), shape: tensor.Shape{c}, src: func() any { return back.db }}, dx)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dg, db}, nil
}

// groupStats returns the mean and 1/sqrt(var+eps) of one (image, group) slab.
func groupStats[T Float](x []T, b, bi, c0, cpg, hw int) (mean, rstd float64) {
	n := float64(cpg * hw)
	if xs, ok := any(x).([]float32); ok && kernel.Available() {
		// One pass in float64: Σx² − n·mean² loses nothing that matters for
		// float32 data at the scales of normalised activations.
		var s, q float64
		for c := c0; c < c0+cpg; c++ {
			a, b := kernel.SumSq(xs[(c*b+bi)*hw:][:hw])
			s += a
			q += b
		}
		mean = s / n
		return mean, 1 / math.Sqrt(max(q/n-mean*mean, 0)+gnEps)
	}
	var s float64
	for c := c0; c < c0+cpg; c++ {
		for _, v := range x[(c*b+bi)*hw:][:hw] {
			s += float64(v)
		}
	}
	mean = s / n
	var q float64
	for c := c0; c < c0+cpg; c++ {
		for _, v := range x[(c*b+bi)*hw:][:hw] {
			d := float64(v) - mean
			q += d * d
		}
	}
	return mean, 1 / math.Sqrt(q/n+gnEps)
}

func gnForward[T Float](x, gamma, beta, y []T, stats []float64, s tensor.Shape, groups int) {
	c, b, hw := s[0], s[1], s[2]*s[3]
	cpg := c / groups
	x32, fast := any(x).([]float32)
	fast = fast && kernel.Available()
	kernel.ParallelFor(b*groups, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			bi, gi := t/groups, t%groups
			mean, rstd := groupStats(x, b, bi, gi*cpg, cpg, hw)
			stats[2*t], stats[2*t+1] = mean, rstd
			for ch := gi * cpg; ch < (gi+1)*cpg; ch++ {
				off := (ch*b + bi) * hw
				xs, ys := x[off:off+hw], y[off:off+hw]
				sc := T(rstd) * gamma[ch]
				sh := beta[ch] - T(mean)*sc
				if fast {
					kernel.SiLUAffine(x32[off:off+hw], any(ys).([]float32), float32(sc), float32(sh))
					continue
				}
				for i, v := range xs {
					a := v*sc + sh
					ys[i] = a * sigmoid(a)
				}
			}
		}
	})
}

// gnGradOp computes ∂L/∂x of GroupNormSiLU, keeping ∂L/∂γ and ∂L/∂β aside.
type gnGradOp struct {
	base
	groups int
	fwd    *gnOp     // its forward operator, whose statistics it reuses
	dg, db any       // []T of C: ∂γ, ∂β for the stash operators
	pg, pb []float64 // per-(image, channel) partial sums
}

func (op *gnGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in)
	if err != nil {
		return nil, err
	}
	return s[0].Clone(), nil
}

func (op *gnGradOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 4)
	if err != nil {
		return nil, err
	}
	out := op.output(in[0].Dtype(), in[0].Shape(), false)
	c, b := in[0].Shape()[0], in[0].Shape()[1]
	if len(op.pg) != b*c {
		op.pg, op.pb = make([]float64, b*c), make([]float64, b*c)
	}
	if in[0].Dtype() == tensor.Float32 {
		dg, db := scratch[float32](&op.dg, c), scratch[float32](&op.db, c)
		gnBackward(f32(in[0]), f32(in[1]), f32(in[2]), f32(in[3]), f32(out), dg, db, op.pg, op.pb, op.fwd.stats, in[0].Shape(), op.groups)
	} else {
		dg, db := scratch[float64](&op.dg, c), scratch[float64](&op.db, c)
		gnBackward(f64(in[0]), f64(in[1]), f64(in[2]), f64(in[3]), f64(out), dg, db, op.pg, op.pb, op.fwd.stats, in[0].Shape(), op.groups)
	}
	return out, nil
}

func gnBackward[T Float](x, gamma, beta, dy, dx, dgamma, dbeta []T, pg, pb, stats []float64, s tensor.Shape, groups int) {
	c, b, hw := s[0], s[1], s[2]*s[3]
	cpg := c / groups
	x32, fast := any(x).([]float32)
	fast = fast && kernel.Available()
	// Per-image partial sums of ∂γ, ∂β (pg, pb: b×c), added in a fixed order
	// afterwards, so that the result does not depend on how the work was split.
	kernel.ParallelFor(b*groups, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			bi, gi := t/groups, t%groups
			mean, rstd := stats[2*t], stats[2*t+1]
			var s1, s2 float64 // Σ ∂x̂ and Σ ∂x̂·x̂ over the group
			for ch := gi * cpg; ch < (gi+1)*cpg; ch++ {
				off := (ch*b + bi) * hw
				xs, gs, ds := x[off:off+hw], dy[off:off+hw], dx[off:off+hw]
				g, sc := gamma[ch], T(rstd)*gamma[ch]
				sh := beta[ch] - T(mean)*sc
				var cg, cb float64
				if fast {
					cb, cg = kernel.GNSiLUBack1(x32[off:off+hw], any(gs).([]float32), any(ds).([]float32),
						float32(sc), float32(sh), float32(g), float32(mean), float32(rstd))
				} else {
					for i, v := range xs {
						a := v*sc + sh
						sg := sigmoid(a)
						da := gs[i] * sg * (1 + a*(1-sg))
						xh := (v - T(mean)) * T(rstd)
						cg += float64(da * xh)
						cb += float64(da)
						ds[i] = da * g
					}
				}
				pg[bi*c+ch], pb[bi*c+ch] = cg, cb
				// ∂x̂ = γ·∂a, so its sums are γ times those of ∂a.
				s1 += float64(g) * cb
				s2 += float64(g) * cg
			}
			n := float64(cpg * hw)
			m1, m2 := s1/n, s2/n
			// ∂x = rstd·(∂x̂ − m1 − x̂·m2) = ∂x̂·A + (x − mean)·B + C
			A, B, C := rstd, -rstd*rstd*m2, -rstd*m1
			for ch := gi * cpg; ch < (gi+1)*cpg; ch++ {
				off := (ch*b + bi) * hw
				xs, ds := x[off:off+hw], dx[off:off+hw]
				if fast {
					kernel.Affine2(x32[off:off+hw], any(ds).([]float32), float32(A), float32(B), float32(mean), float32(C))
					continue
				}
				for i, v := range xs {
					ds[i] = ds[i]*T(A) + (v-T(mean))*T(B) + T(C)
				}
			}
		}
	})
	for ch := 0; ch < c; ch++ {
		var sg, sb float64
		for bi := 0; bi < b; bi++ {
			sg += pg[bi*c+ch]
			sb += pb[bi*c+ch]
		}
		dgamma[ch], dbeta[ch] = T(sg), T(sb)
	}
}

// sigmoid interpolates a table in float32 (absolute error below 1e-6, about
// float32 rounding near 1) and uses math.Exp in float64, where gradient
// checks need the accuracy. SiLU's sigmoid was half the forward pass with exp.
func sigmoid[T Float](a T) T {
	// The size is a constant in each instantiation, so the branch compiles away.
	if unsafe.Sizeof(a) == 4 {
		return T(sigmoid32(float32(a)))
	}
	return T(1 / (1 + math.Exp(-float64(a))))
}

const (
	sigLo   = -16 // σ(−16) ≈ 1.1e-7 and 1−σ(16) ≈ 1.1e-7: the table's ends
	sigStep = 128 // entries per unit: interpolation error ≤ σ''/8/128² < 1e-6
	sigN    = 2 * -sigLo * sigStep
)

var sigTab = func() (t [sigN + 2]float32) {
	for i := range t {
		t[i] = float32(1 / (1 + math.Exp(-(sigLo + float64(i)/sigStep))))
	}
	return
}()

func sigmoid32(a float32) float32 {
	if !(a > sigLo) { // also NaN
		if a != a {
			return a
		}
		return 0
	}
	if a >= -sigLo {
		return 1
	}
	t := (a - sigLo) * sigStep
	i := int(t)
	f := t - float32(i)
	lo := sigTab[i]
	return lo + f*(sigTab[i+1]-lo)
}
