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
// forward pass's stats.
func (d *Device) GroupNormSiLUGrad(dx, dgamma, dbeta, x, dy, gamma, beta, stats Buffer, c, b, hw, groups int) error {
	if groups < 1 || c%groups != 0 {
		return fmt.Errorf("cuda: groupnorm grad: %d channels in %d groups", c, groups)
	}
	n := c * b * hw
	if err := want("groupnorm grad", dx.N, n, x.N, n, dy.N, n, dgamma.N, c, dbeta.N, c, gamma.N, c, beta.N, c, stats.N, 2*groups*b); err != nil {
		return err
	}
	p, err := pack(d.b.argSpace(), []any{dx, x, dy, gamma, beta, stats, c, b, hw, groups})
	if err != nil {
		return err
	}
	if err := d.b.launch("ncsn_gn_silu_grad_x", [3]uint32{uint32(groups * b), 1, 1}, [3]uint32{gnThreads, 1, 1}, p); err != nil {
		return err
	}
	if p, err = pack(d.b.argSpace(), []any{dgamma, dbeta, x, dy, gamma, beta, stats, c, b, hw, groups}); err != nil {
		return err
	}
	return d.b.launch("ncsn_gn_silu_grad_affine", [3]uint32{uint32(c), 1, 1}, [3]uint32{gnThreads, 1, 1}, p)
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
	return d.launch1D("ncsn_channel_bias_grad", de.N, de, dh, c, b, hw)
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
	return d.b.launch("ncsn_residual_loss", [3]uint32{uint32(b), 1, 1}, [3]uint32{gnThreads, 1, 1}, p)
}
