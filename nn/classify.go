package nn

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Flatten turns images (C,B,H,W) into rows (B, C·H·W), in (C,H,W) order
// within a row: the bridge from convolutions to linear layers.
func Flatten(x *G.Node) (*G.Node, error) {
	if x.Dims() != 4 {
		return nil, fmt.Errorf("nn: flatten wants (C,B,H,W), got %v", x.Shape())
	}
	return G.ApplyOp(&flattenOp{base: newBase("flatten", 2, 4), shape: x.Shape().Clone()}, x)
}

type flattenOp struct {
	base
	shape   tensor.Shape // (C,B,H,W)
	inverse bool         // rows back to images: the gradient
}

func (op *flattenOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	s := op.shape
	if op.inverse {
		return s.Clone(), nil
	}
	return tensor.Shape{s[1], s[0] * s[2] * s[3]}, nil
}

func (op *flattenOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 1)
	if err != nil {
		return nil, err
	}
	os, _ := op.InferShape()
	out := op.output(in[0].Dtype(), os, false)
	if in[0].Dtype() == tensor.Float32 {
		flatten(f32(in[0]), f32(out), op.shape, op.inverse)
	} else {
		flatten(f64(in[0]), f64(out), op.shape, op.inverse)
	}
	return out, nil
}

func flatten[T Float](x, y []T, s tensor.Shape, inverse bool) {
	c, b, hw := s[0], s[1], s[2]*s[3]
	for ch := 0; ch < c; ch++ {
		for bi := 0; bi < b; bi++ {
			img := (ch*b + bi) * hw
			row := bi*c*hw + ch*hw
			if inverse {
				copy(y[img:img+hw], x[row:row+hw])
			} else {
				copy(y[row:row+hw], x[img:img+hw])
			}
		}
	}
}

func (op *flattenOp) DiffWRT(int) []bool { return []bool{true} }

func (op *flattenOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	n := op.in[0]
	back := &flattenOp{base: newBase("flatten.dx", n, op.out), shape: op.shape, inverse: !op.inverse}
	dx, err := G.ApplyOp(back, grad)
	return G.Nodes{dx}, err
}

// SoftmaxCrossEntropy is the mean over rows of −log softmax(logits)[label]
// for logits (B,K) and one-hot labels (B,K). After a run, Probs holds the
// softmax probabilities.
func SoftmaxCrossEntropy(logits, onehot *G.Node) (*G.Node, *SoftmaxCEOp, error) {
	if logits.Dims() != 2 || !logits.Shape().Eq(onehot.Shape()) {
		return nil, nil, fmt.Errorf("nn: cross-entropy wants logits and one-hot labels of one (B,K) shape; got %v and %v", logits.Shape(), onehot.Shape())
	}
	op := &SoftmaxCEOp{base: newBase("softmaxce", 0, 2, 2)}
	n, err := G.ApplyOp(op, logits, onehot)
	return n, op, err
}

// SoftmaxCEOp is the operator behind SoftmaxCrossEntropy.
type SoftmaxCEOp struct {
	base
	Probs []float64
}

func (op *SoftmaxCEOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t2 := G.TensorType{Dims: 2, Of: a}
	return hm.NewFnType(t2, t2, a)
}

func (op *SoftmaxCEOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}

func (op *SoftmaxCEOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 2)
	if err != nil {
		return nil, err
	}
	b, k := in[0].Shape()[0], in[0].Shape()[1]
	if cap(op.Probs) < b*k {
		op.Probs = make([]float64, b*k)
	}
	op.Probs = op.Probs[:b*k]
	var loss float64
	if in[0].Dtype() == tensor.Float32 {
		loss = softmaxCE(f32(in[0]), f32(in[1]), op.Probs, b, k)
		return G.NewF32(float32(loss)), nil
	}
	loss = softmaxCE(f64(in[0]), f64(in[1]), op.Probs, b, k)
	return G.NewF64(loss), nil
}

func softmaxCE[T Float](logits, y []T, probs []float64, b, k int) float64 {
	var loss float64
	for i := 0; i < b; i++ {
		row := logits[i*k : (i+1)*k]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		var z float64
		for j, v := range row {
			e := math.Exp(float64(v) - mx)
			probs[i*k+j] = e
			z += e
		}
		for j := range row {
			probs[i*k+j] /= z
			if y[i*k+j] != 0 {
				loss -= float64(y[i*k+j]) * (float64(row[j]) - mx - math.Log(z))
			}
		}
	}
	return loss / float64(b)
}

func (op *SoftmaxCEOp) DiffWRT(int) []bool { return []bool{true, false} }

func (op *SoftmaxCEOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	d, err := G.ApplyOp(&softmaxCEGradOp{base: newBase("softmaxce.dx", 2, 2, 2, 0), fwd: op}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{d, nil}, nil
}

// softmaxCEGradOp is g·(softmax − y)/B, from the probabilities the forward
// pass kept.
type softmaxCEGradOp struct {
	base
	fwd *SoftmaxCEOp
}

func (op *softmaxCEGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	t2 := G.TensorType{Dims: 2, Of: a}
	return hm.NewFnType(t2, t2, a, t2)
}

func (op *softmaxCEGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in[:1])
	if err != nil {
		return nil, err
	}
	return s[0].Clone(), nil
}

func (op *softmaxCEGradOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs[:2], 2)
	if err != nil {
		return nil, err
	}
	g, err := scalarOf(op.name, vs[2])
	if err != nil {
		return nil, err
	}
	b := in[0].Shape()[0]
	out := op.output(in[0].Dtype(), in[0].Shape(), false)
	p := op.fwd.Probs
	if len(p) != in[0].Shape().TotalSize() {
		return nil, fmt.Errorf("nn: %s ran before its forward pass", op.name)
	}
	if in[0].Dtype() == tensor.Float32 {
		ceGrad(p, f32(in[1]), f32(out), g/float64(b))
	} else {
		ceGrad(p, f64(in[1]), f64(out), g/float64(b))
	}
	return out, nil
}

func ceGrad[T Float](p []float64, y, d []T, k float64) {
	for i := range d {
		d[i] = T(k * (p[i] - float64(y[i])))
	}
}
