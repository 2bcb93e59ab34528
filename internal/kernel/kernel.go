// Package kernel holds the hand-written AVX-512 kernels of the score network's
// hot loops: the 3×3 convolution (forward, ∂x, ∂w) computed directly from a
// zero-padded copy of its input, with no im2col matrix and no BLAS packing.
//
// The kernels run where the CPU and OS support AVX-512F (x86-64); elsewhere,
// or with NCSN_SIMD=off, Available reports false and callers use their
// portable path (im2col and BLAS in package nn).
package kernel

//go:generate go run gen.go

import (
	"os"
	"runtime"
	"sync"
)

// Available reports whether the AVX-512 kernels can run here.
func Available() bool { return available }

var available = haveAVX512 && os.Getenv("NCSN_SIMD") != "off"

// Path is a short name of the convolution path: "avx512" or "portable"
// (recorded with checkpoints, whose bits depend on it).
func Path() string {
	if available {
		return "avx512"
	}
	return "portable"
}

// Describe says which convolution path runs, for the start-up line.
func Describe() string {
	switch {
	case available:
		return "3×3 convolutions: direct AVX-512 kernels"
	case haveAVX512:
		return "3×3 convolutions: im2col + BLAS (NCSN_SIMD=off)"
	default:
		return "3×3 convolutions: im2col + BLAS (no AVX-512 on this CPU)"
	}
}

// ParallelFor splits [0, n) into one contiguous range per core and runs fn
// on each, concurrently: the element-wise loops would otherwise leave a core
// idle. Package nn uses it too.
func ParallelFor(n int, fn func(lo, hi int)) {
	w := min(runtime.GOMAXPROCS(0), n)
	if w <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < w; i++ {
		lo, hi := n*i/w, n*(i+1)/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// The scratch buffers are large (tens of MB at batch 128) and needed only
// while one operator runs, so all operators share one free list instead of
// each keeping its own.
var pool struct {
	sync.Mutex
	f32 [][]float32
	f64 [][]float64
}

func get32(n int) []float32 {
	pool.Lock()
	defer pool.Unlock()
	best := -1
	for i, s := range pool.f32 {
		if cap(s) >= n && (best < 0 || cap(s) < cap(pool.f32[best])) {
			best = i
		}
	}
	if best < 0 {
		return make([]float32, n)
	}
	s := pool.f32[best]
	pool.f32 = append(pool.f32[:best], pool.f32[best+1:]...)
	return s[:n]
}

func put32(s []float32) {
	pool.Lock()
	pool.f32 = append(pool.f32, s)
	pool.Unlock()
}

func get64(n int) []float64 {
	pool.Lock()
	defer pool.Unlock()
	for i, s := range pool.f64 {
		if cap(s) >= n {
			pool.f64 = append(pool.f64[:i], pool.f64[i+1:]...)
			return s[:n]
		}
	}
	return make([]float64, n)
}

func put64(s []float64) {
	pool.Lock()
	pool.f64 = append(pool.f64, s)
	pool.Unlock()
}
