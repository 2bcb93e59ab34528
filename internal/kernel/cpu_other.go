//go:build !amd64 || purego

package kernel

const (
	haveAVX512   = false
	haveAVX2     = false
	kernelsBuilt = false // the assembly is left out of this build
)

// Never called: Available is false without AVX-512 or AVX2.
func convFwd4x6(x, w, y *float32, c, cstride, wp, ystride int, tab *[4]uint16, bias *float32) {}

func convDw2(dy, x *float32, acc *float64, n, dystride, wp int) {}

func siluAffine(x, y *float32, n int, sc, sh float32) {}

func gnBack1(x, dy, dx *float32, n int, p *[5]float32, sums *[32]float32) {}

func gnBack2(x, dx *float32, n int, a, b, m, c float32) {}

func sumSq(x *float32, n int, out *[16]float64) {}

func convFwdLo(x, w, y *float32, c, cstride, wp, ystride int, tab *[4]uint16, bias *float32) {}

func convFwdHi(x, w, y *float32, c, cstride, wp, ystride int, tab *[4]uint16, bias *float32) {}

func convDwLo(dy, x *float32, acc *float64, n, dystride, wp int) {}

func convFwdA(x, w, y *float32, c, cstride, wp, ystride int, tab *[4]uint16, bias *float32) {}

func convFwdLoA(x, w, y *float32, c, cstride, wp, ystride int, tab *[4]uint16, bias *float32) {}

func convFwdHiA(x, w, y *float32, c, cstride, wp, ystride int, tab *[4]uint16, bias *float32) {}

func convDwA(dy, x *float32, acc *float64, n, dystride, wp int) {}

func convDwLoA(dy, x *float32, acc *float64, n, dystride, wp int) {}

func siluAffineA(x, y *float32, n int, sc, sh float32) {}

func gnBack1A(x, dy, dx *float32, n int, p *[5]float32, sums *[32]float32) {}

func gnBack2A(x, dx *float32, n int, a, b, m, c float32) {}

func sumSqA(x *float32, n int, out *[16]float64) {}
