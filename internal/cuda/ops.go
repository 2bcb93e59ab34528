package cuda

import "fmt"

// The network's operators on device buffers, in package nn's channel-major
// layout (C, B, H, W). Each checks its buffers' sizes and launches one
// kernel of kernels.cu.

func want(op string, pairs ...int) error {
	for i := 0; i < len(pairs); i += 2 {
		if pairs[i] != pairs[i+1] {
			return fmt.Errorf("cuda: %s: buffer %d holds %d values, the shapes need %d", op, i/2+1, pairs[i], pairs[i+1])
		}
	}
	return nil
}

// GroupNormSiLUGrad writes ∂x, ∂γ and ∂β of GroupNormSiLU from ∂y and the
// forward pass's stats; part (2·c·b values) is its workspace: each
// channel's sums over each image, which ∂γ and ∂β add up.
func (d *Device) GroupNormSiLUGrad(dx, dgamma, dbeta, x, dy, gamma, beta, stats, part Buffer, c, b, hw, groups int) error {
	if groups < 1 || c%groups != 0 {
		return fmt.Errorf("cuda: groupnorm grad: %d channels in %d groups", c, groups)
	}
	n := c * b * hw
	if err := want("groupnorm grad", dx.N, n, x.N, n, dy.N, n, dgamma.N, c, dbeta.N, c, gamma.N, c, beta.N, c, stats.N, 2*groups*b, part.N, 2*c*b); err != nil {
		return err
	}
	p, err := pack(d.b.argSpace(), []any{dx, part, x, dy, gamma, beta, stats, c, b, hw, groups})
	if err != nil {
		return err
	}
	if err := d.b.launch("ncsn_gn_silu_grad_x", [3]uint32{uint32(groups * b), 1, 1}, [3]uint32{d.reduceThreads(), 1, 1}, p); err != nil {
		return err
	}
	return d.launch1D("ncsn_gn_silu_grad_affine", c, dgamma, dbeta, part, c, b)
}

// Conv3Out is the output side of a 3×3, pad 1 convolution of the stride.
func Conv3Out(h, w, stride int) (int, int) { return (h-1)/stride + 1, (w-1)/stride + 1 }

// Im2Col3 writes the 3×3, pad 1 patches of x (C,B,H,W) as C·9 rows of
// B·OH·OW columns: w (O, C·9) times col is the convolution.
func (d *Device) Im2Col3(col, x Buffer, c, b, h, w, stride int) error {
	oh, ow := Conv3Out(h, w, stride)
	if err := want("im2col", col.N, c*9*b*oh*ow, x.N, c*b*h*w); err != nil {
		return err
	}
	return d.launch1D("ncsn_im2col3", col.N, col, x, c, b, h, w, stride)
}

// Col2Im3 is Im2Col3's adjoint: the input gradient from the columns'.
func (d *Device) Col2Im3(dx, col Buffer, c, b, h, w, stride int) error {
	oh, ow := Conv3Out(h, w, stride)
	if err := want("col2im", col.N, c*9*b*oh*ow, dx.N, c*b*h*w); err != nil {
		return err
	}
	return d.launch1D("ncsn_col2im3", dx.N, dx, col, c, b, h, w, stride)
}

// ChannelBias adds e (B, C) to h (C, B, HW) in place.
func (d *Device) ChannelBias(h, e Buffer, c, b, hw int) error {
	if err := want("channel bias", h.N, c*b*hw, e.N, b*c); err != nil {
		return err
	}
	return d.launch1D("ncsn_channel_bias", h.N, h, e, c, b, hw)
}

// ChannelBiasGrad sums dh (C, B, HW) over the pixels into de (B, C).
func (d *Device) ChannelBiasGrad(de, dh Buffer, c, b, hw int) error {
	if err := want("channel bias grad", dh.N, c*b*hw, de.N, b*c); err != nil {
		return err
	}
	return d.launchRows("ncsn_channel_bias_grad", c*b, de, dh, c, b, hw)
}

// ScaleBatch writes y = h·v[b] for h (C, B, HW) and v (B).
func (d *Device) ScaleBatch(y, h, v Buffer, c, b, hw int) error {
	if err := want("scale batch", y.N, c*b*hw, h.N, c*b*hw, v.N, b); err != nil {
		return err
	}
	return d.launch1D("ncsn_scale_batch", y.N, y, h, v, c, b, hw)
}

// Upsample2x doubles p planes of h×w by nearest neighbour.
func (d *Device) Upsample2x(y, x Buffer, p, h, w int) error {
	if err := want("upsample", y.N, 4*p*h*w, x.N, p*h*w); err != nil {
		return err
	}
	return d.launch1D("ncsn_upsample2x", y.N, y, x, p, h, w)
}

// Upsample2xGrad sums each 2×2 block of dy into dx.
func (d *Device) Upsample2xGrad(dx, dy Buffer, p, h, w int) error {
	if err := want("upsample grad", dy.N, 4*p*h*w, dx.N, p*h*w); err != nil {
		return err
	}
	return d.launch1D("ncsn_upsample2x_grad", dx.N, dx, dy, p, h, w)
}

// ResidualLoss writes each image's ½‖σ·s + z‖² into per (B) and the
// gradient of their mean with respect to s into ds, for s and z (C, B, HW).
func (d *Device) ResidualLoss(per, ds, s, sigma, z Buffer, c, b, hw int) error {
	n := c * b * hw
	if err := want("residual loss", per.N, b, ds.N, n, s.N, n, sigma.N, b, z.N, n); err != nil {
		return err
	}
	p, err := pack(d.b.argSpace(), []any{per, ds, s, sigma, z, c, b, hw})
	if err != nil {
		return err
	}
	return d.b.launch("ncsn_residual_loss", [3]uint32{uint32(b), 1, 1}, [3]uint32{d.reduceThreads(), 1, 1}, p)
}

// Gemm is C = α·op(A)·op(B) + β·C for row-major matrices, op(A) m×k and
// op(B) k×n, where op transposes when asked (cuBLAS's sgemm on the GPU).
func (d *Device) Gemm(transA, transB bool, m, n, k int, alpha float32, a, b Buffer, beta float32, c Buffer) error {
	if err := want("gemm", a.N, m*k, b.N, k*n, c.N, m*n); err != nil {
		return err
	}
	return d.b.gemm(transA, transB, m, n, k, alpha, a.Ptr, b.Ptr, beta, c.Ptr)
}

// Copy copies src into the first src.N values of dst (concatenating
// channels in the channel-major layout is two copies).
func (d *Device) Copy(dst Buffer, offset int, src Buffer) error {
	if offset < 0 || offset+src.N > dst.N {
		return fmt.Errorf("cuda: copying %d values to offset %d of a buffer of %d", src.N, offset, dst.N)
	}
	return d.b.copyDevice(dst.Ptr+DevPtr(4*offset), src.Ptr, 4*src.N)
}

// Conv3 is a 3×3, pad 1 convolution of C to O channels over B images of
// H×W at a stride. With cuDNN (the GPU, unless NCSN_CUDNN=off) it runs
// cuDNN's convolutions; otherwise im2col and one matrix product, Col then
// being its workspace of C·9 × B·OH·OW values (ColSize), which Forward and
// BackwardW fill.
type Conv3 struct {
	C, O, B, H, W, Stride int
	Col                   Buffer
}

// ColSize is the number of values of the workspace.
func (g Conv3) ColSize() int {
	oh, ow := Conv3Out(g.H, g.W, g.Stride)
	return g.C * 9 * g.B * oh * ow
}

func (g Conv3) n() int {
	oh, ow := Conv3Out(g.H, g.W, g.Stride)
	return g.B * oh * ow
}

// UsesIm2col reports whether the device's 3×3 convolutions need the im2col
// workspaces (Conv3.Col, and dcol for BackwardX): false where cuDNN runs
// them.
func (d *Device) UsesIm2col() bool { return d.dnn == nil }

// PlanConv3 prepares g ahead of its first run: with cuDNN, its descriptors,
// its algorithms and the shared workspace (memory is not allocated while a
// graph runs); nothing otherwise.
func (d *Device) PlanConv3(g Conv3) error {
	if d.dnn == nil {
		return nil
	}
	if _, err := d.dnnPrepare(g); err != nil {
		return fmt.Errorf("%w (%s=off runs the convolutions without cuDNN)", err, CudnnEnv)
	}
	return nil
}

// Conv3Forward writes y (O, B, OH, OW) = w ⋆ x + bias, w (O, C, 3, 3).
func (d *Device) Conv3Forward(g Conv3, y, x, w, bias Buffer) error {
	if err := want("conv bias", bias.N, g.O); err != nil {
		return err
	}
	if d.dnn != nil {
		return d.dnnForward(g, y, x, w, bias) // the bias added as the layout is restored
	}
	if err := d.Im2Col3(g.Col, x, g.C, g.B, g.H, g.W, g.Stride); err != nil {
		return err
	}
	if err := d.Gemm(false, false, g.O, g.n(), g.C*9, 1, w, g.Col, 0, y); err != nil {
		return err
	}
	return d.launch1D("ncsn_bias_rows", y.N, y, bias, g.O, g.n())
}

// Conv3BackwardW writes dw = ∂y ⋆ x (the weights' gradient) and dbias =
// the row sums of dy.
func (d *Device) Conv3BackwardW(g Conv3, dw, dbias, x, dy Buffer) error {
	if err := want("conv bias grad", dbias.N, g.O, dy.N, g.O*g.n()); err != nil {
		return err
	}
	if d.dnn != nil {
		if err := d.dnnBackwardW(g, dw, x, dy); err != nil {
			return err
		}
	} else {
		if err := d.Im2Col3(g.Col, x, g.C, g.B, g.H, g.W, g.Stride); err != nil {
			return err
		}
		if err := d.Gemm(false, true, g.O, g.C*9, g.n(), 1, dy, g.Col, 0, dw); err != nil {
			return err
		}
	}
	return d.RowSums(dbias, dy, g.O, g.n())
}

// Conv3Backward writes both gradients of a convolution: dw and dbias as
// Conv3BackwardW, dx as Conv3BackwardX. With cuDNN the NCHW copy of dy is
// made once for both.
func (d *Device) Conv3Backward(g Conv3, dx, dw, dbias, x, w, dy, dcol Buffer) error {
	if d.dnn == nil {
		if err := d.Conv3BackwardW(g, dw, dbias, x, dy); err != nil {
			return err
		}
		return d.Conv3BackwardX(g, dx, w, dy, dcol)
	}
	if err := want("conv bias grad", dbias.N, g.O, dy.N, g.O*g.n()); err != nil {
		return err
	}
	if err := d.dnnBackward(g, dx, dw, x, w, dy); err != nil {
		return err
	}
	return d.RowSums(dbias, dy, g.O, g.n())
}

// Conv3BackwardX writes dx, the input's gradient: col2im(wᵀ · dy) with dcol
// (ColSize values) as its workspace, or cuDNN's (dcol unused).
func (d *Device) Conv3BackwardX(g Conv3, dx, w, dy, dcol Buffer) error {
	if d.dnn != nil {
		return d.dnnBackwardX(g, dx, w, dy)
	}
	if err := d.Gemm(true, false, g.C*9, g.n(), g.O, 1, w, dy, 0, dcol); err != nil {
		return err
	}
	return d.Col2Im3(dx, dcol, g.C, g.B, g.H, g.W, g.Stride)
}

// Linear writes y (B, Out) = x (B, In) · w (In, Out) + b.
func (d *Device) Linear(y, x, w, b Buffer, batch, in, out int) error {
	if err := want("linear bias", b.N, out); err != nil {
		return err
	}
	if err := d.Gemm(false, false, batch, out, in, 1, x, w, 0, y); err != nil {
		return err
	}
	return d.launch1D("ncsn_bias_cols", y.N, y, b, batch, out)
}

// LinearBackward writes dx = dy · wᵀ, dw = xᵀ · dy and db = the column sums
// of dy.
func (d *Device) LinearBackward(dx, dw, db, x, w, dy Buffer, batch, in, out int) error {
	if err := want("linear bias grad", db.N, out); err != nil {
		return err
	}
	if err := d.Gemm(false, true, batch, in, out, 1, dy, w, 0, dx); err != nil {
		return err
	}
	if err := d.Gemm(true, false, in, out, batch, 1, x, dy, 0, dw); err != nil {
		return err
	}
	return d.ColSums(db, dy, batch, out)
}

// Add writes y = a + b.
func (d *Device) Add(y, a, b Buffer) error {
	n, err := sameSize("add", y, a, b)
	if err != nil {
		return err
	}
	return d.launch1D("ncsn_add", n, y, a, b, n)
}

// Pointwise is a 1×1 convolution of C to O channels over n = B·H·W pixels:
// y (O, n) = w (O, C) · x (C, n) + bias, as the channel-major layout lays
// the images out.
func (d *Device) Pointwise(y, x, w, bias Buffer, c, o, n int) error {
	if err := want("pointwise bias", bias.N, o); err != nil {
		return err
	}
	if err := d.Gemm(false, false, o, n, c, 1, w, x, 0, y); err != nil {
		return err
	}
	return d.launch1D("ncsn_bias_rows", y.N, y, bias, o, n)
}

// RowSums writes the sums of the rows of x (r × n) into out (r).
func (d *Device) RowSums(out, x Buffer, r, n int) error {
	if err := want("row sums", out.N, r, x.N, r*n); err != nil {
		return err
	}
	return d.launchRows("ncsn_row_sums", r, out, x, r, n)
}

// ColSums writes the sums of the columns of x (r × n) into out (n).
func (d *Device) ColSums(out, x Buffer, r, n int) error {
	if err := want("column sums", out.N, n, x.N, r*n); err != nil {
		return err
	}
	return d.launch1D("ncsn_col_sums", n, out, x, r, n)
}

// CopyFrom copies n values of src from offset into the start of dst.
func (d *Device) CopyFrom(dst, src Buffer, offset, n int) error {
	if offset < 0 || n < 0 || offset+n > src.N || n > dst.N {
		return fmt.Errorf("cuda: copying %d values from offset %d of a buffer of %d into one of %d", n, offset, src.N, dst.N)
	}
	return d.b.copyDevice(dst.Ptr, src.Ptr+DevPtr(4*offset), 4*n)
}

// ToGraph copies m images (m, C, HW) from src at image offset from into
// dst laid out (C, B, HW), zeroing the images past m.
func (d *Device) ToGraph(dst, src Buffer, from, m, c, b, hw int) error {
	if m < 1 || m > b || (from+m)*c*hw > src.N || dst.N != c*b*hw {
		return fmt.Errorf("cuda: to graph: images %d…%d of a buffer of %d values into %d×%d×%d", from, from+m, src.N, c, b, hw)
	}
	return d.launch1D("ncsn_to_graph", dst.N, dst, Buffer{Ptr: src.Ptr + DevPtr(4*from*c*hw), N: m * c * hw}, c, b, hw, m)
}

// FromGraph copies the first m images of src laid out (C, B, HW) into dst
// (images from … from+m−1 of (N, C, HW)).
func (d *Device) FromGraph(dst, src Buffer, from, m, c, b, hw int) error {
	if m < 1 || m > b || (from+m)*c*hw > dst.N || src.N != c*b*hw {
		return fmt.Errorf("cuda: from graph: %d images of %d×%d×%d into images %d… of a buffer of %d values", m, c, b, hw, from, dst.N)
	}
	return d.launch1D("ncsn_from_graph", m*c*hw, Buffer{Ptr: dst.Ptr + DevPtr(4*from*c*hw), N: m * c * hw}, src, c, b, hw, m)
}

// SoftmaxCE writes the softmax of each row of logits (b × k) into p and its
// cross-entropy against the one-hot rows of y into loss (b values): a
// classifier's −log p(label | x).
func (d *Device) SoftmaxCE(p, loss, logits, y Buffer, b, k int) error {
	if err := want("softmax cross-entropy", p.N, b*k, loss.N, b, logits.N, b*k, y.N, b*k); err != nil {
		return err
	}
	return d.launch1D("ncsn_softmax_ce", b, p, loss, logits, y, b, k)
}

// SoftmaxCEGrad writes dx = scale·(p − y), the gradient of SoftmaxCE's
// mean over b rows for scale = 1/b.
func (d *Device) SoftmaxCEGrad(dx, p, y Buffer, scale float64) error {
	n, err := sameSize("softmax cross-entropy grad", dx, p, y)
	if err != nil {
		return err
	}
	return d.launch1D("ncsn_softmax_ce_grad", n, dx, p, y, n, float32(scale))
}

// Axpy writes x ← x + a·s.
func (d *Device) Axpy(x, s Buffer, a float64) error {
	n, err := sameSize("axpy", x, s)
	if err != nil {
		return err
	}
	return d.launch1D("ncsn_langevin", n, x, s, n, float32(a), float32(0), uint64(0), uint64(0))
}
