// Package blas runs the dense matrix products of the score network.
//
// It prefers OpenBLAS, loaded at run time with purego (no cgo, no C toolchain
// at build time), and falls back to gonum's pure-Go BLAS where the library is
// missing, so a plain `go run` works on any machine. Matrices are row-major.
package blas

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
	gblas "gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Float is the element type the kernels are written for.
type Float interface{ ~float32 | ~float64 }

var (
	once      sync.Once
	sgemmPtr  uintptr
	dgemmPtr  uintptr
	setThread uintptr
	backend   string
	loadErr   error
	pureGo    gonum.Implementation
)

// libNames are tried in order; Debian's libopenblas0 installs the first.
var libNames = []string{"libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0"}

func load() {
	if os.Getenv("NCSN_BLAS") == "go" {
		backend = "gonum (pure Go; NCSN_BLAS=go)"
		return
	}
	var lib uintptr
	for _, name := range libNames {
		h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			lib = h
			break
		}
		loadErr = err
	}
	if lib == 0 {
		backend = "gonum (pure Go, slow path: libopenblas.so.0 not found; apt-get install libopenblas0)"
		return
	}
	var err error
	if sgemmPtr, err = purego.Dlsym(lib, "sgemm_"); err != nil {
		loadErr, backend = err, "gonum (pure Go, slow path: OpenBLAS has no sgemm_)"
		return
	}
	if dgemmPtr, err = purego.Dlsym(lib, "dgemm_"); err != nil {
		sgemmPtr = 0
		loadErr, backend = err, "gonum (pure Go, slow path: OpenBLAS has no dgemm_)"
		return
	}
	// OpenBLAS's own threads spin while Go code runs between products and
	// steal the cores from it; one OpenBLAS thread per call, with the calls
	// split across goroutines here, keeps every core doing useful work.
	setThread, _ = purego.Dlsym(lib, "openblas_set_num_threads")
	if setThread != 0 {
		purego.SyscallN(setThread, 1)
	}
	backend = fmt.Sprintf("OpenBLAS (loaded at run time, %d-way split)", runtime.GOMAXPROCS(0))
}

// Name is a short name of the implementation that runs the products:
// "openblas" or "gonum" (recorded with checkpoints, whose bits depend on it).
func Name() string {
	if Fast() {
		return "openblas"
	}
	return "gonum"
}

// Backend says which implementation runs the products, for the start-up line.
func Backend() string {
	once.Do(load)
	return backend
}

// Fast reports whether OpenBLAS was loaded.
func Fast() bool {
	once.Do(load)
	return sgemmPtr != 0
}

// gemmArgs lives on the heap so that the pointers handed to OpenBLAS stay
// valid and unmoved for the duration of the call.
type gemmArgs struct {
	ta, tb          byte
	m, n, k         int32
	lda, ldb, ldc   int32
	alpha32, beta32 float32
	alpha64, beta64 float64
}

var argPool = sync.Pool{New: func() any { return new(gemmArgs) }}

// splitFlops is the size of product below which splitting it across cores
// costs more than it saves.
const splitFlops = 1 << 20

// Gemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, where
// op(X) is X or Xᵀ; op(A) is m×k, op(B) is k×n, C is m×n.
func Gemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	once.Do(load)
	w := runtime.GOMAXPROCS(0)
	if sgemmPtr == 0 || w < 2 || m*n*k < splitFlops {
		gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	// Split the larger side of C into w blocks, each a single-threaded call.
	var wg sync.WaitGroup
	for i := 0; i < w; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n >= m {
				lo, hi := n*i/w, n*(i+1)/w
				boff := lo
				if transB {
					boff = lo * ldb
				}
				gemm(transA, transB, m, hi-lo, k, alpha, a, lda, b[boff:], ldb, beta, c[lo:], ldc)
			} else {
				lo, hi := m*i/w, m*(i+1)/w
				aoff := lo * lda
				if transA {
					aoff = lo
				}
				gemm(transA, transB, hi-lo, n, k, alpha, a[aoff:], lda, b, ldb, beta, c[lo*ldc:], ldc)
			}
		}()
	}
	wg.Wait()
}

func gemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	switch cc := any(c).(type) {
	case []float32:
		aa, bb := any(a).([]float32), any(b).([]float32)
		if sgemmPtr == 0 {
			pureGo.Sgemm(tr(transA), tr(transB), m, n, k, float32(alpha), aa, lda, bb, ldb, float32(beta), cc, ldc)
			return
		}
		p := argPool.Get().(*gemmArgs)
		// Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap operands.
		p.ta, p.tb = tch(transB), tch(transA)
		p.m, p.n, p.k = int32(n), int32(m), int32(k)
		p.lda, p.ldb, p.ldc = int32(ldb), int32(lda), int32(ldc)
		p.alpha32, p.beta32 = float32(alpha), float32(beta)
		purego.SyscallN(sgemmPtr,
			uintptr(unsafe.Pointer(&p.ta)), uintptr(unsafe.Pointer(&p.tb)),
			uintptr(unsafe.Pointer(&p.m)), uintptr(unsafe.Pointer(&p.n)), uintptr(unsafe.Pointer(&p.k)),
			uintptr(unsafe.Pointer(&p.alpha32)), uintptr(unsafe.Pointer(&bb[0])), uintptr(unsafe.Pointer(&p.lda)),
			uintptr(unsafe.Pointer(&aa[0])), uintptr(unsafe.Pointer(&p.ldb)),
			uintptr(unsafe.Pointer(&p.beta32)), uintptr(unsafe.Pointer(&cc[0])), uintptr(unsafe.Pointer(&p.ldc)))
		runtime.KeepAlive(aa)
		runtime.KeepAlive(bb)
		runtime.KeepAlive(cc)
		argPool.Put(p)
	case []float64:
		aa, bb := any(a).([]float64), any(b).([]float64)
		if dgemmPtr == 0 {
			pureGo.Dgemm(tr(transA), tr(transB), m, n, k, float64(alpha), aa, lda, bb, ldb, float64(beta), cc, ldc)
			return
		}
		p := argPool.Get().(*gemmArgs)
		p.ta, p.tb = tch(transB), tch(transA)
		p.m, p.n, p.k = int32(n), int32(m), int32(k)
		p.lda, p.ldb, p.ldc = int32(ldb), int32(lda), int32(ldc)
		p.alpha64, p.beta64 = float64(alpha), float64(beta)
		purego.SyscallN(dgemmPtr,
			uintptr(unsafe.Pointer(&p.ta)), uintptr(unsafe.Pointer(&p.tb)),
			uintptr(unsafe.Pointer(&p.m)), uintptr(unsafe.Pointer(&p.n)), uintptr(unsafe.Pointer(&p.k)),
			uintptr(unsafe.Pointer(&p.alpha64)), uintptr(unsafe.Pointer(&bb[0])), uintptr(unsafe.Pointer(&p.lda)),
			uintptr(unsafe.Pointer(&aa[0])), uintptr(unsafe.Pointer(&p.ldb)),
			uintptr(unsafe.Pointer(&p.beta64)), uintptr(unsafe.Pointer(&cc[0])), uintptr(unsafe.Pointer(&p.ldc)))
		runtime.KeepAlive(aa)
		runtime.KeepAlive(bb)
		runtime.KeepAlive(cc)
		argPool.Put(p)
	}
}

func tr(t bool) gblas.Transpose {
	if t {
		return gblas.Trans
	}
	return gblas.NoTrans
}

func tch(t bool) byte {
	if t {
		return 'T'
	}
	return 'N'
}
