package nn

import (
	"fmt"

	"github.com/ncsn-go/ncsn/internal/blas"
	"github.com/ncsn-go/ncsn/internal/kernel"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ConvGeom is the geometry of a square-kernel convolution.
type ConvGeom struct {
	K, Stride, Pad int
}

func (g ConvGeom) outSize(n int) int { return (n+2*g.Pad-g.K)/g.Stride + 1 }

// pointwise reports whether the convolution is a plain per-pixel product,
// which needs no im2col at all.
func (g ConvGeom) pointwise() bool { return g.K == 1 && g.Stride == 1 && g.Pad == 0 }

// directConv is a convolution on the SIMD kernels (AVX-512 or AVX2).
type directConv interface {
	PaddedLen() int
	Forward(x, w, bias, y []float32)
	ForwardPadded(x, w, bias, y, xp []float32)
	Backward(x, xp, w, dy, dx, dw []float32)
}

// direct reports whether a float32 convolution of this geometry runs on the
// SIMD kernels (3×3 pad 1 with stride 1, or stride 2 on even sizes: all of
// the network's 3×3 convolutions), and gives them for x (C,B,H,W) and o
// output channels.
func (g ConvGeom) direct(dt tensor.Dtype, xs tensor.Shape, o int) (directConv, bool) {
	if dt != tensor.Float32 || g.K != 3 || g.Pad != 1 || !kernel.Available() {
		return nil, false
	}
	switch {
	case g.Stride == 1:
		return kernel.Conv3{C: xs[0], O: o, B: xs[1], H: xs[2], W: xs[3]}, true
	case g.Stride == 2 && xs[2]%2 == 0 && xs[3]%2 == 0:
		return kernel.Conv3S2{C: xs[0], O: o, B: xs[1], H: xs[2], W: xs[3]}, true
	}
	return nil, false
}

// colBudget bounds the im2col scratch (elements), so that batch 128 at 28×28
// needs tens of megabytes, not hundreds; the chunked products stay large.
const colBudget = 1 << 21

func chunkImages(k, ohw, b int) int {
	n := colBudget / (k * ohw)
	if n < 1 {
		n = 1
	}
	if n > b {
		n = b
	}
	return n
}

// Conv2D is y = conv(x, w) + bias for x (C,B,H,W), w (O,C,K,K), bias (O),
// giving y (O,B,OH,OW).
func Conv2D(x, w, bias *G.Node, geom ConvGeom) (*G.Node, error) {
	if x.Dims() != 4 || w.Dims() != 4 || bias.Dims() != 1 {
		return nil, fmt.Errorf("nn: conv2d wants x 4-D, w 4-D, bias 1-D; got %v %v %v", x.Shape(), w.Shape(), bias.Shape())
	}
	xs, ws := x.Shape(), w.Shape()
	if ws[1] != xs[0] || ws[2] != geom.K || ws[3] != geom.K || bias.Shape()[0] != ws[0] {
		return nil, fmt.Errorf("nn: conv2d shapes do not fit: x %v w %v bias %v k %d", xs, ws, bias.Shape(), geom.K)
	}
	op := &convOp{base: newBase(fmt.Sprintf("conv%dx%d/s%d", geom.K, geom.K, geom.Stride), 4, 4, 4, 1), geom: geom}
	return G.ApplyOp(op, x, w, bias)
}

type convOp struct {
	base
	geom ConvGeom
	col  any
	// With a gradient on the direct kernels, the forward pass keeps its
	// padded input (xp) for the backward pass of the same run.
	keep bool
	xp   []float32
}

func (op *convOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in)
	if err != nil {
		return nil, err
	}
	x, w := s[0], s[1]
	return tensor.Shape{w[0], x[1], op.geom.outSize(x[2]), op.geom.outSize(x[3])}, nil
}

func (op *convOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 3)
	if err != nil {
		return nil, err
	}
	xs, ws := in[0].Shape(), in[1].Shape()
	oh, ow := op.geom.outSize(xs[2]), op.geom.outSize(xs[3])
	out := op.output(in[0].Dtype(), tensor.Shape{ws[0], xs[1], oh, ow}, false)
	if k, ok := op.geom.direct(in[0].Dtype(), xs, ws[0]); ok {
		if !op.keep {
			k.Forward(f32(in[0]), f32(in[1]), f32(in[2]), f32(out))
			return out, nil
		}
		if len(op.xp) != k.PaddedLen() {
			op.xp = make([]float32, k.PaddedLen())
		}
		k.ForwardPadded(f32(in[0]), f32(in[1]), f32(in[2]), f32(out), op.xp)
	} else if in[0].Dtype() == tensor.Float32 {
		convForward(f32(in[0]), f32(in[1]), f32(in[2]), f32(out), xs, ws[0], op.geom, &op.col)
	} else {
		convForward(f64(in[0]), f64(in[1]), f64(in[2]), f64(out), xs, ws[0], op.geom, &op.col)
	}
	return out, nil
}

func (op *convOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *convOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	x, w := inputs[0], inputs[1]
	if _, ok := op.geom.direct(x.Dtype(), x.Shape(), w.Shape()[0]); ok {
		return op.directGrad(x, w, grad)
	}
	dx, err := G.ApplyOp(&convGradXOp{base: newBase(op.name+".dx", 4, 4, 4), geom: op.geom, xShape: x.Shape().Clone()}, w, grad)
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(&convGradWOp{base: newBase(op.name+".dw", 4, 4, 4), geom: op.geom, wShape: w.Shape().Clone()}, x, grad)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(&rowSumOp{base: newBase(op.name+".db", 1, 4)}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw, db}, nil
}

// directGrad is the gradient on the direct kernels: one operator pads ∂y once
// and computes ∂x, ∂w and ∂bias; ∂w and ∂bias are handed over by stash
// operators.
func (op *convOp) directGrad(x, w, grad *G.Node) (G.Nodes, error) {
	op.keep = true
	back := &conv3GradOp{base: newBase(op.name+".grad", 4, 4, 4, 4), fwd: op, xShape: x.Shape().Clone(), wShape: w.Shape().Clone()}
	dx, err := G.ApplyOp(back, x, w, grad)
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(&stashOp{base: newBase(op.name+".dw", 4, 4), shape: w.Shape().Clone(), src: func() any { return back.dw }}, dx)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(&stashOp{base: newBase(op.name+".db", 1, 4), shape: tensor.Shape{w.Shape()[0]}, src: func() any { return back.db }}, dx)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw, db}, nil
}

// conv3GradOp computes ∂L/∂x of a direct 3×3 convolution from x, w and ∂L/∂y,
// keeping ∂L/∂w and ∂L/∂bias aside (float32 only).
type conv3GradOp struct {
	base
	fwd            *convOp
	xShape, wShape tensor.Shape
	dw, db         any
}

func (op *conv3GradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.xShape.Clone(), nil
}

func (op *conv3GradOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 3)
	if err != nil {
		return nil, err
	}
	k, ok := op.fwd.geom.direct(in[0].Dtype(), in[0].Shape(), op.wShape[0])
	if !ok {
		return nil, fmt.Errorf("nn: %s: the direct kernels do not take %v %v", op.name, in[0].Dtype(), in[0].Shape())
	}
	out := op.output(in[0].Dtype(), op.xShape, false)
	dw := scratch[float32](&op.dw, op.wShape.TotalSize())
	db := scratch[float32](&op.db, op.wShape[0])
	xp := op.fwd.xp
	if len(xp) != k.PaddedLen() {
		xp = nil
	}
	k.Backward(f32(in[0]), xp, f32(in[1]), f32(in[2]), f32(out), dw)
	rowSum(f32(in[2]), db)
	return out, nil
}

// scratch returns a reusable buffer of at least n elements.
func scratch[T Float](p *any, n int) []T {
	if s, ok := (*p).([]T); ok && len(s) >= n {
		return s[:n]
	}
	s := make([]T, n)
	*p = s
	return s
}

func convForward[T Float](x, w, bias, y []T, xs tensor.Shape, o int, g ConvGeom, col *any) {
	c, b, h, wd := xs[0], xs[1], xs[2], xs[3]
	oh, ow := g.outSize(h), g.outSize(wd)
	ohw := oh * ow
	k := c * g.K * g.K
	if g.pointwise() {
		blas.Gemm(false, false, o, b*ohw, c, 1, w, c, x, b*ohw, 0, y, b*ohw)
	} else {
		nb := chunkImages(k, ohw, b)
		buf := scratch[T](col, k*nb*ohw)
		for b0 := 0; b0 < b; b0 += nb {
			n := min(nb, b-b0)
			im2col(x, c, b, h, wd, b0, n, g, oh, ow, buf[:k*n*ohw])
			blas.Gemm(false, false, o, n*ohw, k, 1, w, k, buf, n*ohw, 0, y[b0*ohw:], b*ohw)
		}
	}
	kernel.ParallelFor(o, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := y[i*b*ohw : (i+1)*b*ohw]
			bv := bias[i]
			for j := range row {
				row[j] += bv
			}
		}
	})
}

// im2col writes, for images b0..b0+n of x (C,B,H,W), the matrix whose row
// (c,ky,kx) holds the input pixel each output pixel sees through that tap.
func im2col[T Float](x []T, c, b, h, w, b0, n int, g ConvGeom, oh, ow int, col []T) {
	ohw := oh * ow
	rowLen := n * ohw
	kernel.ParallelFor(c, func(clo, chi int) {
		for ci := clo; ci < chi; ci++ {
			for ky := 0; ky < g.K; ky++ {
				for kx := 0; kx < g.K; kx++ {
					row := col[((ci*g.K+ky)*g.K+kx)*rowLen:][:rowLen]
					lo, hi := 0, ow // output columns whose input column is inside the image (stride 1)
					if g.Stride == 1 {
						lo = max(0, g.Pad-kx)
						hi = min(ow, w+g.Pad-kx)
					}
					if g.Stride == 1 && oh == h && ow == w {
						for j := 0; j < n; j++ {
							shiftPlane(x[(ci*b+b0+j)*h*w:][:h*w], row[j*ohw:][:ohw], h, w, ky-g.Pad, kx-g.Pad, lo, hi)
						}
						continue
					}
					for j := 0; j < n; j++ {
						img := x[(ci*b+b0+j)*h*w:][:h*w]
						dst := row[j*ohw:][:ohw]
						for oy := 0; oy < oh; oy++ {
							d := dst[oy*ow : (oy+1)*ow]
							iy := oy*g.Stride + ky - g.Pad
							if iy < 0 || iy >= h {
								clear(d)
								continue
							}
							src := img[iy*w : (iy+1)*w]
							if g.Stride == 1 {
								clear(d[:lo])
								if hi > lo {
									copy(d[lo:hi], src[lo+kx-g.Pad:hi+kx-g.Pad])
								}
								clear(d[max(hi, lo):])
								continue
							}
							for ox := range d {
								ix := ox*g.Stride + kx - g.Pad
								if ix < 0 || ix >= w {
									d[ox] = 0
								} else {
									d[ox] = src[ix]
								}
							}
						}
					}
				}
			}
		}
	})
}

// shiftPlane writes dst[y][x] = src[y+dy][x+dx], zero outside src, for an
// h×w plane: one block copy, then the rows and columns that wrapped around
// are cleared. [lo, hi) are the columns whose source column is inside.
func shiftPlane[T Float](src, dst []T, h, w, dy, dx, lo, hi int) {
	ylo, yhi := max(0, -dy), min(h, h-dy)
	if ylo >= yhi || lo >= hi {
		clear(dst)
		return
	}
	a, e := ylo*w+lo, (yhi-1)*w+hi
	s := dy*w + dx
	clear(dst[:a])
	copy(dst[a:e], src[a+s:e+s])
	clear(dst[e:])
	if lo > 0 || hi < w {
		for y := ylo; y < yhi; y++ {
			r := dst[y*w : (y+1)*w]
			clear(r[:lo])
			clear(r[hi:])
		}
	}
}

// col2im adds each column entry back onto the input pixel it came from: the
// adjoint of im2col.
func col2im[T Float](col []T, c, b, h, w, b0, n int, g ConvGeom, oh, ow int, x []T) {
	ohw := oh * ow
	rowLen := n * ohw
	kernel.ParallelFor(c, func(clo, chi int) {
		for ci := clo; ci < chi; ci++ {
			for ky := 0; ky < g.K; ky++ {
				for kx := 0; kx < g.K; kx++ {
					row := col[((ci*g.K+ky)*g.K+kx)*rowLen:][:rowLen]
					lo, hi := 0, ow
					if g.Stride == 1 {
						lo = max(0, g.Pad-kx)
						hi = min(ow, w+g.Pad-kx)
					}
					for j := 0; j < n; j++ {
						img := x[(ci*b+b0+j)*h*w:][:h*w]
						src := row[j*ohw:][:ohw]
						for oy := 0; oy < oh; oy++ {
							s := src[oy*ow : (oy+1)*ow]
							iy := oy*g.Stride + ky - g.Pad
							if iy < 0 || iy >= h {
								continue
							}
							d := img[iy*w : (iy+1)*w]
							if g.Stride == 1 {
								off := kx - g.Pad
								for ox := lo; ox < hi; ox++ {
									d[ox+off] += s[ox]
								}
								continue
							}
							for ox, v := range s {
								ix := ox*g.Stride + kx - g.Pad
								if ix >= 0 && ix < w {
									d[ix] += v
								}
							}
						}
					}
				}
			}
		}
	})
}

// convGradXOp computes ∂L/∂x from w and ∂L/∂y.
type convGradXOp struct {
	base
	geom   ConvGeom
	xShape tensor.Shape
	col    any
	flip   any
}

func (op *convGradXOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.xShape.Clone(), nil
}

func (op *convGradXOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 2)
	if err != nil {
		return nil, err
	}
	out := op.output(in[0].Dtype(), op.xShape, true)
	o := in[0].Shape()[0]
	if in[0].Dtype() == tensor.Float32 {
		convBackX(f32(in[0]), f32(in[1]), f32(out), op.xShape, o, op.geom, &op.col, &op.flip)
	} else {
		convBackX(f64(in[0]), f64(in[1]), f64(out), op.xShape, o, op.geom, &op.col, &op.flip)
	}
	return out, nil
}

func convBackX[T Float](w, dy, dx []T, xs tensor.Shape, o int, g ConvGeom, col, flip *any) {
	c, b, h, wd := xs[0], xs[1], xs[2], xs[3]
	oh, ow := g.outSize(h), g.outSize(wd)
	ohw := oh * ow
	k := c * g.K * g.K
	if g.pointwise() {
		blas.Gemm(true, false, c, b*ohw, o, 1, w, c, dy, b*ohw, 0, dx, b*ohw)
		return
	}
	if g.Stride == 1 {
		// ∂x is the convolution of ∂y with the flipped, transposed kernel:
		// im2col copies rows where col2im would scatter-add every element.
		kk := g.K * g.K
		wf := scratch[T](flip, c*o*kk)
		for oc := 0; oc < o; oc++ {
			for ic := 0; ic < c; ic++ {
				for t := 0; t < kk; t++ {
					wf[(ic*o+oc)*kk+kk-1-t] = w[(oc*c+ic)*kk+t]
				}
			}
		}
		tg := ConvGeom{K: g.K, Stride: 1, Pad: g.K - 1 - g.Pad}
		kt, hw := o*kk, h*wd
		nb := chunkImages(kt, hw, b)
		buf := scratch[T](col, kt*nb*hw)
		for b0 := 0; b0 < b; b0 += nb {
			n := min(nb, b-b0)
			im2col(dy, o, b, oh, ow, b0, n, tg, h, wd, buf[:kt*n*hw])
			blas.Gemm(false, false, c, n*hw, kt, 1, wf, kt, buf, n*hw, 0, dx[b0*hw:], b*hw)
		}
		return
	}
	nb := chunkImages(k, ohw, b)
	buf := scratch[T](col, k*nb*ohw)
	for b0 := 0; b0 < b; b0 += nb {
		n := min(nb, b-b0)
		blas.Gemm(true, false, k, n*ohw, o, 1, w, k, dy[b0*ohw:], b*ohw, 0, buf, n*ohw)
		col2im(buf[:k*n*ohw], c, b, h, wd, b0, n, g, oh, ow, dx)
	}
}

// convGradWOp computes ∂L/∂w from x and ∂L/∂y.
type convGradWOp struct {
	base
	geom   ConvGeom
	wShape tensor.Shape
	col    any
}

func (op *convGradWOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.wShape.Clone(), nil
}

func (op *convGradWOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 2)
	if err != nil {
		return nil, err
	}
	out := op.output(in[0].Dtype(), op.wShape, true)
	if in[0].Dtype() == tensor.Float32 {
		convBackW(f32(in[0]), f32(in[1]), f32(out), in[0].Shape(), op.wShape[0], op.geom, &op.col)
	} else {
		convBackW(f64(in[0]), f64(in[1]), f64(out), in[0].Shape(), op.wShape[0], op.geom, &op.col)
	}
	return out, nil
}

func convBackW[T Float](x, dy, dw []T, xs tensor.Shape, o int, g ConvGeom, col *any) {
	c, b, h, wd := xs[0], xs[1], xs[2], xs[3]
	oh, ow := g.outSize(h), g.outSize(wd)
	ohw := oh * ow
	k := c * g.K * g.K
	if g.pointwise() {
		blas.Gemm(false, true, o, c, b*ohw, 1, dy, b*ohw, x, b*ohw, 0, dw, c)
		return
	}
	nb := chunkImages(k, ohw, b)
	buf := scratch[T](col, k*nb*ohw)
	for b0 := 0; b0 < b; b0 += nb {
		n := min(nb, b-b0)
		im2col(x, c, b, h, wd, b0, n, g, oh, ow, buf[:k*n*ohw])
		blas.Gemm(false, true, o, k, n*ohw, 1, dy[b0*ohw:], b*ohw, buf, n*ohw, 1, dw, k)
	}
}

// rowSumOp sums a (C, ...) tensor over everything but its first axis: the
// gradient of a per-channel bias.
type rowSumOp struct{ base }

func (op *rowSumOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(in)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[0][0]}, nil
}

func (op *rowSumOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := dense(vs, 1)
	if err != nil {
		return nil, err
	}
	c := in[0].Shape()[0]
	out := op.output(in[0].Dtype(), tensor.Shape{c}, false)
	if in[0].Dtype() == tensor.Float32 {
		rowSum(f32(in[0]), f32(out))
	} else {
		rowSum(f64(in[0]), f64(out))
	}
	return out, nil
}

func rowSum[T Float](x, out []T) {
	n := len(x) / len(out)
	x32, fast := any(x).([]float32)
	fast = fast && kernel.Available()
	kernel.ParallelFor(len(out), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if fast {
				s, _ := kernel.SumSq(x32[i*n : (i+1)*n])
				out[i] = T(s)
				continue
			}
			var s float64
			for _, v := range x[i*n : (i+1)*n] {
				s += float64(v)
			}
			out[i] = T(s)
		}
	})
}
