package kernel

// Conv3 is the geometry of a 3×3, stride 1, pad 1 convolution of C input and
// O output channels over B images of H×W, in the channel-major layout
// (C, B, H, W) of package nn.
//
// The kernels read a padded stream per channel: the images one after another,
// each row framed by a zero column on each side (row width Wp = W+2) and one
// zero row between images (shared as bottom padding of one image and top
// padding of the next). Output position q = (b(H+1)+y)·Wp + x then reads
// stream positions q + ky·Wp + kx, a fixed offset per tap, so 16 consecutive
// positions are one unaligned vector load. Positions with x ≥ W or y = H are
// computed and thrown away (7–30% extra work, depending on the image size).
type Conv3 struct{ C, O, B, H, W int }

const (
	blockQ = 96   // output positions per forward kernel call (6 vectors of 16)
	chunkQ = 2048 // positions per ∂w kernel call: its inputs stay in L1/L2
)

func (g Conv3) wp() int { return g.W + 2 }

// frame is the number of output positions computed per channel, rounded up to
// whole forward blocks.
func (g Conv3) frame() int {
	n := g.B * (g.H + 1) * g.wp()
	return (n + blockQ - 1) / blockQ * blockQ
}

// stream is the length of one channel's padded stream: every read of the
// kernels, including the thrown-away positions, falls inside it.
func (g Conv3) stream() int {
	n := g.frame() + 2*g.wp() + 2 + 16
	return (n + 15) / 16 * 16
}

// pad writes the padded streams of nch channels of src (nch, B, H, W) into
// dst, every position written (buffers come from a shared pool).
func (g Conv3) pad(src []float32, nch int, dst []float32) {
	s, wp := g.stream(), g.wp()
	parallelFor(nch, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			d := dst[c*s : (c+1)*s]
			prev := 0
			for b := 0; b < g.B; b++ {
				for y := 0; y < g.H; y++ {
					a := (1+b*(g.H+1)+y)*wp + 1
					clear(d[prev:a])
					copy(d[a:a+g.W], src[((c*g.B+b)*g.H+y)*g.W:][:g.W])
					prev = a + g.W
				}
			}
			clear(d[prev:])
		}
	})
	if nch%2 == 1 && len(dst) >= (nch+1)*s {
		clear(dst[nch*s : (nch+1)*s])
	}
}

// compact copies the valid positions of nch frame rows into dst (nch, B, H, W),
// adding bias[c] when bias is not nil.
func (g Conv3) compact(frame []float32, nch int, bias, dst []float32) {
	f, wp := g.frame(), g.wp()
	parallelFor(nch, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			var bv float32
			if bias != nil {
				bv = bias[c]
			}
			for b := 0; b < g.B; b++ {
				for y := 0; y < g.H; y++ {
					src := frame[c*f+(b*(g.H+1)+y)*wp:][:g.W]
					out := dst[((c*g.B+b)*g.H+y)*g.W:][:g.W]
					if bias == nil {
						copy(out, src)
						continue
					}
					for i, v := range src {
						out[i] = v + bv
					}
				}
			}
		}
	})
}

// conv runs the forward kernel: cin padded input streams, weights packed by
// packFwd for cout outputs, into a frame of roundup(cout, 4) rows.
func (g Conv3) conv(stream []float32, cin int, wk []float32, cout int, frame []float32) {
	f, s, wp := g.frame(), g.stream(), g.wp()
	nob := (cout + 3) / 4
	parallelFor(f/blockQ, func(lo, hi int) {
		for blk := lo; blk < hi; blk++ {
			q := blk * blockQ
			for ob := 0; ob < nob; ob++ {
				convFwd4x6(&stream[q], &wk[ob*cin*36], &frame[ob*4*f+q], cin, s, wp, f)
			}
		}
	})
}

// Forward computes y = conv(x, w) + bias: x (C,B,H,W), w (O,C,3,3), bias (O),
// y (O,B,H,W).
func (g Conv3) Forward(x, w, bias, y []float32) {
	xp := get32(g.C * g.stream())
	g.pad(x, g.C, xp)
	wk := get32(roundUp(g.O, 4) * g.C * 9)
	packFwd(w, g.O, g.C, false, wk)
	frame := get32(roundUp(g.O, 4) * g.frame())
	g.conv(xp, g.C, wk, g.O, frame)
	g.compact(frame, g.O, bias, y)
	put32(xp)
	put32(wk)
	put32(frame)
}

// BackwardX computes ∂L/∂x from w and ∂L/∂y: the convolution of ∂y with the
// kernel flipped in space and transposed in channels.
func (g Conv3) BackwardX(w, dy, dx []float32) {
	dyp := get32(g.O * g.stream())
	g.pad(dy, g.O, dyp)
	wk := get32(roundUp(g.C, 4) * g.O * 9)
	packFwd(w, g.O, g.C, true, wk)
	frame := get32(roundUp(g.C, 4) * g.frame())
	g.conv(dyp, g.O, wk, g.C, frame)
	g.compact(frame, g.C, nil, dx)
	put32(dyp)
	put32(wk)
	put32(frame)
}

// BackwardW computes ∂L/∂w (O,C,3,3) from x and ∂L/∂y, overwriting dw.
func (g Conv3) BackwardW(x, dy, dw []float32) {
	s, f, wp := g.stream(), g.frame(), g.wp()
	xp := get32(g.C * s)
	g.pad(x, g.C, xp)
	op := roundUp(g.O, 2)
	dyp := get32(op * s)
	g.pad(dy, g.O, dyp) // an odd O gets a zero row
	pairs := op / 2
	acc := get64(pairs * g.C * 18 * 16)
	clear(acc)
	// Each (pair, channel) sum is made by one worker in a fixed order, so the
	// result does not depend on the number of cores.
	parallelFor(pairs*g.C, func(lo, hi int) {
		for q := 0; q < f; q += chunkQ {
			n := min(chunkQ, f-q) / 16
			for k := lo; k < hi; k++ {
				pr, c := k/g.C, k%g.C
				convDw2(&dyp[pr*2*s+wp+1+q], &xp[c*s+q], &acc[k*288], n, s, wp)
			}
		}
	})
	for k := 0; k < pairs*g.C; k++ {
		pr, c := k/g.C, k%g.C
		for j := 0; j < 18; j++ {
			o := pr*2 + j/9
			if o >= g.O {
				continue
			}
			var sum float64
			for _, v := range acc[k*288+j*16:][:16] {
				sum += v
			}
			dw[(o*g.C+c)*9+j%9] = float32(sum)
		}
	}
	put32(xp)
	put32(dyp)
	put64(acc)
}

// packFwd lays out w (O,C,3,3) for the forward kernel: blocks of 4 outputs,
// then input channel, tap, output within the block. With flip it packs the
// kernel of ∂x instead: outputs are w's C channels, inputs its O, taps reversed.
func packFwd(w []float32, o, c int, flip bool, wk []float32) {
	nout, nin := o, c
	if flip {
		nout, nin = c, o
	}
	clear(wk)
	for oo := 0; oo < nout; oo++ {
		for ii := 0; ii < nin; ii++ {
			for t := 0; t < 9; t++ {
				var v float32
				if flip {
					v = w[(ii*c+oo)*9+8-t]
				} else {
					v = w[(oo*c+ii)*9+t]
				}
				wk[((oo/4*nin+ii)*9+t)*4+oo%4] = v
			}
		}
	}
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }
