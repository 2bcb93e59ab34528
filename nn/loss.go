package nn

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ResidualLoss is (1/B) Σ_b ½‖w_b·s_b + z_b‖² for s and z (C,B,H,W) and one
// weight w_b per image: with s the score of x + σz and w = σ it is the
// denoising score-matching loss weighted by λ(σ) = σ². After a run, PerImage
// holds the B terms ½‖w_b·s_b + z_b‖².
func ResidualLoss(s, w, z *G.Node) (*G.Node, *ResidualLossOp, error) {
	if s.Dims() != 4 || !s.Shape().Eq(z.Shape()) || w.Dims() != 1 || w.Shape()[0] != s.Shape()[1] {
		return nil, nil, fmt.Errorf("nn: residual loss wants s, z (C,B,H,W) and w (B); got %v %v %v", s.Shape(), z.Shape(), w.Shape())
	}
	op := &ResidualLossOp{base: newBase("residualloss", 0, 4, 1, 4)}
	n, err := G.ApplyOp(op, s, w, z)
	return n, op, err
}

// ResidualLossOp is the operator behind ResidualLoss.
type ResidualLossOp struct {
	base
	PerImage []float64
}

func (op *ResidualLossOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t4, t1 := G.TensorType{Dims: 4, Of: a}, G.TensorType{Dims: 1, Of: a}
	return hm.NewFnType(t4, t1, t4, a)
}

func (op *ResidualLossOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}

func (op *ResidualLossOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 3)
	if err != nil {
		return nil, err
	}
	sh := in[0].Shape()
	op.PerImage = resize(op.PerImage, sh[1])
	var mean float64
	if in[0].Dtype() == tensor.Float32 {
		mean = residualLoss(f32(in[0]), f32(in[1]), f32(in[2]), sh, op.PerImage)
		return G.NewF32(float32(mean)), nil
	}
	mean = residualLoss(f64(in[0]), f64(in[1]), f64(in[2]), sh, op.PerImage)
	return G.NewF64(mean), nil
}

func resize(x []float64, n int) []float64 {
	if cap(x) < n {
		return make([]float64, n)
	}
	x = x[:n]
	clear(x)
	return x
}

func residualLoss[T Float](s, w, z []T, sh tensor.Shape, per []float64) float64 {
	c, b, hw := sh[0], sh[1], sh[2]*sh[3]
	for ch := 0; ch < c; ch++ {
		for bi := 0; bi < b; bi++ {
			off := (ch*b + bi) * hw
			wb := float64(w[bi])
			var q float64
			for i, v := range s[off : off+hw] {
				r := wb*float64(v) + float64(z[off+i])
				q += r * r
			}
			per[bi] += q / 2
		}
	}
	var mean float64
	for _, p := range per {
		mean += p
	}
	return mean / float64(b)
}

func (op *ResidualLossOp) DiffWRT(int) []bool { return []bool{true, false, false} }

func (op *ResidualLossOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	ds, err := G.ApplyOp(&residualGradOp{base: newBase("residualloss.ds", 4, 4, 1, 4, 0)}, inputs[0], inputs[1], inputs[2], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{ds, nil, nil}, nil
}

// residualGradOp computes ∂L/∂s = g·w_b(w_b·s_b + z_b)/B.
type residualGradOp struct{ base }

func (op *residualGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t4, t1 := G.TensorType{Dims: 4, Of: a}, G.TensorType{Dims: 1, Of: a}
	return hm.NewFnType(t4, t1, t4, a, t4)
}

func (op *residualGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in[:1])
	if err != nil {
		return nil, err
	}
	return s[0].Clone(), nil
}

func (op *residualGradOp) Do(vs ...G.Value) (G.Value, error) {
	if len(vs) != 4 {
		return nil, fmt.Errorf("nn: %s wants 4 inputs, got %d", op.name, len(vs))
	}
	in, err := dense(vs[:3], 3)
	if err != nil {
		return nil, err
	}
	g, err := scalarOf(op.name, vs[3])
	if err != nil {
		return nil, err
	}
	out := op.output(in[0].Dtype(), in[0].Shape(), false)
	if in[0].Dtype() == tensor.Float32 {
		residualGrad(f32(in[0]), f32(in[1]), f32(in[2]), f32(out), in[0].Shape(), g)
	} else {
		residualGrad(f64(in[0]), f64(in[1]), f64(in[2]), f64(out), in[0].Shape(), g)
	}
	return out, nil
}

func residualGrad[T Float](s, w, z, ds []T, sh tensor.Shape, g float64) {
	c, b, hw := sh[0], sh[1], sh[2]*sh[3]
	for ch := 0; ch < c; ch++ {
		for bi := 0; bi < b; bi++ {
			off := (ch*b + bi) * hw
			wb := w[bi]
			k := T(g / float64(b))
			for i, v := range s[off : off+hw] {
				ds[off+i] = k * wb * (wb*v + z[off+i])
			}
		}
	}
}
