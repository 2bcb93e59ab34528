// Package nn holds the Gorgonia operators the score network is built from.
//
// Gorgonia's own Conv2d, GroupNorm and broadcasting ops allocate and copy far
// more than they compute (see BENCHMARKS.md), so the hot paths are operators of
// our own, each with symbolic gradients (Gorgonia's SDOp interface) so that
// gorgonia.Grad differentiates graphs built from them.
//
// Image activations use a channel-major layout (C, B, H, W): a convolution over
// a chunk of the batch is then one matrix product written straight into its
// place in the output, and concatenation along channels is a plain copy.
// Every operator works in float32 (training, sampling) and float64 (gradient
// checks against finite differences). In float32 on a CPU with AVX-512 or AVX2, the
// 3×3 convolutions and GroupNorm+SiLU hand their loops to internal/kernel;
// the portable code here (im2col + BLAS, scalar loops) is the reference the
// kernels are tested against and the path everywhere else.
//
// DeviceRun runs graphs of these operators, training graphs included, on a
// GPU (package internal/cuda) or its CPU emulation, every value in device
// memory.
package nn

import (
	"fmt"
	"hash"
	"sync/atomic"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Float is the element type of the kernels.
type Float interface{ ~float32 | ~float64 }

var opCounter atomic.Uint64

// base carries what every operator shares. Each operator instance gets its own
// id, so that Gorgonia's hash-consing never merges two nodes whose operators
// keep per-instance buffers.
type base struct {
	id    uint64
	name  string
	in    []int // number of dimensions of each input
	out   int   // number of dimensions of the output
	cache tensor.Tensor
}

func newBase(name string, out int, in ...int) base {
	return base{id: opCounter.Add(1), name: name, in: in, out: out}
}

func (b *base) Arity() int { return len(b.in) }

func (b *base) Type() hm.Type {
	a := hm.TypeVariable('a')
	ts := make([]hm.Type, 0, len(b.in)+1)
	for _, d := range b.in {
		ts = append(ts, G.TensorType{Dims: d, Of: a})
	}
	ts = append(ts, G.TensorType{Dims: b.out, Of: a})
	return hm.NewFnType(ts...)
}

func (b *base) ReturnsPtr() bool     { return true }
func (b *base) CallsExtern() bool    { return false }
func (b *base) OverwritesInput() int { return -1 }
func (b *base) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "%s#%d", b.name, b.id)
}

// Hashcode is unique among our operators by construction (a bijection of
// the id), not only with high probability: Gorgonia takes two nodes whose
// hashes and operator hashcodes agree (with the same arity, type and shape)
// for one node (nodeEq) and merges them, and a 32-bit hash of name and id does
// collide (conv3#114897 and add#391038).
func (b *base) Hashcode() uint32 {
	return uint32(b.id) * 0x9e3779b1
}
func (b *base) String() string { return b.name }

// output returns the operator's own output buffer, reused from run to run so
// that a training step allocates nothing in steady state. Gorgonia's liveness
// analysis guarantees nobody reads it after the next run starts.
func (b *base) output(dt tensor.Dtype, shape tensor.Shape, zero bool) *tensor.Dense {
	if c, ok := b.cache.(*tensor.Dense); ok && c.Dtype() == dt && c.Shape().Eq(shape) {
		if zero {
			c.Zero()
		}
		return c
	}
	d := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
	b.cache = d
	return d
}

// shapes converts InferShape's arguments.
func shapes(in []G.DimSizer) ([]tensor.Shape, error) {
	out := make([]tensor.Shape, len(in))
	for i, d := range in {
		s, ok := d.(tensor.Shape)
		if !ok {
			return nil, fmt.Errorf("nn: input %d has no shape (%T)", i, d)
		}
		out[i] = s
	}
	return out, nil
}

func dense(vs []G.Value, want int) ([]*tensor.Dense, error) {
	if len(vs) != want {
		return nil, fmt.Errorf("nn: want %d inputs, got %d", want, len(vs))
	}
	out := make([]*tensor.Dense, len(vs))
	for i, v := range vs {
		d, ok := v.(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("nn: input %d is %T, not a dense tensor", i, v)
		}
		if i > 0 && d.Dtype() != out[0].Dtype() {
			return nil, fmt.Errorf("nn: input %d is %v, input 0 is %v", i, d.Dtype(), out[0].Dtype())
		}
		out[i] = d
	}
	switch out[0].Dtype() {
	case tensor.Float32, tensor.Float64:
	default:
		return nil, fmt.Errorf("nn: unsupported dtype %v", out[0].Dtype())
	}
	return out, nil
}

func f32(d *tensor.Dense) []float32 { return d.Data().([]float32) }
func f64(d *tensor.Dense) []float64 { return d.Data().([]float64) }

// scalarOf reads the upstream gradient of a scalar-valued operator.
func scalarOf(name string, v G.Value) (float64, error) {
	switch v := v.(type) {
	case *G.F32:
		return float64(*v), nil
	case *G.F64:
		return float64(*v), nil
	}
	return 0, fmt.Errorf("nn: %s: the upstream gradient is %T, not a scalar", name, v)
}

// stashOp hands over a result that another operator computed on the side, in
// the same pass as its own output. It takes that output as its input, so that
// it runs after it.
type stashOp struct {
	base
	shape tensor.Shape
	src   func() any // []float32 or []float64 of shape's size
}

func (op *stashOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return op.shape.Clone(), nil }

func (op *stashOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 1)
	if err != nil {
		return nil, err
	}
	out := op.output(in[0].Dtype(), op.shape, false)
	switch s := op.src().(type) {
	case []float32:
		copy(f32(out), s)
	case []float64:
		copy(f64(out), s)
	default:
		return nil, fmt.Errorf("nn: %s ran before its source", op.name)
	}
	return out, nil
}
