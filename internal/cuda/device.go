package cuda

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"unsafe"
)

// ErrNoDevice is wrapped when a driver loads but finds no usable GPU.
var ErrNoDevice = errors.New("cuda: no GPU")

// DevPtr is an address in device memory.
type DevPtr uintptr

// Buffer is n float32 values in device memory.
type Buffer struct {
	Ptr DevPtr
	N   int
}

// backend runs kernels: the GPU through the driver (driver.go), or, in the
// tests, the CPU emulation.
type backend interface {
	alloc(bytes int) (DevPtr, error)
	free(p DevPtr)
	copyIn(dst DevPtr, src unsafe.Pointer, bytes int) error
	copyOut(dst unsafe.Pointer, src DevPtr, bytes int) error
	// launch runs a kernel of the module over grid × block threads; params
	// is the void** array of pointers to the argument values, in memory
	// that does not move.
	launch(kernel string, grid, block [3]uint32, params unsafe.Pointer) error
	// argSpace is argBytes bytes of memory that does not move, for params.
	argSpace() unsafe.Pointer
	// gemm is C = α·op(A)·op(B) + β·C for row-major matrices, op(A) m×k,
	// op(B) k×n (cuBLAS on the GPU).
	gemm(transA, transB bool, m, n, k int, alpha float32, a, b DevPtr, beta float32, c DevPtr) error
	// copyDevice copies bytes within device memory.
	copyDevice(dst, src DevPtr, bytes int) error
	// batch runs f where the backend's calls are cheapest (the driver's
	// thread: each call inside f then skips the hand-over to it).
	batch(f func() error) error
	// capture records the work f queues, without running it (Graph).
	capture(f func() error) (replayer, error)
	// capturing is the error of call while a capture runs (nil otherwise).
	capturing(call string) error
	close()
}

// maxArgs bounds a kernel's parameters; argBytes holds their values and the
// pointer array.
const (
	maxArgs  = 32
	argBytes = 16 * maxArgs
)

// Device runs the kernels of Source on one backend. Its methods are not
// safe for concurrent use.
type Device struct {
	b    backend
	turn sync.Mutex // Hold's
	// Describe is the start-up line: the GPU, its memory, the driver and
	// the libraries.
	Describe string
	// Arith names the device's arithmetic path, which a checkpoint records:
	// "cuda+cublas" on a GPU with the default settings (cuDNN's measured
	// algorithms, exact float32), with "+tf32", "+im2col" (no cuDNN: off,
	// or not installed), "+cudnn-heuristics" or "+cudnn-graph" (TF32's
	// default where cuDNN 9 is found; "+cudnn-graph-nchw" on NCHW copies)
	// added for each setting that gives other bits (arithOf);
	// "cuda-emulator" on the CPU emulation.
	Arith string
	// ReduceThreads, if set, replaces the block size of the reducing
	// kernels (a power of two up to 256).
	ReduceThreads uint32
	// dnn runs the 3×3 convolutions where the GPU has cuDNN (nil: im2col
	// and products).
	dnn *dnnState
	// Graphs asks the graphs run on the device (nn.DeviceRun) to replay
	// their steps as one captured Graph (GraphEnv; Open and OpenEmulator
	// set it from the environment); with GraphsAsked a capture that fails
	// is an error, else that graph runs kernel by kernel, noted on Log.
	Graphs, GraphsAsked bool
	// Log takes the notes of the device's runs (nil: none); Pick sets it.
	Log io.Writer
	// gen counts the reallocations of shared workspaces (Graph.Stale).
	gen    int
	closed sync.Once
}

// Close releases the device's memory and context; later calls do nothing.
func (d *Device) Close() {
	d.closed.Do(func() {
		d.closeDnn()
		d.b.close()
	})
}

// Hold waits for the device's turn and returns its release. A Device is
// used by one goroutine at a time — its kernel parameters' memory and the
// thread that owns the context are its own, and a goroutine's calls while
// another's Batch runs would go to the wrong thread — so users on several
// goroutines (two scorers of one GPU, say) hold it around each use.
func (d *Device) Hold() (release func()) {
	d.turn.Lock()
	return d.turn.Unlock
}

// Batch runs f, which calls the device's methods, as one unit of work on
// the thread that owns the GPU's context: the many short launches of a
// graph's run then cost a driver call each, not a hand-over between
// threads each. f must not use the device from another goroutine.
func (d *Device) Batch(f func() error) error { return d.b.batch(f) }

// Alloc returns a buffer of n float32 values (uninitialised).
func (d *Device) Alloc(n int) (Buffer, error) {
	if n < 1 {
		return Buffer{}, fmt.Errorf("cuda: allocating %d values", n)
	}
	p, err := d.b.alloc(4 * n)
	return Buffer{Ptr: p, N: n}, err
}

// Free releases a buffer.
func (d *Device) Free(b Buffer) {
	if b.Ptr != 0 {
		d.b.free(b.Ptr)
	}
}

// Upload copies x into b (len(x) ≤ b.N).
func (d *Device) Upload(b Buffer, x []float32) error {
	if len(x) > b.N {
		return fmt.Errorf("cuda: uploading %d values into a buffer of %d", len(x), b.N)
	}
	if len(x) == 0 {
		return nil
	}
	return d.b.copyIn(b.Ptr, unsafe.Pointer(&x[0]), 4*len(x))
}

// Download copies the first len(x) values of b into x.
func (d *Device) Download(x []float32, b Buffer) error {
	if len(x) > b.N {
		return fmt.Errorf("cuda: downloading %d values from a buffer of %d", len(x), b.N)
	}
	if len(x) == 0 {
		return nil
	}
	return d.b.copyOut(unsafe.Pointer(&x[0]), b.Ptr, 4*len(x))
}

// pack writes the argument values into space and returns the pointer array.
func pack(space unsafe.Pointer, args []any) (unsafe.Pointer, error) {
	if len(args) > maxArgs {
		return nil, fmt.Errorf("cuda: %d kernel arguments, at most %d", len(args), maxArgs)
	}
	vals := unsafe.Slice((*uint64)(space), maxArgs)
	ptrs := unsafe.Slice((*uintptr)(unsafe.Add(space, 8*maxArgs)), maxArgs)
	for i, a := range args {
		var v uint64
		switch x := a.(type) {
		case DevPtr:
			v = uint64(x)
		case Buffer:
			v = uint64(x.Ptr)
		case int:
			if x < math.MinInt32 || x > math.MaxInt32 {
				return nil, fmt.Errorf("cuda: argument %d: %d does not fit an int", i, x)
			}
			v = uint64(uint32(int32(x)))
		case uint64:
			v = x
		case float32:
			v = uint64(math.Float32bits(x))
		case float64:
			v = math.Float64bits(x)
		default:
			return nil, fmt.Errorf("cuda: argument %d of type %T", i, a)
		}
		vals[i] = v // little-endian: a 4-byte value sits in the slot's first bytes
		ptrs[i] = uintptr(unsafe.Pointer(&vals[i]))
	}
	return unsafe.Pointer(&ptrs[0]), nil
}

// threads is the block size of the one-element-per-thread kernels.
const threads = 256

// launch1D runs kernel over n elements, one per thread.
func (d *Device) launch1D(kernel string, n int, args ...any) error {
	if n == 0 {
		return nil
	}
	p, err := pack(d.b.argSpace(), args)
	if err != nil {
		return err
	}
	blocks := (n + threads - 1) / threads
	if blocks > math.MaxInt32 {
		return fmt.Errorf("cuda: %s over %d elements", kernel, n)
	}
	return d.b.launch(kernel, [3]uint32{uint32(blocks), 1, 1}, [3]uint32{threads, 1, 1}, p)
}

// launchRows runs a reducing kernel with one block of reduceThreads per
// row, rows blocks.
func (d *Device) launchRows(kernel string, rows int, args ...any) error {
	if rows == 0 {
		return nil
	}
	if rows > math.MaxInt32 {
		return fmt.Errorf("cuda: %s over %d rows", kernel, rows)
	}
	p, err := pack(d.b.argSpace(), args)
	if err != nil {
		return err
	}
	return d.b.launch(kernel, [3]uint32{uint32(rows), 1, 1}, [3]uint32{d.reduceThreads(), 1, 1}, p)
}

func sameSize(kernel string, bs ...Buffer) (int, error) {
	for _, b := range bs[1:] {
		if b.N != bs[0].N {
			return 0, fmt.Errorf("cuda: %s: buffers of %d and %d values", kernel, bs[0].N, b.N)
		}
	}
	return bs[0].N, nil
}

// FillNormal writes normal numbers offset … offset+out.N−1 of the seed's
// stream (Normal) into out.
func (d *Device) FillNormal(out Buffer, seed, offset uint64) error {
	return d.launch1D("ncsn_fill_normal", out.N, out, out.N, seed, offset)
}

// SiLU writes y = x·sigmoid(x).
func (d *Device) SiLU(y, x Buffer) error {
	n, err := sameSize("silu", y, x)
	if err != nil {
		return err
	}
	return d.launch1D("ncsn_silu", n, y, x, n)
}

// SiLUGrad writes dx = dy·∂silu/∂x.
func (d *Device) SiLUGrad(dx, x, dy Buffer) error {
	n, err := sameSize("silu_grad", dx, x, dy)
	if err != nil {
		return err
	}
	return d.launch1D("ncsn_silu_grad", n, dx, x, dy, n)
}

// Langevin is one step x ← x + (α/2)·s + √α·z of annealed Langevin dynamics,
// z numbers offset … of the seed's stream.
func (d *Device) Langevin(x, s Buffer, alpha float64, seed, offset uint64) error {
	n, err := sameSize("langevin", x, s)
	if err != nil {
		return err
	}
	return d.launch1D("ncsn_langevin", n, x, s, n, float32(alpha/2), float32(math.Sqrt(alpha)), seed, offset)
}

// gnThreads is the block size of the kernels that reduce within a block
// (GN_THREADS in kernels.cu: their shared arrays' size).
const gnThreads = 256

// reduceThreads is the block size of the reducing kernels: GN_THREADS on a
// GPU; 32 in the CPU emulation, where each thread of such a block is a
// fiber that runs until its next barrier (any power of two up to
// GN_THREADS runs the same code; the kernel tests try 4 to 256).
func (d *Device) reduceThreads() uint32 {
	if d.ReduceThreads > 0 {
		return d.ReduceThreads
	}
	return gnThreads
}

// GroupNormSiLU writes y = silu(GroupNorm(x)·γ + β) for x laid out (C, B,
// HW) and each (group, image)'s mean and 1/√(var+eps) into stats (2·groups·B).
func (d *Device) GroupNormSiLU(y, stats, x, gamma, beta Buffer, c, b, hw, groups int, eps float32) error {
	switch {
	case groups < 1 || c%groups != 0:
		return fmt.Errorf("cuda: groupnorm: %d channels in %d groups", c, groups)
	case x.N != c*b*hw || y.N != x.N || gamma.N != c || beta.N != c || stats.N != 2*groups*b:
		return fmt.Errorf("cuda: groupnorm: buffers x %d, y %d, γ %d, β %d, stats %d for C=%d B=%d HW=%d", x.N, y.N, gamma.N, beta.N, stats.N, c, b, hw)
	}
	p, err := pack(d.b.argSpace(), []any{y, stats, x, gamma, beta, c, b, hw, groups, eps})
	if err != nil {
		return err
	}
	return d.b.launch("ncsn_gn_silu", [3]uint32{uint32(groups * b), 1, 1}, [3]uint32{d.reduceThreads(), 1, 1}, p)
}
