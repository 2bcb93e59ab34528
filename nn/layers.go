package nn

import (
	"fmt"

	"github.com/ncsn-go/ncsn/internal/blas"
	"github.com/ncsn-go/ncsn/internal/kernel"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// AddChannelBias is h + e broadcast over pixels: h (C,B,H,W), e (B,C). It is
// how the σ embedding enters each residual block.
func AddChannelBias(h, e *G.Node) (*G.Node, error) {
	hs, es := h.Shape(), e.Shape()
	if h.Dims() != 4 || e.Dims() != 2 || es[0] != hs[1] || es[1] != hs[0] {
		return nil, fmt.Errorf("nn: channel bias wants h (C,B,H,W) and e (B,C); got %v and %v", hs, es)
	}
	return G.ApplyOp(&chanBiasOp{base: newBase("chanbias", 4, 4, 2)}, h, e)
}

type chanBiasOp struct{ base }

func (op *chanBiasOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in)
	if err != nil {
		return nil, err
	}
	return s[0].Clone(), nil
}

func (op *chanBiasOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 2)
	if err != nil {
		return nil, err
	}
	out := op.output(in[0].Dtype(), in[0].Shape(), false)
	if in[0].Dtype() == tensor.Float32 {
		chanBias(f32(in[0]), f32(in[1]), f32(out), in[0].Shape())
	} else {
		chanBias(f64(in[0]), f64(in[1]), f64(out), in[0].Shape())
	}
	return out, nil
}

func chanBias[T Float](h, e, out []T, s tensor.Shape) {
	c, b, hw := s[0], s[1], s[2]*s[3]
	kernel.ParallelFor(c, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			for bi := 0; bi < b; bi++ {
				off := (ch*b + bi) * hw
				v := e[bi*c+ch]
				src, dst := h[off:off+hw], out[off:off+hw]
				for i, x := range src {
					dst[i] = x + v
				}
			}
		}
	})
}

func (op *chanBiasOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *chanBiasOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	de, err := G.ApplyOp(&chanBiasGradOp{base: newBase("chanbias.de", 2, 4)}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{grad, de}, nil
}

// chanBiasGradOp sums ∂L/∂h over pixels into (B,C).
type chanBiasGradOp struct{ base }

func (op *chanBiasGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[0][1], s[0][0]}, nil
}

func (op *chanBiasGradOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 1)
	if err != nil {
		return nil, err
	}
	s := in[0].Shape()
	out := op.output(in[0].Dtype(), tensor.Shape{s[1], s[0]}, false)
	if in[0].Dtype() == tensor.Float32 {
		pixelSum(f32(in[0]), f32(out), s)
	} else {
		pixelSum(f64(in[0]), f64(out), s)
	}
	return out, nil
}

func pixelSum[T Float](g, out []T, s tensor.Shape) {
	c, b, hw := s[0], s[1], s[2]*s[3]
	kernel.ParallelFor(c, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			for bi := 0; bi < b; bi++ {
				var sum float64
				for _, v := range g[(ch*b+bi)*hw:][:hw] {
					sum += float64(v)
				}
				out[bi*c+ch] = T(sum)
			}
		}
	})
}

// ScaleBatch is h·s with one scale per image: h (C,B,H,W), s (B). The score
// network divides its output by σ this way (s = 1/σ); s gets no gradient.
func ScaleBatch(h, s *G.Node) (*G.Node, error) {
	if h.Dims() != 4 || s.Dims() != 1 || s.Shape()[0] != h.Shape()[1] {
		return nil, fmt.Errorf("nn: scale batch wants h (C,B,H,W) and s (B); got %v and %v", h.Shape(), s.Shape())
	}
	return G.ApplyOp(&scaleBatchOp{base: newBase("scalebatch", 4, 4, 1)}, h, s)
}

type scaleBatchOp struct{ base }

func (op *scaleBatchOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in)
	if err != nil {
		return nil, err
	}
	return s[0].Clone(), nil
}

func (op *scaleBatchOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 2)
	if err != nil {
		return nil, err
	}
	out := op.output(in[0].Dtype(), in[0].Shape(), false)
	if in[0].Dtype() == tensor.Float32 {
		scaleBatch(f32(in[0]), f32(in[1]), f32(out), in[0].Shape())
	} else {
		scaleBatch(f64(in[0]), f64(in[1]), f64(out), in[0].Shape())
	}
	return out, nil
}

func scaleBatch[T Float](h, sc, out []T, s tensor.Shape) {
	c, b, hw := s[0], s[1], s[2]*s[3]
	for ch := 0; ch < c; ch++ {
		for bi := 0; bi < b; bi++ {
			off := (ch*b + bi) * hw
			v := sc[bi]
			for i, x := range h[off : off+hw] {
				out[off+i] = x * v
			}
		}
	}
}

func (op *scaleBatchOp) DiffWRT(int) []bool { return []bool{true, false} }

func (op *scaleBatchOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dh, err := ScaleBatch(grad, inputs[1])
	if err != nil {
		return nil, err
	}
	return G.Nodes{dh, nil}, nil
}

// Upsample2x repeats each pixel of x (C,B,H,W) into a 2×2 block (nearest).
func Upsample2x(x *G.Node) (*G.Node, error) {
	if x.Dims() != 4 {
		return nil, fmt.Errorf("nn: upsample wants a 4-D input, got %v", x.Shape())
	}
	return G.ApplyOp(&upsampleOp{base: newBase("upsample2x", 4, 4)}, x)
}

type upsampleOp struct{ base }

func (op *upsampleOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[0][0], s[0][1], 2 * s[0][2], 2 * s[0][3]}, nil
}

func (op *upsampleOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 1)
	if err != nil {
		return nil, err
	}
	s := in[0].Shape()
	out := op.output(in[0].Dtype(), tensor.Shape{s[0], s[1], 2 * s[2], 2 * s[3]}, false)
	if in[0].Dtype() == tensor.Float32 {
		upsample(f32(in[0]), f32(out), s)
	} else {
		upsample(f64(in[0]), f64(out), s)
	}
	return out, nil
}

func upsample[T Float](x, y []T, s tensor.Shape) {
	planes, h, w := s[0]*s[1], s[2], s[3]
	kernel.ParallelFor(planes, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			src, dst := x[p*h*w:][:h*w], y[p*4*h*w:][:4*h*w]
			for i := 0; i < h; i++ {
				r0 := dst[(2*i)*2*w:][:2*w]
				for j, v := range src[i*w : (i+1)*w] {
					r0[2*j], r0[2*j+1] = v, v
				}
				copy(dst[(2*i+1)*2*w:][:2*w], r0)
			}
		}
	})
}

func (op *upsampleOp) DiffWRT(int) []bool { return []bool{true} }

func (op *upsampleOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&poolSumOp{base: newBase("upsample2x.dx", 4, 4)}, grad)
	return G.Nodes{dx}, err
}

// poolSumOp sums 2×2 blocks: the adjoint of Upsample2x.
type poolSumOp struct{ base }

func (op *poolSumOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[0][0], s[0][1], s[0][2] / 2, s[0][3] / 2}, nil
}

func (op *poolSumOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 1)
	if err != nil {
		return nil, err
	}
	s := in[0].Shape()
	os := tensor.Shape{s[0], s[1], s[2] / 2, s[3] / 2}
	out := op.output(in[0].Dtype(), os, false)
	if in[0].Dtype() == tensor.Float32 {
		poolSum(f32(in[0]), f32(out), os)
	} else {
		poolSum(f64(in[0]), f64(out), os)
	}
	return out, nil
}

func poolSum[T Float](g, out []T, s tensor.Shape) {
	planes, h, w := s[0]*s[1], s[2], s[3]
	for p := 0; p < planes; p++ {
		src, dst := g[p*4*h*w:][:4*h*w], out[p*h*w:][:h*w]
		for i := 0; i < h; i++ {
			r0, r1 := src[(2*i)*2*w:][:2*w], src[(2*i+1)*2*w:][:2*w]
			for j := 0; j < w; j++ {
				dst[i*w+j] = r0[2*j] + r0[2*j+1] + r1[2*j] + r1[2*j+1]
			}
		}
	}
}

// ConcatChannels stacks a (C1,B,H,W) and b (C2,B,H,W) into (C1+C2,B,H,W).
func ConcatChannels(a, b *G.Node) (*G.Node, error) {
	as, bs := a.Shape(), b.Shape()
	if a.Dims() != 4 || b.Dims() != 4 || as[1] != bs[1] || as[2] != bs[2] || as[3] != bs[3] {
		return nil, fmt.Errorf("nn: concat wants (C,B,H,W) inputs that differ only in C; got %v and %v", as, bs)
	}
	return G.ApplyOp(&concatOp{base: newBase("concat", 4, 4, 4)}, a, b)
}

type concatOp struct{ base }

func (op *concatOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in)
	if err != nil {
		return nil, err
	}
	out := s[0].Clone()
	out[0] += s[1][0]
	return out, nil
}

func (op *concatOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 2)
	if err != nil {
		return nil, err
	}
	s := in[0].Shape().Clone()
	s[0] += in[1].Shape()[0]
	out := op.output(in[0].Dtype(), s, false)
	n := in[0].Shape().TotalSize()
	if in[0].Dtype() == tensor.Float32 {
		parallelCopy(f32(out), f32(in[0]))
		parallelCopy(f32(out)[n:], f32(in[1]))
	} else {
		parallelCopy(f64(out), f64(in[0]))
		parallelCopy(f64(out)[n:], f64(in[1]))
	}
	return out, nil
}

func (op *concatOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *concatOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	c1, c2 := inputs[0].Shape()[0], inputs[1].Shape()[0]
	da, err := G.ApplyOp(&sliceChanOp{base: newBase("concat.da", 4, 4), from: 0, to: c1}, grad)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(&sliceChanOp{base: newBase("concat.db", 4, 4), from: c1, to: c1 + c2}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{da, db}, nil
}

// sliceChanOp copies channels [from, to) of a (C,B,H,W) tensor.
type sliceChanOp struct {
	base
	from, to int
}

func (op *sliceChanOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in)
	if err != nil {
		return nil, err
	}
	out := s[0].Clone()
	out[0] = op.to - op.from
	return out, nil
}

func (op *sliceChanOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 1)
	if err != nil {
		return nil, err
	}
	s := in[0].Shape().Clone()
	per := s.TotalSize() / s[0]
	s[0] = op.to - op.from
	out := op.output(in[0].Dtype(), s, false)
	if in[0].Dtype() == tensor.Float32 {
		parallelCopy(f32(out), f32(in[0])[op.from*per:op.to*per])
	} else {
		parallelCopy(f64(out), f64(in[0])[op.from*per:op.to*per])
	}
	return out, nil
}

// Linear is x·w + b for x (B,In), w (In,Out), b (Out).
func Linear(x, w, b *G.Node) (*G.Node, error) {
	xs, ws := x.Shape(), w.Shape()
	if x.Dims() != 2 || w.Dims() != 2 || b.Dims() != 1 || xs[1] != ws[0] || b.Shape()[0] != ws[1] {
		return nil, fmt.Errorf("nn: linear wants x (B,In), w (In,Out), b (Out); got %v %v %v", xs, ws, b.Shape())
	}
	return G.ApplyOp(&linearOp{base: newBase("linear", 2, 2, 2, 1)}, x, w, b)
}

type linearOp struct{ base }

func (op *linearOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[0][0], s[1][1]}, nil
}

func (op *linearOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 3)
	if err != nil {
		return nil, err
	}
	bsz, n, m := in[0].Shape()[0], in[0].Shape()[1], in[1].Shape()[1]
	out := op.output(in[0].Dtype(), tensor.Shape{bsz, m}, false)
	if in[0].Dtype() == tensor.Float32 {
		linear(f32(in[0]), f32(in[1]), f32(in[2]), f32(out), bsz, n, m)
	} else {
		linear(f64(in[0]), f64(in[1]), f64(in[2]), f64(out), bsz, n, m)
	}
	return out, nil
}

func linear[T Float](x, w, b, y []T, bsz, n, m int) {
	for i := 0; i < bsz; i++ {
		copy(y[i*m:(i+1)*m], b)
	}
	blas.Gemm(false, false, bsz, m, n, 1, x, n, w, m, 1, y, m)
}

func (op *linearOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *linearOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&matMulOp{base: newBase("linear.dx", 2, 2, 2), tb: true}, grad, inputs[1])
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(&matMulOp{base: newBase("linear.dw", 2, 2, 2), ta: true}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(&colSumOp{base: newBase("linear.db", 1, 2)}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw, db}, nil
}

// matMulOp is op(a)·op(b) with optional transposes.
type matMulOp struct {
	base
	ta, tb bool
}

func (op *matMulOp) dims(a, b tensor.Shape) (m, n, k int) {
	m, k = a[0], a[1]
	if op.ta {
		m, k = k, m
	}
	n = b[1]
	if op.tb {
		n = b[0]
	}
	return
}

func (op *matMulOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in)
	if err != nil {
		return nil, err
	}
	m, n, _ := op.dims(s[0], s[1])
	return tensor.Shape{m, n}, nil
}

func (op *matMulOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 2)
	if err != nil {
		return nil, err
	}
	as, bs := in[0].Shape(), in[1].Shape()
	m, n, k := op.dims(as, bs)
	out := op.output(in[0].Dtype(), tensor.Shape{m, n}, false)
	if in[0].Dtype() == tensor.Float32 {
		blas.Gemm(op.ta, op.tb, m, n, k, 1, f32(in[0]), as[1], f32(in[1]), bs[1], 0, f32(out), n)
	} else {
		blas.Gemm(op.ta, op.tb, m, n, k, 1, f64(in[0]), as[1], f64(in[1]), bs[1], 0, f64(out), n)
	}
	return out, nil
}

// colSumOp sums a (B,N) matrix over its rows.
type colSumOp struct{ base }

func (op *colSumOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[0][1]}, nil
}

func (op *colSumOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 1)
	if err != nil {
		return nil, err
	}
	s := in[0].Shape()
	out := op.output(in[0].Dtype(), tensor.Shape{s[1]}, true)
	if in[0].Dtype() == tensor.Float32 {
		colSum(f32(in[0]), f32(out), s[0], s[1])
	} else {
		colSum(f64(in[0]), f64(out), s[0], s[1])
	}
	return out, nil
}

func colSum[T Float](x, out []T, r, c int) {
	for i := 0; i < r; i++ {
		for j, v := range x[i*c : (i+1)*c] {
			out[j] += v
		}
	}
}

// SiLU is x·sigmoid(x), element-wise, for any shape.
func SiLU(x *G.Node) (*G.Node, error) {
	return G.ApplyOp(&siluOp{base: newBase("silu", x.Dims(), x.Dims())}, x)
}

type siluOp struct{ base }

func (op *siluOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in)
	if err != nil {
		return nil, err
	}
	return s[0].Clone(), nil
}

func (op *siluOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 1)
	if err != nil {
		return nil, err
	}
	out := op.output(in[0].Dtype(), in[0].Shape(), false)
	if in[0].Dtype() == tensor.Float32 {
		silu(f32(in[0]), f32(out))
	} else {
		silu(f64(in[0]), f64(out))
	}
	return out, nil
}

func silu[T Float](x, y []T) {
	for i, v := range x {
		y[i] = v * sigmoid(v)
	}
}

func (op *siluOp) DiffWRT(int) []bool { return []bool{true} }

func (op *siluOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&siluGradOp{base: newBase("silu.dx", op.out, op.out, op.out)}, inputs[0], grad)
	return G.Nodes{dx}, err
}

type siluGradOp struct{ base }

func (op *siluGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in)
	if err != nil {
		return nil, err
	}
	return s[0].Clone(), nil
}

func (op *siluGradOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 2)
	if err != nil {
		return nil, err
	}
	out := op.output(in[0].Dtype(), in[0].Shape(), false)
	if in[0].Dtype() == tensor.Float32 {
		siluGrad(f32(in[0]), f32(in[1]), f32(out))
	} else {
		siluGrad(f64(in[0]), f64(in[1]), f64(out))
	}
	return out, nil
}

func siluGrad[T Float](x, g, dx []T) {
	for i, v := range x {
		s := sigmoid(v)
		dx[i] = g[i] * s * (1 + v*(1-s))
	}
}

// Add is a + b for tensors of one shape, into a buffer of its own (Gorgonia's
// Add allocates a new output every run).
func Add(a, b *G.Node) (*G.Node, error) {
	if !a.Shape().Eq(b.Shape()) {
		return nil, fmt.Errorf("nn: add wants one shape, got %v and %v", a.Shape(), b.Shape())
	}
	return G.ApplyOp(&addOp{base: newBase("add", a.Dims(), a.Dims(), a.Dims())}, a, b)
}

type addOp struct{ base }

func (op *addOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in)
	if err != nil {
		return nil, err
	}
	return s[0].Clone(), nil
}

func (op *addOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 2)
	if err != nil {
		return nil, err
	}
	out := op.output(in[0].Dtype(), in[0].Shape(), false)
	if in[0].Dtype() == tensor.Float32 {
		addInto(f32(in[0]), f32(in[1]), f32(out))
	} else {
		addInto(f64(in[0]), f64(in[1]), f64(out))
	}
	return out, nil
}

// parallelCopy is copy(dst, src) split over the cores in blocks of 64K
// values: the channel concatenations copy megabytes, which one core leaves
// the other waiting for.
func parallelCopy[T Float](dst, src []T) {
	const block = 1 << 16
	n := min(len(dst), len(src))
	kernel.ParallelFor((n+block-1)/block, func(lo, hi int) {
		copy(dst[lo*block:min(hi*block, n)], src[lo*block:min(hi*block, n)])
	})
}

func addInto[T Float](a, b, out []T) {
	kernel.ParallelFor(len(out)/4096+1, func(lo, hi int) {
		for i := lo * 4096; i < min(hi*4096, len(out)); i++ {
			out[i] = a[i] + b[i]
		}
	})
}

func (op *addOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *addOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	return G.Nodes{grad, grad}, nil
}
