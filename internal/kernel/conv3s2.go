package kernel

// Conv3S2 is a 3×3, stride 2, pad 1 convolution of C input and O output
// channels over B images of H×W (H and W even), giving (O, B, H/2, W/2).
//
// It runs as a stride-1 convolution over the input's four phases
// P[c,a,b][i,j] = x[c][2i+a][2j+b] (4C channels of H/2×W/2) with a 2×2 kernel
// on the taps up and left: tap ky of the 3×3 kernel reads phase row a at
// offset u−1, with (a, u) = (1, 0), (0, 1), (1, 1) for ky = 0, 1, 2, and the
// same for kx. That does 16C multiply-adds per output where the convolution
// needs 9C, all on the fast kernels, instead of an im2col matrix 9 times the
// input.
type Conv3S2 struct{ C, O, B, H, W int }

// phaseOf maps a 3×3 tap index to its phase and 2×2 tap.
var phaseOf = [3][2]int{{1, 0}, {0, 1}, {1, 1}}

func (g Conv3S2) half() Conv3 { return Conv3{C: 4 * g.C, O: g.O, B: g.B, H: g.H / 2, W: g.W / 2} }

// PaddedLen is the length of the padded phases that ForwardPadded keeps.
func (g Conv3S2) PaddedLen() int { return g.half().PaddedLen() }

// padPhases writes the padded streams of x's 4C phases into dst.
func (g Conv3S2) padPhases(x, dst []float32) {
	h := g.half()
	s, wp := h.stream(), h.wp()
	ParallelFor(4*g.C, func(lo, hi int) {
		for pc := lo; pc < hi; pc++ {
			c, a, bb := pc/4, pc/2%2, pc%2
			d := dst[pc*s : (pc+1)*s]
			clear(d)
			for b := 0; b < g.B; b++ {
				img := x[(c*g.B+b)*g.H*g.W:][:g.H*g.W]
				for i := 0; i < h.H; i++ {
					row := img[(2*i+a)*g.W:][:g.W]
					at := (1+b*(h.H+1)+i)*wp + 1
					out := d[at : at+h.W]
					for j := range out {
						out[j] = row[2*j+bb]
					}
				}
			}
		}
	})
}

// unphase scatters the gradients of the 4C phases (compact
// (4C, B, H/2, W/2)) back into dx (C, B, H, W).
func (g Conv3S2) unphase(dp, dx []float32) {
	hh, hw := g.H/2, g.W/2
	ParallelFor(g.C, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			for b := 0; b < g.B; b++ {
				img := dx[(c*g.B+b)*g.H*g.W:][:g.H*g.W]
				for ph := 0; ph < 4; ph++ {
					a, bb := ph/2, ph%2
					src := dp[((c*4+ph)*g.B+b)*hh*hw:][:hh*hw]
					for i := 0; i < hh; i++ {
						row := img[(2*i+a)*g.W:][:g.W]
						for j, v := range src[i*hw : (i+1)*hw] {
							row[2*j+bb] = v
						}
					}
				}
			}
		}
	})
}

// Forward computes y = conv(x, w) + bias with stride 2.
func (g Conv3S2) Forward(x, w, bias, y []float32) {
	xp := get32(g.PaddedLen())
	g.ForwardPadded(x, w, bias, y, xp)
	put32(xp)
}

// ForwardPadded is Forward that leaves the padded phases of x in xp for
// Backward.
func (g Conv3S2) ForwardPadded(x, w, bias, y, xp []float32) {
	h := g.half()
	g.padPhases(x, xp)
	wk := get32(roundUp(g.O, 4) * 4 * g.C * 4)
	clear(wk)
	for o := 0; o < g.O; o++ {
		for c := 0; c < g.C; c++ {
			for ky := 0; ky < 3; ky++ {
				for kx := 0; kx < 3; kx++ {
					a, u := phaseOf[ky][0], phaseOf[ky][1]
					bb, v := phaseOf[kx][0], phaseOf[kx][1]
					pc := c*4 + a*2 + bb
					wk[((o/4*4*g.C+pc)*4+u*2+v)*4+o%4] = w[((o*g.C+c)*3+ky)*3+kx]
				}
			}
		}
	}
	h.convWith(cur.fwdLo, 4, xp, 4*g.C, wk, g.O, bias, y)
	put32(wk)
}

// Backward computes ∂L/∂x and ∂L/∂w (overwritten) from ∂L/∂y; xp is the
// padded phases ForwardPadded left, or nil.
func (g Conv3S2) Backward(x, xp, w, dy, dx, dw []float32) {
	h := g.half()
	s := h.stream()
	no, lanes := cur.dwLoOut, cur.lanes
	dyp := h.padRows(dy, roundUp(g.O, no))

	// ∂P[pc] = Σ_o Σ_(u,v) W'[o,pc,u,v] ∂y[o][i−u+1][j−v+1]: the taps down and
	// right (2−u, 2−v) of the padded ∂y.
	wk := get32(roundUp(4*g.C, 4) * g.O * 4)
	clear(wk)
	for o := 0; o < g.O; o++ {
		for c := 0; c < g.C; c++ {
			for ky := 0; ky < 3; ky++ {
				for kx := 0; kx < 3; kx++ {
					a, u := phaseOf[ky][0], phaseOf[ky][1]
					bb, v := phaseOf[kx][0], phaseOf[kx][1]
					pc := c*4 + a*2 + bb
					t := (1-u)*2 + (1 - v) // tap (2−u, 2−v) among (1,1), (1,2), (2,1), (2,2)
					wk[((pc/4*g.O+o)*4+t)*4+pc%4] = w[((o*g.C+c)*3+ky)*3+kx]
				}
			}
		}
	}
	dp := get32(4 * g.C * g.B * h.H * h.W)
	h.convWith(cur.fwdHi, 4, dyp, g.O, wk, 4*g.C, nil, dp)
	g.unphase(dp, dx)
	put32(dp)
	put32(wk)

	if xp == nil {
		xp = get32(g.PaddedLen())
		defer put32(xp)
		g.padPhases(x, xp)
	}
	// ∂W'[o,pc,u,v] = Σ ∂y[o][i][j]·P[pc][i+u−1][j+v−1], no outputs a call.
	f, wp := h.frame(), h.wp()
	groups, pcs := roundUp(g.O, no)/no, 4*g.C
	stride := no * 4 * lanes
	acc := get64(groups * pcs * stride)
	clear(acc)
	ParallelFor(groups*pcs, func(lo, hi int) {
		for q := 0; q < f; q += chunkQ {
			n := min(chunkQ, f-q) / 16
			for k := lo; k < hi; k++ {
				gr, pc := k/pcs, k%pcs
				cur.dwLo(&dyp[gr*no*s+wp+1+q], &xp[pc*s+q], &acc[k*stride], n, s, wp)
			}
		}
	})
	for o := 0; o < g.O; o++ {
		for c := 0; c < g.C; c++ {
			for ky := 0; ky < 3; ky++ {
				for kx := 0; kx < 3; kx++ {
					a, u := phaseOf[ky][0], phaseOf[ky][1]
					bb, v := phaseOf[kx][0], phaseOf[kx][1]
					k := o/no*pcs + c*4 + a*2 + bb
					var sum float64
					for _, x := range acc[k*stride+((o%no)*4+u*2+v)*lanes:][:lanes] {
						sum += x
					}
					dw[((o*g.C+c)*3+ky)*3+kx] = float32(sum)
				}
			}
		}
	}
	put64(acc)
	put32(dyp)
}
