package nn

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ProbeDot is Σ s⊙v for s and a probe v of the same shape, as a scalar. Its
// gradient with respect to s is v, so differentiating it through a network
// gives the vector–Jacobian product vᵀ∂s/∂x. It reads s without overwriting
// it (Gorgonia's own element-wise operators may reuse their input in place).
func ProbeDot(s, v *G.Node) (*G.Node, error) {
	if s.Dims() != 4 || !s.Shape().Eq(v.Shape()) {
		return nil, fmt.Errorf("nn: probe dot wants s and v of one 4-D shape; got %v %v", s.Shape(), v.Shape())
	}
	return G.ApplyOp(&probeDotOp{base: newBase("probedot", 0, 4, 4)}, s, v)
}

type probeDotOp struct{ base }

func (op *probeDotOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t4 := G.TensorType{Dims: 4, Of: a}
	return hm.NewFnType(t4, t4, a)
}

func (op *probeDotOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}

func (op *probeDotOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 2)
	if err != nil {
		return nil, err
	}
	if in[0].Dtype() == tensor.Float32 {
		return G.NewF32(float32(dot(f32(in[0]), f32(in[1])))), nil
	}
	return G.NewF64(dot(f64(in[0]), f64(in[1]))), nil
}

func dot[T Float](a, b []T) float64 {
	var s float64
	for i, v := range a {
		s += float64(v) * float64(b[i])
	}
	return s
}

func (op *probeDotOp) DiffWRT(int) []bool { return []bool{true, false} }

func (op *probeDotOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	ds, err := G.ApplyOp(&probeGradOp{base: newBase("probedot.ds", 4, 4, 0)}, inputs[1], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{ds, nil}, nil
}

// probeGradOp computes ∂(Σ s⊙v)/∂s = g·v.
type probeGradOp struct{ base }

func (op *probeGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t4 := G.TensorType{Dims: 4, Of: a}
	return hm.NewFnType(t4, a, t4)
}

func (op *probeGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in[:1])
	if err != nil {
		return nil, err
	}
	return s[0].Clone(), nil
}

func (op *probeGradOp) Do(vs ...G.Value) (G.Value, error) {
	if len(vs) != 2 {
		return nil, fmt.Errorf("nn: %s wants 2 inputs, got %d", op.name, len(vs))
	}
	in, err := dense(vs[:1], 1)
	if err != nil {
		return nil, err
	}
	g, err := scalarOf(op.name, vs[1])
	if err != nil {
		return nil, err
	}
	out := op.output(in[0].Dtype(), in[0].Shape(), false)
	if in[0].Dtype() == tensor.Float32 {
		scaleInto(f32(out), f32(in[0]), g)
	} else {
		scaleInto(f64(out), f64(in[0]), g)
	}
	return out, nil
}

func scaleInto[T Float](dst, src []T, g float64) {
	for i, v := range src {
		dst[i] = T(g) * v
	}
}
