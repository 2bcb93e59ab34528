// Package blas runs the dense matrix products of the score network.
//
// It prefers a system BLAS loaded at run time (no cgo, no C toolchain at
// build time): OpenBLAS on Linux and Windows, Apple's Accelerate on macOS,
// or the library NCSN_BLAS names; it falls back to gonum's pure-Go BLAS
// where none loads, so a plain `go run` works on any machine. Matrices are
// row-major.
package blas

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
	"github.com/ncsn-go/ncsn/internal/english"
	gblas "gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Float is the element type the kernels are written for.
type Float interface{ ~float32 | ~float64 }

// Env names the variable that chooses the BLAS: "go" for gonum's pure-Go
// one, or the path of a shared library with the Fortran interface (sgemm_,
// dgemm_): an OpenBLAS, BLIS, MKL or Accelerate the search does not find.
const Env = "NCSN_BLAS"

// library is what loading found.
type library struct {
	sgemm, dgemm uintptr // the Fortran sgemm_ and dgemm_; 0: gonum runs the products
	name         string  // "openblas", "accelerate", "blas" (another, named by NCSN_BLAS) or "gonum"
	core         string  // OpenBLAS's kernels' CPU core ("Cooperlake"); "" for the others
	describe     string  // for the start-up line
}

var (
	once   sync.Once
	loaded library
	pureGo gonum.Implementation
)

// candidates are the libraries tried, in order, on an operating system,
// given NCSN_BLAS: each name as the system's loader finds it, then the
// usual full paths (Debian/Ubuntu, Fedora/RHEL, Homebrew).
func candidates(goos, env string) []string {
	if env != "" {
		return []string{env}
	}
	switch goos {
	case "darwin":
		return []string{"/System/Library/Frameworks/Accelerate.framework/Accelerate",
			"/opt/homebrew/opt/openblas/lib/libopenblas.dylib", "/usr/local/opt/openblas/lib/libopenblas.dylib", "libopenblas.dylib"}
	case "windows":
		return []string{"libopenblas.dll", "openblas.dll"}
	}
	return []string{"libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0", "libopenblaso.so.0",
		"/usr/lib64/libopenblas.so.0", "/usr/lib64/libopenblasp.so.0", "/usr/lib64/libopenblaso.so.0",
		"/usr/lib/x86_64-linux-gnu/libopenblas.so.0", "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
		"/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0", "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0"}
}

// kind names a library by its path.
func kind(path string) string {
	base := strings.ToLower(filepath.Base(path))
	switch {
	case strings.Contains(path, "Accelerate.framework"):
		return "accelerate"
	case strings.Contains(base, "openblas"):
		return "openblas"
	}
	return "blas"
}

// open loads the first candidate that has sgemm_ and dgemm_.
func open(goos, env string) library {
	if env == "go" {
		return library{name: "gonum", describe: "gonum (pure Go; " + Env + "=go)"}
	}
	var why []string
	for _, path := range candidates(goos, env) {
		h, err := openLibrary(path)
		if err != nil {
			if env != "" || !strings.Contains(path, string(filepath.Separator)) {
				why = append(why, firstLine(err.Error()))
			}
			continue
		}
		sg, err1 := symbol(h, "sgemm_")
		dg, err2 := symbol(h, "dgemm_")
		if err1 != nil || err2 != nil {
			why = append(why, path+": no sgemm_ and dgemm_")
			continue
		}
		l := library{sgemm: sg, dgemm: dg, name: kind(path)}
		// OpenBLAS's own threads spin while Go code runs between products
		// and steal the cores from it; one OpenBLAS thread per call, with
		// the calls split across goroutines here, keeps every core doing
		// useful work.
		threads := "its own threads in each block"
		if st, err := symbol(h, "openblas_set_num_threads"); err == nil && st != 0 {
			purego.SyscallN(st, 1)
			l.name, threads = "openblas", "one thread per block" // libblas.so.3 may be OpenBLAS
			// Its kernels are chosen for the CPU core, and their bits
			// with them: recorded with checkpoints (a resume on another
			// CPU went on with other bits, unannounced).
			if cn, err := symbol(h, "openblas_get_corename"); err == nil && cn != 0 {
				var corename func() string
				purego.RegisterFunc(&corename, cn)
				l.core = strings.Map(func(r rune) rune {
					if r <= ' ' || r > '~' {
						return -1
					}
					return r
				}, corename())
			}
		}
		label := map[string]string{"openblas": "OpenBLAS", "accelerate": "Accelerate", "blas": "BLAS"}[l.name]
		if l.core != "" {
			label += " for " + l.core
		}
		l.describe = fmt.Sprintf("%s (%s, loaded at run time, %s, blocks over %s)", label, path, threads, english.Count(runtime.GOMAXPROCS(0), "core"))
		return l
	}
	hint := map[string]string{"linux": "apt-get install libopenblas0, dnf install openblas, or set " + Env,
		"windows": "put libopenblas.dll on the PATH, or set " + Env, "darwin": "set " + Env}[goos]
	if hint == "" {
		hint = "set " + Env
	}
	if env != "" {
		hint = Env + "=" + env + " did not load"
	}
	return library{name: "gonum", describe: fmt.Sprintf("gonum (pure Go, slower matrix products: no BLAS found; %s: %s)", hint, strings.Join(why, "; "))}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func load() {
	if runtime.GOOS == "darwin" && os.Getenv("VECLIB_MAXIMUM_THREADS") == "" {
		// Accelerate's own threads would compete with the goroutines that
		// split each product (as OpenBLAS's would; see open).
		os.Setenv("VECLIB_MAXIMUM_THREADS", "1")
	}
	loaded = open(runtime.GOOS, os.Getenv(Env))
}

// Name is a short name of the implementation that runs the products:
// "openblas", "accelerate", "blas" or "gonum" (recorded with checkpoints,
// whose bits depend on it).
func Name() string {
	once.Do(load)
	return loaded.name
}

// Core is the CPU core OpenBLAS chose its kernels for ("Cooperlake",
// "Haswell"), "" for the other implementations: another core's kernels
// give other bits.
func Core() string {
	once.Do(load)
	return loaded.core
}

// Backend says which implementation runs the products, for the start-up line.
func Backend() string {
	once.Do(load)
	return loaded.describe
}

// Fast reports whether a system BLAS was loaded.
func Fast() bool {
	once.Do(load)
	return loaded.sgemm != 0
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

// blockFlops is the size of the blocks a product is cut into (in
// multiply-adds): large enough that a call's overhead does not count.
const blockFlops = 1 << 20

// blockCounts are the numbers of blocks a product may be cut into: counts
// with many divisors, so that the blocks share out over 2, 3 or 4 cores
// with little left over (from 6 blocks up), and the largest keeps every
// core of a 32-core machine busy.
var blockCounts = []int{1, 2, 4, 6, 8, 12, 16, 24, 32}

// blockAlign: every block but the last starts and ends at a multiple of it
// (whole tiles of the BLAS's kernels, where the sizes allow).
const blockAlign = 8

// blocks is the number of blocks a product of m·n·k multiply-adds is cut
// into along side, the larger side of C: a function of the shape alone,
// the most of blockCounts that leaves blockFlops or more per block on
// average and no more blocks than side has units of blockAlign (the last
// block may be shorter than the others).
func blocks(m, n, k, side int) int {
	limit := min(m*n*k/blockFlops, (side+blockAlign-1)/blockAlign)
	nb := 1
	for _, c := range blockCounts {
		if c <= limit {
			nb = c
		}
	}
	return nb
}

// blockAt is the start of block i of nb over n elements (n itself for
// i = nb), at a multiple of blockAlign.
func blockAt(n, i, nb int) int {
	units := (n + blockAlign - 1) / blockAlign
	return min(units*i/nb*blockAlign, n)
}

// Gemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, where
// op(X) is X or Xᵀ; op(A) is m×k, op(B) is k×n, C is m×n.
//
// With a system BLAS, a large product is cut along the larger side of C
// into blocks, each a single-threaded call, spread over the cores. The
// blocks depend on the shape alone, never on the number of cores: a BLAS
// rounds an element of C by where it falls in the call (OpenBLAS's kernels
// sum the tiles near the edges of a call, or of their own cache blocks,
// in another order), so blocks cut by the number of cores gave other bits
// on another number of cores.
func Gemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	once.Do(load)
	side := max(m, n)
	nb := blocks(m, n, k, side)
	if loaded.sgemm == 0 || nb == 1 {
		gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	block := func(i int) {
		lo, hi := blockAt(side, i, nb), blockAt(side, i+1, nb)
		if n >= m {
			boff := lo
			if transB {
				boff = lo * ldb
			}
			gemm(transA, transB, m, hi-lo, k, alpha, a, lda, b[boff:], ldb, beta, c[lo:], ldc)
		} else {
			aoff := lo * lda
			if transA {
				aoff = lo
			}
			gemm(transA, transB, hi-lo, n, k, alpha, a[aoff:], lda, b, ldb, beta, c[lo*ldc:], ldc)
		}
	}
	w := min(runtime.GOMAXPROCS(0), nb)
	var wg sync.WaitGroup
	for g := 0; g < w; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := nb * g / w; i < nb*(g+1)/w; i++ {
				block(i)
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
		if loaded.sgemm == 0 {
			pureGo.Sgemm(tr(transA), tr(transB), m, n, k, float32(alpha), aa, lda, bb, ldb, float32(beta), cc, ldc)
			return
		}
		p := argPool.Get().(*gemmArgs)
		// Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap operands.
		p.ta, p.tb = tch(transB), tch(transA)
		p.m, p.n, p.k = int32(n), int32(m), int32(k)
		p.lda, p.ldb, p.ldc = int32(ldb), int32(lda), int32(ldc)
		p.alpha32, p.beta32 = float32(alpha), float32(beta)
		purego.SyscallN(loaded.sgemm,
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
		if loaded.dgemm == 0 {
			pureGo.Dgemm(tr(transA), tr(transB), m, n, k, float64(alpha), aa, lda, bb, ldb, float64(beta), cc, ldc)
			return
		}
		p := argPool.Get().(*gemmArgs)
		p.ta, p.tb = tch(transB), tch(transA)
		p.m, p.n, p.k = int32(n), int32(m), int32(k)
		p.lda, p.ldb, p.ldc = int32(ldb), int32(lda), int32(ldc)
		p.alpha64, p.beta64 = float64(alpha), float64(beta)
		purego.SyscallN(loaded.dgemm,
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
