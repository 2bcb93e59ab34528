//go:build amd64 && !purego

package kernel

import "golang.org/x/sys/cpu"

var haveAVX512 = cpu.X86.HasAVX512F

//go:noescape
func convFwd4x6(x, w, y *float32, c, cstride, wp, ystride int, tab *[4]uint16, bias *float32)

//go:noescape
func convDw2(dy, x *float32, acc *float64, n, dystride, wp int)

//go:noescape
func siluAffine(x, y *float32, n int, sc, sh float32)

//go:noescape
func gnBack1(x, dy, dx *float32, n int, p *[5]float32, sums *[32]float32)

//go:noescape
func gnBack2(x, dx *float32, n int, a, b, m, c float32)

//go:noescape
func sumSq(x *float32, n int, out *[16]float64)

//go:noescape
func convFwdLo(x, w, y *float32, c, cstride, wp, ystride int, tab *[4]uint16, bias *float32)

//go:noescape
func convFwdHi(x, w, y *float32, c, cstride, wp, ystride int, tab *[4]uint16, bias *float32)

//go:noescape
func convDwLo(dy, x *float32, acc *float64, n, dystride, wp int)
