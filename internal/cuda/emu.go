//go:build linux

package cuda

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// The CPU emulation backend, for tests here and in the packages that run
// graphs on a device: kernels.cu compiled as C++ with emu.h (g++, at run
// time) into a shared library, loaded with purego. "Device" memory is the C
// heap, NaN-poisoned when allocated; matrix products are float64 loops.

//go:embed emu.h
var emuHeader string

var (
	emuOnce sync.Once
	// emuLaunchMu keeps the devices of one process (tests run two ranks'
	// at once) from launching between another's launch and its message.
	emuLaunchMu sync.Mutex
	emuLib      uintptr
	emuErr      error
)

// splitComment is a line of CUDA C without and with its // comment.
func splitComment(l string) (code, comment string) {
	if k := strings.Index(l, "//"); k >= 0 {
		return l[:k], l[k:]
	}
	return l, ""
}

// emuCode is src with its // comments blanked, line for line.
func emuCode(src string) string {
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		lines[i], _ = splitComment(l)
	}
	return strings.Join(lines, "\n")
}

// emuDispatch generates the C++ entry point that unpacks a void** argument
// array, as cuLaunchKernel receives it, into a call of the named kernel;
// seq is the device's count of launches, which seeds their orders.
func emuDispatch(src string) (string, error) {
	src = emuCode(src)
	re := regexp.MustCompile(`(?s)extern "C" __global__ void (\w+)\(([^)]*)\)`)
	var b strings.Builder
	b.WriteString("extern \"C\" int emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, void** a, unsigned long long seq) {\n")
	b.WriteString("\tstd::lock_guard<std::mutex> lock(emu_mu);\n\temu_failed = false;\n\temu_msg[0] = 0;\n")
	b.WriteString("\tdim3 g{gx, gy, gz}, t{bx, by, bz};\n")
	// emu_params describes a kernel's parameters (their sizes, and which
	// are pointers), as a driver knows them from the module: the fake
	// driver (fakecuda.h) copies a recorded launch's values with it.
	var params strings.Builder
	params.WriteString("extern \"C\" int emu_params(const char* name, unsigned long long* sizes, int* pointers) {\n")
	locs := re.FindAllStringSubmatchIndex(src, -1)
	for j, m := range re.FindAllStringSubmatch(src, -1) {
		// A kernel whose threads cooperate (it declares __shared__ memory,
		// kernels.cu's rule) runs them as fibers, meeting at barriers; any
		// other runs its threads one after another (faster).
		end := len(src)
		if j+1 < len(locs) {
			end = locs[j+1][0]
		}
		runner := "emu_run_serial"
		if strings.Contains(src[locs[j][0]:end], "__shared__") {
			runner = "emu_run"
		}
		var call, sizes []string
		for i, p := range strings.Split(m[2], ",") {
			p = strings.Join(strings.Fields(p), " ")
			k := strings.LastIndexAny(p, " *")
			if k < 0 {
				return "", fmt.Errorf("parameter %q of %s", p, m[1])
			}
			typ := strings.TrimSpace(p[:k+1])
			call = append(call, fmt.Sprintf("*(%s*)a[%d]", typ, i))
			sizes = append(sizes, fmt.Sprintf("sizes[%d] = sizeof(%s); pointers[%d] = %d;", i, typ, i, map[bool]int{true: 1}[strings.Contains(typ, "*")]))
		}
		fmt.Fprintf(&params, "\tif (!strcmp(name, %q)) { %s return %d; }\n", m[1], strings.Join(sizes, " "), len(sizes))
		fmt.Fprintf(&b, "\tif (!strcmp(name, %q)) return %s(g, t, seq, [=] { %s(%s); });\n", m[1], runner, m[1], strings.Join(call, ", "))
	}
	b.WriteString("\treturn 1;\n}\n")
	params.WriteString("\treturn -1;\n}\n")
	return b.String() + params.String(), nil
}

// sharedDecl is a __shared__ array's declaration as kernels.cu writes
// them: one one-dimensional array, on a line of its own.
var sharedDecl = regexp.MustCompile(`^(\s*)__shared__\s+(\w[\w ]*?)\s+(\w+)\s*\[([^\[\];]+)\]\s*;\s*$`)

// emuFresh rewrites each __shared__ declaration of src (named name in
// messages), on its own line: the array gets a margin of EMU_PAD elements
// after its end, and emu.h's emu_fresh NaN-fills it all at every block's
// start (reading an element no thread of the block wrote shows, as on a
// GPU, whose shared memory starts with what the last block there left;
// the margin must stay untouched). A __shared__ it cannot rewrite is an
// error.
func emuFresh(name, src string) (string, error) {
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		code, comment := splitComment(l)
		if !strings.Contains(code, "__shared__") {
			continue
		}
		m := sharedDecl.FindStringSubmatch(code)
		if m == nil {
			return "", fmt.Errorf("%s:%d: a __shared__ declaration the CPU emulation cannot check (it takes one one-dimensional array per line)", name, i+1)
		}
		v := m[3]
		lines[i] = fmt.Sprintf("%s__shared__ %s %s[(%s) + EMU_PAD]; emu_fresh(%s, sizeof %s, EMU_PAD * sizeof %s[0], %q, __FILE__, __LINE__); %s",
			m[1], m[2], v, m[4], v, v, v, v, comment)
	}
	return strings.Join(lines, "\n"), nil
}

func loadEmu() (uintptr, error) {
	emuOnce.Do(func() { emuLib, emuErr = buildEmu("kernels.cu", Source) })
	return emuLib, emuErr
}

// emuSource is the C++ of the emulation of CUDA C source src (named name
// in messages): emu.h, src rewritten by emuFresh, and emu_launch.
func emuSource(name, src string) (string, error) {
	disp, err := emuDispatch(src)
	if err != nil {
		return "", err
	}
	fresh, err := emuFresh(name, src)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s\n#line 1 %q\n%s\n%s", emuHeader, name, fresh, disp), nil
}

// buildEmu compiles CUDA C source (named name in messages) with emu.h into
// a shared library and loads it.
func buildEmu(name, src string) (uintptr, error) {
	full, err := emuSource(name, src)
	if err != nil {
		return 0, err
	}
	return buildLibrary(full, name)
}

// buildLibrary compiles C++ source full (what it is, in messages) with g++
// into a shared library, as the emulation wants it (C++20, no fused
// multiply-adds), and loads it.
func buildLibrary(full, what string) (uintptr, error) {
	gxx, err := exec.LookPath("g++")
	if err != nil {
		return 0, fmt.Errorf("no g++ for the CPU emulation of the kernels: %v", err)
	}
	dir, err := os.MkdirTemp("", "ncsn-cuda-emu")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir) // the loaded library stays mapped
	cpp := filepath.Join(dir, "kernels_emu.cpp")
	if err := os.WriteFile(cpp, []byte(full), 0o644); err != nil {
		return 0, err
	}
	so := filepath.Join(dir, "kernels_emu.so")
	out, err := exec.Command(gxx, "-std=c++20", "-O1", "-ffp-contract=off", "-fPIC", "-shared", "-o", so, cpp).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("g++ on %s: %v\n%s", what, err, out)
	}
	return purego.Dlopen(so, purego.RTLD_NOW|purego.RTLD_LOCAL)
}

type emuBackend struct {
	launchFn func(name string, gx, gy, gz, bx, by, bz uint32, args unsafe.Pointer, seq uint64) int32
	launches uint64 // this device's, the seed of each launch's orders
	errorFn  func() string
	malloc   func(n uintptr) unsafe.Pointer
	freeFn   func(p unsafe.Pointer)
	args     unsafe.Pointer
	live     map[DevPtr]unsafe.Pointer
	size     map[DevPtr]int
	// rec, while a capture runs, collects the calls instead of running them.
	rec *emuGraph
	// capture is EmuCaptureEnv's value: "", "round" or "refuse".
	captureMode string
}

// emuGraph is the emulation's Graph: the recorded calls, in order.
type emuGraph struct{ calls []func() error }

func (g *emuGraph) replay() error {
	for _, c := range g.calls {
		if err := c(); err != nil {
			return err
		}
	}
	return nil
}

func (g *emuGraph) destroy() { g.calls = nil }

// capture runs f with every launch, product and copy within device memory
// recorded, not run; uploads, downloads and allocations are errors there,
// as a CUDA stream capture refuses them.
func (e *emuBackend) capture(f func() error) (replayer, error) {
	if e.rec != nil {
		return nil, fmt.Errorf("emu: a capture inside a capture")
	}
	if e.captureMode == "refuse" {
		return nil, fmt.Errorf("emu: captures refused (%s=refuse)", EmuCaptureEnv)
	}
	g := &emuGraph{}
	e.rec = g
	err := f()
	e.rec = nil
	if err != nil {
		return nil, err
	}
	return g, nil
}

// capturing is the error of a call that a capture cannot record.
func (e *emuBackend) capturing(call string) error {
	if e.rec != nil {
		return fmt.Errorf("emu: %s while capturing a graph", call)
	}
	return nil
}

// EmuOrderEnv chooses the order in which the emulation runs a launch's
// blocks and each block's threads, phase by phase between barriers:
// "shuffle" (the default: a permutation drawn from the device's count of
// launches, the same in every run of a test), "up" or "down". A kernel
// whose result depends on it races.
const EmuOrderEnv = "NCSN_EMU_ORDER"

// EmuCaptureEnv changes the emulation's captures, for the tests of graph
// runs: "round" has the products of a replayed graph accumulate in float32
// (in float64 otherwise, as the same calls made one by one), as cuBLAS may
// choose other algorithms under capture than outside it; "refuse" makes
// every capture fail, as a driver that cannot capture some call.
const EmuCaptureEnv = "NCSN_EMU_CAPTURE"

// emuOrders are EmuOrderEnv's values, as emu.h numbers them.
var emuOrders = map[string]int32{"": 0, "shuffle": 0, "up": 1, "down": 2}

// emuRedzone is the NaN-filled margin before and after each emulated
// allocation; a launch that changes it fails (a write out of bounds), and a
// read there gives NaN.
const (
	emuRedzone = 1024
	emuPoison  = 0x7fc00001
	emuZone    = 0x7fc0bad0
)

// OpenEmulator compiles the kernels for the CPU (once per process; it needs
// g++) and returns a device that runs them there (emu.h: block by block,
// the threads of a block in turn, as fibers between barriers, in the order
// EmuOrderEnv sets; barriers met by every thread at one line, shared
// memory NaN-filled per block, writes out of a shared array's or an
// allocation's bounds caught). It is for tests: slow, but it runs the
// kernels' own code and the host code that launches them.
func OpenEmulator() (*Device, error) {
	order, ok := emuOrders[os.Getenv(EmuOrderEnv)]
	if !ok {
		return nil, fmt.Errorf("cuda: %s=%q: want shuffle, up or down", EmuOrderEnv, os.Getenv(EmuOrderEnv))
	}
	capture := os.Getenv(EmuCaptureEnv)
	if capture != "" && capture != "round" && capture != "refuse" {
		return nil, fmt.Errorf("cuda: %s=%q: want round, refuse or nothing", EmuCaptureEnv, capture)
	}
	lib, err := loadEmu()
	if err != nil {
		return nil, err
	}
	d, err := newEmulator(lib, order)
	if err == nil && capture != "" {
		d.b.(*emuBackend).captureMode = capture
		d.Describe += ", " + EmuCaptureEnv + "=" + capture
	}
	return d, err
}

// newEmulator is a device on an emulation library (buildEmu).
func newEmulator(lib uintptr, order int32) (*Device, error) {
	libc, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, err
	}
	e := &emuBackend{live: map[DevPtr]unsafe.Pointer{}, size: map[DevPtr]int{}}
	var setOrder func(int32)
	purego.RegisterLibFunc(&e.launchFn, lib, "emu_launch")
	purego.RegisterLibFunc(&e.errorFn, lib, "emu_error")
	purego.RegisterLibFunc(&setOrder, lib, "emu_set_order")
	purego.RegisterLibFunc(&e.malloc, libc, "malloc")
	purego.RegisterLibFunc(&e.freeFn, libc, "free")
	setOrder(order)
	graphs, asked, err := graphsFromEnv()
	if err != nil {
		return nil, err
	}
	e.args = e.malloc(argBytes)
	describe := "CPU emulation of kernels.cu (g++)"
	if graphs {
		describe += ", graphs recorded and replayed (" + GraphEnv + "=0 runs kernel by kernel)"
	}
	return &Device{b: e, Describe: describe, Arith: "cuda-emulator", ReduceThreads: 32, Graphs: graphs, GraphsAsked: asked}, nil
}

func (e *emuBackend) alloc(bytes int) (DevPtr, error) {
	if err := e.capturing("an allocation"); err != nil {
		return 0, err
	}
	bytes = (bytes + 3) / 4 * 4 // whole words, as the margins are
	q := e.malloc(uintptr(bytes + 2*emuRedzone))
	if q == nil {
		return 0, fmt.Errorf("emu: malloc(%d) failed", bytes)
	}
	all := unsafe.Slice((*uint32)(q), (bytes+2*emuRedzone)/4)
	for i := range all {
		all[i] = emuZone
	}
	// NaN-poisoned: a kernel that leaves an element unwritten shows.
	p := unsafe.Add(q, emuRedzone)
	f := unsafe.Slice((*uint32)(p), bytes/4)
	for i := range f {
		f[i] = emuPoison
	}
	e.live[DevPtr(uintptr(p))] = p
	e.size[DevPtr(uintptr(p))] = bytes
	return DevPtr(uintptr(p)), nil
}

func (e *emuBackend) free(p DevPtr) {
	if q, ok := e.live[p]; ok && e.rec == nil { // as the driver: nothing is freed during a capture
		delete(e.live, p)
		delete(e.size, p)
		e.freeFn(unsafe.Add(q, -emuRedzone))
	}
}

// checkZones is the error of the allocation at the lowest address whose
// margins a kernel changed (a write out of its bounds); every margin is
// put back.
func (e *emuBackend) checkZones(kernel string) error {
	var bad error
	var badAt DevPtr
	for p, q := range e.live {
		n := e.size[p]
		for _, from := range [2]int{-emuRedzone, n} {
			w := unsafe.Slice((*uint32)(unsafe.Add(q, from)), emuRedzone/4)
			for i := range w {
				if w[i] != emuZone {
					if bad == nil || p < badAt {
						bad, badAt = fmt.Errorf("emu: %s wrote bytes %d–%d of an allocation of %d bytes at %#x (out of bounds)", kernel, from+4*i, from+4*i+3, n, p), p
					}
					w[i] = emuZone
				}
			}
		}
	}
	return bad
}

// mem is the C memory behind a device pointer (whole allocations only).
func (e *emuBackend) mem(p DevPtr, bytes int) ([]byte, error) {
	q, ok := e.live[p]
	if !ok {
		return nil, fmt.Errorf("emu: %#x is not an allocation", p)
	}
	return unsafe.Slice((*byte)(q), bytes), nil
}

func (e *emuBackend) copyIn(dst DevPtr, src unsafe.Pointer, bytes int) error {
	if err := e.capturing("an upload"); err != nil {
		return err
	}
	m, err := e.mem(dst, bytes)
	if err != nil {
		return err
	}
	copy(m, unsafe.Slice((*byte)(src), bytes))
	return nil
}

func (e *emuBackend) copyOut(dst unsafe.Pointer, src DevPtr, bytes int) error {
	if err := e.capturing("a download"); err != nil {
		return err
	}
	m, err := e.mem(src, bytes)
	if err != nil {
		return err
	}
	copy(unsafe.Slice((*byte)(dst), bytes), m)
	return nil
}

func (e *emuBackend) launch(kernel string, grid, block [3]uint32, params unsafe.Pointer) error {
	if e.rec != nil {
		// The parameters by value: the argument slots of the pinned block
		// (pack points params at them) are written back before the replay.
		vals := *(*[maxArgs]uint64)(e.args)
		e.rec.calls = append(e.rec.calls, func() error {
			*(*[maxArgs]uint64)(e.args) = vals
			return e.launch(kernel, grid, block, params)
		})
		return nil
	}
	e.launches++
	// The library's state is one per process: another device's launch
	// must not come between this one and the reading of its message.
	emuLaunchMu.Lock()
	r := e.launchFn(kernel, grid[0], grid[1], grid[2], block[0], block[1], block[2], params, e.launches)
	var err error
	switch r {
	case 0:
	case 1:
		err = fmt.Errorf("emu: no kernel %s", kernel)
	default:
		err = fmt.Errorf("emu: %s: %s", kernel, e.errorFn())
	}
	emuLaunchMu.Unlock()
	if r == 1 {
		return err
	}
	// A failed launch's writes out of bounds are its own, not the next's.
	return errors.Join(err, e.checkZones(kernel))
}

func (e *emuBackend) argSpace() unsafe.Pointer { return e.args }

func (e *emuBackend) batch(f func() error) error { return f() }

func (e *emuBackend) close() {
	for p := range e.live {
		e.free(p)
	}
}

func (e *emuBackend) copyDevice(dst, src DevPtr, bytes int) error {
	if e.rec != nil {
		e.rec.calls = append(e.rec.calls, func() error { return e.copyDevice(dst, src, bytes) })
		return nil
	}
	d, err := e.at(dst, bytes)
	if err != nil {
		return err
	}
	s, err := e.at(src, bytes)
	if err != nil {
		return err
	}
	copy(d, s)
	return nil
}

// at is the C memory of bytes bytes from p, which may point inside an
// allocation.
func (e *emuBackend) at(p DevPtr, bytes int) ([]byte, error) {
	for base, q := range e.live {
		if p >= base && p+DevPtr(bytes) <= base+DevPtr(e.size[base]) {
			return unsafe.Slice((*byte)(unsafe.Add(q, int(p-base))), bytes), nil
		}
	}
	return nil, fmt.Errorf("emu: %d bytes at %#x are not inside an allocation", bytes, p)
}

// gemm is the textbook row-major product, accumulated in float64 — and,
// recorded in a capture with EmuCaptureEnv=round, in float32.
func (e *emuBackend) gemm(transA, transB bool, m, n, k int, alpha float32, a, b DevPtr, beta float32, c DevPtr) error {
	if e.rec != nil {
		f32 := e.captureMode == "round"
		e.rec.calls = append(e.rec.calls, func() error { return e.product(f32, transA, transB, m, n, k, alpha, a, b, beta, c) })
		return nil
	}
	return e.product(false, transA, transB, m, n, k, alpha, a, b, beta, c)
}

func (e *emuBackend) product(f32, transA, transB bool, m, n, k int, alpha float32, a, b DevPtr, beta float32, c DevPtr) error {
	am, err := e.at(a, 4*m*k)
	if err != nil {
		return err
	}
	bm, err := e.at(b, 4*k*n)
	if err != nil {
		return err
	}
	cm, err := e.at(c, 4*m*n)
	if err != nil {
		return err
	}
	A := unsafe.Slice((*float32)(unsafe.Pointer(&am[0])), m*k)
	B := unsafe.Slice((*float32)(unsafe.Pointer(&bm[0])), k*n)
	C := unsafe.Slice((*float32)(unsafe.Pointer(&cm[0])), m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			var s32 float32
			for p := 0; p < k; p++ {
				ai, bi := i*k+p, p*n+j
				if transA {
					ai = p*m + i
				}
				if transB {
					bi = j*k + p
				}
				if f32 {
					s32 += A[ai] * B[bi]
				} else {
					s += float64(A[ai]) * float64(B[bi])
				}
			}
			if f32 {
				s = float64(s32)
			}
			v := float64(alpha) * s
			if beta != 0 {
				v += float64(beta) * float64(C[i*n+j])
			}
			C[i*n+j] = float32(v)
		}
	}
	return nil
}
