//go:build linux

package cuda

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ebitengine/purego"
	"github.com/ncsn-go/ncsn/internal/fsutil"
)

// The CUDA driver API, loaded at run time. Versioned (_v2) symbols where
// the API has them; the primary context of the device (CUDA 13 changed
// cuCtxCreate's signature; the primary context is what the runtime uses).

// driverNames are tried in order.
var driverNames = []string{"libcuda.so.1", "libcuda.so"}

// Device attributes (cuda.h, CUdevice_attribute).
const (
	attrCCMajor = 75
	attrCCMinor = 76
)

type driverLib struct {
	name           string
	init           func(flags uint32) int32
	driverVersion  func(v *int32) int32
	deviceCount    func(n *int32) int32
	deviceGet      func(dev *int32, ordinal int32) int32
	deviceName     func(name *byte, n int32, dev int32) int32
	totalMem       func(bytes *uint64, dev int32) int32
	attribute      func(v *int32, attr int32, dev int32) int32
	ctxRetain      func(ctx *uintptr, dev int32) int32
	ctxRelease     func(dev int32) int32
	ctxSetCurrent  func(ctx uintptr) int32
	ctxSynchronize func() int32
	memAlloc       func(p *uint64, bytes uint64) int32
	memFree        func(p uint64) int32
	memAllocHost   func(p *unsafe.Pointer, bytes uint64) int32
	memFreeHost    func(p unsafe.Pointer) int32
	memcpyHtoD     func(dst uint64, src unsafe.Pointer, bytes uint64) int32
	memcpyDtoH     func(dst unsafe.Pointer, src uint64, bytes uint64) int32
	memcpyDtoD     func(dst, src uint64, bytes uint64) int32
	moduleLoadData func(mod *uintptr, image unsafe.Pointer) int32
	moduleFunction func(fn *uintptr, mod uintptr, name string) int32
	moduleUnload   func(mod uintptr) int32
	launchKernel   func(fn uintptr, gx, gy, gz, bx, by, bz, shared uint32, stream uintptr, params, extra unsafe.Pointer) int32
	errorString    func(res int32, s **byte) int32
	// CUDA graphs (Graph): optional, nil where the driver lacks them.
	streamCreate      func(s *uintptr, flags uint32) int32
	streamDestroy     func(s uintptr) int32
	beginCapture      func(s uintptr, mode int32) int32
	endCapture        func(s uintptr, g *uintptr) int32
	graphInstantiate  func(exec *uintptr, g uintptr, flags uint64) int32
	graphLaunch       func(exec, s uintptr) int32
	graphExecDestroy  func(exec uintptr) int32
	graphDestroy      func(g uintptr) int32
	memcpyDtoDAsync   func(dst, src uint64, bytes uint64, s uintptr) int32
	graphSymbolsError error
}

// graphSymbols are the driver's calls that Graph needs (CUDA ≥ 11.4).
func (l *driverLib) graphSymbols() map[string]any {
	return map[string]any{"cuStreamCreate": &l.streamCreate, "cuStreamDestroy_v2": &l.streamDestroy,
		"cuStreamBeginCapture_v2": &l.beginCapture, "cuStreamEndCapture": &l.endCapture,
		"cuGraphInstantiateWithFlags": &l.graphInstantiate, "cuGraphLaunch": &l.graphLaunch,
		"cuGraphExecDestroy": &l.graphExecDestroy, "cuGraphDestroy": &l.graphDestroy,
		"cuMemcpyDtoDAsync_v2": &l.memcpyDtoDAsync}
}

// LibraryDirsEnv names the variable of extra folders (colon-separated)
// searched for libcuda, libnvrtc and libcublas before the usual places.
const LibraryDirsEnv = "NCSN_CUDA_LIBS"

// libraryDirs are searched, in order, for a library the dynamic loader does
// not find by its name alone (neither in ld.so's cache nor on
// LD_LIBRARY_PATH): NCSN_CUDA_LIBS, the toolkit named by CUDA_HOME or
// CUDA_PATH, the usual toolkit and driver folders (containers mount the
// driver under /usr/local/nvidia; WSL under /usr/lib/wsl/lib), and the
// NVIDIA wheels of a Python environment under /opt or /usr/local.
func libraryDirs() []string {
	var dirs []string
	for _, d := range filepath.SplitList(os.Getenv(LibraryDirsEnv)) {
		if d == "" {
			continue
		}
		// Made absolute: "." joined with a name is the bare name, which
		// the dynamic loader looks up on its own path, not here.
		if a, err := filepath.Abs(d); err == nil {
			d = a
		}
		dirs = append(dirs, d)
	}
	for _, v := range []string{"CUDA_HOME", "CUDA_PATH"} {
		if h := os.Getenv(v); h != "" {
			dirs = append(dirs, filepath.Join(h, "lib64"), filepath.Join(h, "lib"))
		}
	}
	dirs = append(dirs, "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib",
		"/usr/local/cuda/targets/sbsa-linux/lib", "/usr/local/nvidia/lib64", "/usr/local/nvidia/lib",
		"/usr/lib/wsl/lib", "/usr/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu")
	for _, pat := range []string{"/opt/*/.venv/lib/python3*/site-packages/nvidia/*/lib",
		"/usr/local/lib/python3*/dist-packages/nvidia/*/lib", "/usr/local/lib/python3*/site-packages/nvidia/*/lib"} {
		m, _ := filepath.Glob(pat)
		dirs = append(dirs, m...)
	}
	return dirs
}

// dlopenAny opens the first library of names that loads: each name as the
// dynamic loader finds it, then in each of libraryDirs.
func dlopenAny(what string, names []string) (uintptr, string, error) {
	var errs []string
	try := func(n string) (uintptr, bool) {
		lib, err := purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return lib, true
		}
		if msg := err.Error(); msg != "" && !strings.Contains(msg, "No such file") {
			errs = append(errs, msg) // found but not loadable: worth saying
		}
		return 0, false
	}
	for _, n := range names {
		if lib, ok := try(n); ok {
			return lib, n, nil
		}
	}
	for _, dir := range libraryDirs() {
		for _, n := range names {
			p := filepath.Join(dir, n)
			if _, err := os.Stat(p); err != nil {
				continue
			}
			if lib, ok := try(p); ok {
				return lib, p, nil
			}
		}
	}
	msg := "not found by the dynamic loader nor in the CUDA folders; set " + LibraryDirsEnv + " to its folder"
	if len(errs) > 0 {
		msg = strings.Join(errs, "; ")
	}
	return 0, "", fmt.Errorf("%w: %s (%s): %s", ErrNoLibrary, what, strings.Join(names, ", "), msg)
}

// libs is where a device's driver and libraries come from: the dynamic
// loader and the CUDA folders (nil), or one library that has them all (the
// fake driver of the tests, fakedriver.go).
type libs struct {
	h    uintptr
	name string
	// algoDir, if set, gives the folder of a device's cuDNN choices in
	// place of the user's cache; one it made (temp) is removed when the
	// device closes.
	algoDir func() (dir string, temp bool, err error)
}

// open is the handle and name of a library (what, by names), from l where
// set.
func (l *libs) open(what string, names []string) (uintptr, string, error) {
	if l != nil {
		return l.h, l.name, nil
	}
	return dlopenAny(what, names)
}

func loadDriver(from *libs) (*driverLib, error) {
	l := &driverLib{}
	h, name, err := from.open("the CUDA driver", driverNames)
	if err != nil {
		return nil, err
	}
	l.name = name
	for sym, fn := range map[string]any{
		"cuInit": &l.init, "cuDriverGetVersion": &l.driverVersion, "cuDeviceGetCount": &l.deviceCount,
		"cuDeviceGet": &l.deviceGet, "cuDeviceGetName": &l.deviceName, "cuDeviceTotalMem_v2": &l.totalMem,
		"cuDeviceGetAttribute": &l.attribute, "cuDevicePrimaryCtxRetain": &l.ctxRetain,
		"cuDevicePrimaryCtxRelease_v2": &l.ctxRelease, "cuCtxSetCurrent": &l.ctxSetCurrent,
		"cuCtxSynchronize": &l.ctxSynchronize, "cuMemAlloc_v2": &l.memAlloc, "cuMemFree_v2": &l.memFree,
		"cuMemAllocHost_v2": &l.memAllocHost, "cuMemFreeHost": &l.memFreeHost,
		"cuMemcpyHtoD_v2": &l.memcpyHtoD, "cuMemcpyDtoH_v2": &l.memcpyDtoH, "cuMemcpyDtoD_v2": &l.memcpyDtoD,
		"cuModuleLoadData": &l.moduleLoadData, "cuModuleGetFunction": &l.moduleFunction,
		"cuModuleUnload": &l.moduleUnload, "cuLaunchKernel": &l.launchKernel, "cuGetErrorString": &l.errorString,
	} {
		if _, err := purego.Dlsym(h, sym); err != nil {
			return nil, fmt.Errorf("%w: %s has no %s", ErrNoLibrary, l.name, sym)
		}
		purego.RegisterLibFunc(fn, h, sym)
	}
	graphs := l.graphSymbols()
	for sym := range graphs {
		if _, err := purego.Dlsym(h, sym); err != nil {
			l.graphSymbolsError = fmt.Errorf("cuda: %s has no %s: no CUDA graphs", l.name, sym)
			return l, nil
		}
	}
	for sym, fn := range graphs {
		purego.RegisterLibFunc(fn, h, sym)
	}
	return l, nil
}

// check turns a CUresult into an error naming the call.
func (l *driverLib) check(call string, r int32) error {
	if r == 0 {
		return nil
	}
	var s *byte
	msg := fmt.Sprintf("error %d", r)
	if l.errorString(r, &s) == 0 && s != nil {
		msg = cString(s)
	}
	return fmt.Errorf("cuda: %s: %s", call, msg)
}

// cString copies a NUL-terminated C string.
func cString(p *byte) string {
	var b []byte
	for q := unsafe.Pointer(p); *(*byte)(q) != 0; q = unsafe.Add(q, 1) {
		b = append(b, *(*byte)(q))
	}
	return string(b)
}

// driverBackend runs every driver call on one goroutine locked to its OS
// thread: a CUDA context is current per thread.
type driverBackend struct {
	l         *driverLib
	from      *libs  // where the libraries came from (nil: the machine)
	algoDir   string // a folder of from.algoDir's making, removed at close
	blas      *cublasLib
	handle    uintptr // the cuBLAS handle, made on the worker thread
	dnn       *cudnnLib
	dnnHandle uintptr // the cuDNN handle, made on the worker thread
	dnnConvs  map[Conv3]*dnnConv
	dnnGraph  *dnnGraphLib // cuDNN's graph API, where NCSN_CUDNN=graph asks for it
	work      chan func()
	dev       int32
	mod       uintptr
	fns       map[string]uintptr
	args      unsafe.Pointer // pinned host memory for kernel parameters
	live      map[DevPtr]bool
	retained  bool // the primary context's reference is held
	closeOnce sync.Once
	closed    atomic.Bool // after close: graphs left are gone with the context
	// onWorker is true while the worker thread runs a function handed to
	// it (written only there; the hand-over orders it with the reads).
	onWorker bool
	// stream is where launches go: 0 (the legacy default stream), or
	// capStream while a capture records them; capStream, made at the first
	// capture, is where graphs are launched (a blocking stream: ordered
	// with the default stream's work both ways).
	stream, capStream uintptr
}

// do runs f on the worker thread, directly when already there (inside batch).
func (d *driverBackend) do(f func() error) error {
	if d.onWorker {
		return f()
	}
	if d.closed.Load() { // set on the worker before close(d.work): a send now panicked
		return errClosed
	}
	done := make(chan error, 1)
	d.work <- func() {
		d.onWorker = true
		err := f()
		d.onWorker = false
		done <- err
	}
	return <-done
}

func (d *driverBackend) batch(f func() error) error { return d.do(f) }

// errClosed is the error of a device's calls after its Close.
var errClosed = errors.New("cuda: the device is closed")

// Open is OpenIndex(0): the first GPU the driver sees.
func Open() (*Device, error) { return OpenIndex(0) }

// DeviceCount is the number of GPUs the driver sees (CUDA_VISIBLE_DEVICES
// narrows them; EmulateEnv=1: one). The errors wrap ErrNoLibrary (no driver) or ErrNoDevice.
func DeviceCount() (int, error) {
	var from *libs
	switch os.Getenv(EmulateEnv) {
	case "1":
		return 1, nil
	case "driver":
		f, err := loadFakeDriver()
		if err != nil {
			return 0, err
		}
		from = f
	}
	return deviceCount(from)
}

// deviceCount is the number of GPUs of the driver from (nil: the machine's).
func deviceCount(from *libs) (int, error) {
	l, err := loadDriver(from)
	if err != nil {
		return 0, err
	}
	if r := l.init(0); r != 0 {
		return 0, fmt.Errorf("%w: %v", ErrNoDevice, l.check("cuInit", r))
	}
	var n int32
	if err := l.check("cuDeviceGetCount", l.deviceCount(&n)); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNoDevice, err)
	}
	return int(n), nil
}

// OpenIndex finds GPU index (0, 1, … in the driver's order) through the
// driver, compiles the kernels for it (or takes their PTX from the cache),
// and returns it. The errors wrap ErrNoLibrary (no driver or no NVRTC) or
// ErrNoDevice (none, or fewer than index+1).
func OpenIndex(index int) (*Device, error) { return openIndex(index, nil) }

// openIndex is OpenIndex on the libraries of from (nil: the machine's).
func openIndex(index int, from *libs) (*Device, error) {
	if index < 0 {
		return nil, fmt.Errorf("%w: no GPU %d", ErrNoDevice, index)
	}
	l, err := loadDriver(from)
	if err != nil {
		return nil, err
	}
	graphs, asked, err := graphsFromEnv()
	if err == nil && asked && l.graphSymbolsError != nil {
		err = fmt.Errorf("%w (%s=1)", l.graphSymbolsError, GraphEnv)
	}
	if err != nil {
		return nil, err
	}
	noGraphs := ""
	if graphs && l.graphSymbolsError != nil {
		graphs, noGraphs = false, ", kernel by kernel ("+l.graphSymbolsError.Error()+")"
	}
	d := &driverBackend{l: l, from: from, work: make(chan func()), fns: map[string]uintptr{}, live: map[DevPtr]bool{}}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		for f := range d.work {
			f()
		}
	}()
	var describe, blasName, convName string
	var dnn *dnnState
	var tf32 bool
	err = d.do(func() error {
		if r := l.init(0); r != 0 {
			return fmt.Errorf("%w: %v", ErrNoDevice, l.check("cuInit", r))
		}
		var n, ver, major, minor int32
		if err := l.check("cuDeviceGetCount", l.deviceCount(&n)); err != nil {
			return fmt.Errorf("%w: %v", ErrNoDevice, err)
		}
		if n < 1 {
			return fmt.Errorf("%w: the driver sees no device", ErrNoDevice)
		}
		if index >= int(n) {
			return fmt.Errorf("%w: no GPU %d: the driver sees %d (0 to %d)", ErrNoDevice, index, n, n-1)
		}
		if err := l.check("cuDeviceGet", l.deviceGet(&d.dev, int32(index))); err != nil {
			return err
		}
		name := make([]byte, 256)
		var mem uint64
		// The name, memory and driver version only describe the GPU; its
		// compute capability chooses the kernels' architecture.
		if l.deviceName(&name[0], int32(len(name)), d.dev) != 0 {
			copy(name, "(unnamed GPU)\x00")
		}
		l.totalMem(&mem, d.dev)
		l.driverVersion(&ver)
		if err := l.check("cuDeviceGetAttribute(compute capability major)", l.attribute(&major, attrCCMajor, d.dev)); err != nil {
			return err
		}
		if err := l.check("cuDeviceGetAttribute(compute capability minor)", l.attribute(&minor, attrCCMinor, d.dev)); err != nil {
			return err
		}
		var ctx uintptr
		if err := l.check("cuDevicePrimaryCtxRetain", l.ctxRetain(&ctx, d.dev)); err != nil {
			return err
		}
		d.retained = true
		if err := l.check("cuCtxSetCurrent", l.ctxSetCurrent(ctx)); err != nil {
			return err
		}
		// Machine code for this GPU first; where NVRTC cannot make it or
		// the driver refuses it, PTX for the driver to compile; where NVRTC
		// is older than the GPU, PTX of the newest architecture it knows.
		var how string
		var loadErrs []string
		archs := []string{fmt.Sprintf("sm_%d%d", major, minor), fmt.Sprintf("compute_%d%d", major, minor)}
		if a, ok := newestArchBelow(int(major*10 + minor)); ok {
			archs = append(archs, fmt.Sprintf("compute_%d", a))
		}
		for _, arch := range archs {
			img, h, err := kernelImage(arch)
			if err != nil {
				loadErrs = append(loadErrs, err.Error())
				continue
			}
			var pin runtime.Pinner
			pin.Pin(&img[0])
			r := l.moduleLoadData(&d.mod, unsafe.Pointer(&img[0]))
			pin.Unpin()
			if err := l.check("cuModuleLoadData", r); err != nil {
				loadErrs = append(loadErrs, fmt.Sprintf("%v (%s, %s)", err, arch, h))
				continue
			}
			how = h + " for " + arch
			break
		}
		if how == "" {
			return fmt.Errorf("cuda: loading the kernels: %s", strings.Join(loadErrs, "; "))
		}
		// Every kernel looked up now: never for the first time inside a
		// capture (with lazy loading, CUDA 12.2's default, the lookup is
		// where a kernel is loaded).
		for _, k := range kernelNames() {
			var fn uintptr
			if err := l.check("cuModuleGetFunction "+k, l.moduleFunction(&fn, d.mod, k)); err != nil {
				return err
			}
			d.fns[k] = fn
		}
		if err := l.check("cuMemAllocHost", l.memAllocHost(&d.args, argBytes+16)); err != nil {
			return err
		}
		if d.blas, err = loadCublas(from); err != nil {
			return err
		}
		if r := d.blas.create(&d.handle); r != 0 {
			return fmt.Errorf("cuda: cublasCreate: %s", cublasStatus(r))
		}
		var bv int32
		d.blas.version(d.handle, &bv)
		blasName = fmt.Sprintf("cuBLAS %s (%s)", cublasVersionString(bv), d.blas.name)
		tf32 = os.Getenv(TF32Env) == "1"
		if tf32 {
			if r := d.blas.setMath(d.handle, cublasTF32TensorOpMath); r != 0 {
				return fmt.Errorf("cuda: cublasSetMathMode: %s", cublasStatus(r))
			}
			blasName += " with TF32 tensor cores (" + TF32Env + "=1)"
		}
		if dnn, convName, err = d.openCudnn(tf32, fmt.Sprintf("%s-sm_%d%d", cString(&name[0]), major, minor)); err != nil {
			return err
		}
		nv, _ := NVRTCVersion()
		which := ""
		if n > 1 {
			which = fmt.Sprintf("cuda:%d of %d, ", index, n)
		}
		describe = fmt.Sprintf("GPU %s (%ssm_%d%d, %.1f GiB), CUDA driver %d.%d (%s), %s, %s, kernels %s by %s",
			cString(&name[0]), which, major, minor, float64(mem)/(1<<30), ver/1000, ver%1000/10, l.name, blasName, convName, how, nv)
		return nil
	})
	if err != nil {
		d.close() // what was made before the error, and the context's reference
		return nil, err
	}
	if graphs {
		describe += ", CUDA graphs on (" + GraphEnv + "=0 runs kernel by kernel)"
	} else {
		describe += noGraphs
	}
	return &Device{b: d, Describe: describe, Arith: arithOf(tf32, dnn), dnn: dnn, Graphs: graphs, GraphsAsked: asked}, nil
}

// kernelImage compiles Source for arch (Compile: CUBIN for sm_XY, PTX for
// compute_XY), or reads the image compiled earlier from the user's cache
// folder (keyed by the source's hash, the architecture and the NVRTC
// version); it says which.
func kernelImage(arch string) ([]byte, string, error) {
	nv, err := NVRTCVersion()
	if err != nil {
		return nil, "", err
	}
	ext := ".ptx"
	valid := func(b []byte) bool { return len(b) > 0 && b[len(b)-1] == 0 } // PTX is NUL-terminated text
	if strings.HasPrefix(arch, "sm_") {
		ext = ".cubin"
		valid = func(b []byte) bool { return len(b) > 4 && string(b[:4]) == "\x7fELF" }
	}
	var cache string
	if dir, err := os.UserCacheDir(); err == nil {
		key := strings.NewReplacer(" ", "_", "(", "", ")", "", "/", "_").Replace(nv)
		cache = filepath.Join(dir, "ncsn", "ptx", fmt.Sprintf("%s-%s-%s%s", SourceHash(), arch, key, ext))
		if b, err := os.ReadFile(cache); err == nil && valid(b) {
			return b, "cached (" + cache + ")", nil
		}
	}
	img, err := Compile(Source, arch)
	if err != nil {
		return nil, "", err
	}
	if cache != "" {
		if err := os.MkdirAll(filepath.Dir(cache), 0o755); err == nil {
			_ = fsutil.WriteFileAtomic(cache, img) // a cache that cannot be written costs a compile next time
		}
	}
	return img, "compiled", nil
}

func (d *driverBackend) alloc(bytes int) (DevPtr, error) {
	var p uint64
	err := d.do(func() error {
		if err := d.capturing("an allocation"); err != nil {
			return err
		}
		return d.l.check("cuMemAlloc", d.l.memAlloc(&p, uint64(bytes)))
	})
	if err == nil {
		d.live[DevPtr(p)] = true
	}
	return DevPtr(p), err
}

func (d *driverBackend) free(p DevPtr) {
	if d.live[p] && d.stream == 0 { // during a capture cuMemFree would invalidate it (grow refuses before)
		delete(d.live, p)
		d.do(func() error { return d.l.check("cuMemFree", d.l.memFree(uint64(p))) })
	}
}

func (d *driverBackend) copyIn(dst DevPtr, src unsafe.Pointer, bytes int) error {
	return d.do(func() error {
		if err := d.capturing("an upload"); err != nil {
			return err
		}
		return d.l.check("cuMemcpyHtoD", d.l.memcpyHtoD(uint64(dst), src, uint64(bytes)))
	})
}

func (d *driverBackend) copyOut(dst unsafe.Pointer, src DevPtr, bytes int) error {
	return d.do(func() error {
		if err := d.capturing("a download"); err != nil {
			return err
		}
		return d.l.check("cuMemcpyDtoH", d.l.memcpyDtoH(dst, uint64(src), uint64(bytes)))
	})
}

func (d *driverBackend) launch(kernel string, grid, block [3]uint32, params unsafe.Pointer) error {
	fn, ok := d.fns[kernel]
	if !ok {
		return fmt.Errorf("cuda: no kernel %s in kernels.cu", kernel)
	}
	return d.do(func() error {
		r := d.l.launchKernel(fn, grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, d.stream, params, nil)
		return d.l.check("cuLaunchKernel "+kernel, r)
	})
}

func (d *driverBackend) argSpace() unsafe.Pointer { return d.args }

// Synchronize waits for every launched kernel and reports the first error.
func (d *Device) Synchronize() error {
	if err := d.b.capturing("a wait"); err != nil {
		return err
	}
	if g, ok := d.b.(*driverBackend); ok {
		return g.do(func() error {
			if err := g.capturing("a wait"); err != nil {
				return err
			}
			return g.l.check("cuCtxSynchronize", g.l.ctxSynchronize())
		})
	}
	return nil
}

func (d *driverBackend) close() {
	d.closeOnce.Do(func() {
		d.do(func() error {
			d.closed.Store(true)
			if !d.retained {
				return nil // opening failed before the context: nothing was made
			}
			for p := range d.live {
				d.l.memFree(uint64(p))
			}
			d.live = nil
			if d.mod != 0 {
				d.l.moduleUnload(d.mod)
			}
			if d.args != nil {
				d.l.memFreeHost(d.args)
			}
			if d.handle != 0 {
				d.blas.destroy(d.handle)
			}
			if d.dnnHandle != 0 {
				d.dnn.destroy(d.dnnHandle)
			}
			if d.capStream != 0 {
				d.l.streamDestroy(d.capStream)
			}
			d.l.ctxRelease(d.dev)
			d.retained = false
			return nil
		})
		close(d.work)
		if d.algoDir != "" {
			os.RemoveAll(d.algoDir)
		}
	})
}

func (d *driverBackend) copyDevice(dst, src DevPtr, bytes int) error {
	return d.do(func() error {
		if d.stream != 0 {
			return d.l.check("cuMemcpyDtoDAsync", d.l.memcpyDtoDAsync(uint64(dst), uint64(src), uint64(bytes), d.stream))
		}
		return d.l.check("cuMemcpyDtoD", d.l.memcpyDtoD(uint64(dst), uint64(src), uint64(bytes)))
	})
}

// cublasTF32TensorOpMath is CUBLAS_TF32_TENSOR_OP_MATH (cublas_api.h).
const cublasTF32TensorOpMath = 3

// cublasNames are tried in order: CUDA 13, 12, 11.
var cublasNames = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}

type cublasLib struct {
	name      string
	create    func(h *uintptr) int32
	destroy   func(h uintptr) int32
	version   func(h uintptr, v *int32) int32
	setMath   func(h uintptr, mode int32) int32
	sgemm     func(h uintptr, ta, tb int32, m, n, k int32, alpha unsafe.Pointer, a uint64, lda int32, b uint64, ldb int32, beta unsafe.Pointer, c uint64, ldc int32) int32
	setStream func(h uintptr, s uintptr) int32
}

func loadCublas(from *libs) (*cublasLib, error) {
	l := &cublasLib{}
	h, name, err := from.open("cuBLAS", cublasNames)
	if err != nil {
		return nil, err
	}
	l.name = name
	for sym, fn := range map[string]any{"cublasCreate_v2": &l.create, "cublasDestroy_v2": &l.destroy,
		"cublasGetVersion_v2": &l.version, "cublasSetMathMode": &l.setMath, "cublasSgemm_v2": &l.sgemm,
		"cublasSetStream_v2": &l.setStream} {
		if _, err := purego.Dlsym(h, sym); err != nil {
			return nil, fmt.Errorf("%w: %s has no %s", ErrNoLibrary, l.name, sym)
		}
		purego.RegisterLibFunc(fn, h, sym)
	}
	return l, nil
}

// gemm runs the row-major product as cuBLAS's column-major one on the
// transposes (cublasCall); α and β sit in the pinned block after the kernel
// parameters (cuBLAS reads them from host memory by default).
func (d *driverBackend) gemm(transA, transB bool, m, n, k int, alpha float32, a, b DevPtr, beta float32, c DevPtr) error {
	g := cublasCall(transA, transB, m, n, k)
	return d.do(func() error {
		ab := unsafe.Add(d.args, argBytes)
		*(*float32)(ab) = alpha
		*(*float32)(unsafe.Add(ab, 4)) = beta
		r := d.blas.sgemm(d.handle, g.opA, g.opB, g.m, g.n, g.k, ab, uint64(b), g.lda, uint64(a), g.ldb, unsafe.Add(ab, 4), uint64(c), g.ldc)
		if r != 0 {
			return fmt.Errorf("cuda: cublasSgemm (%d×%d×%d): %s", m, n, k, cublasStatus(r))
		}
		return nil
	})
}

// cublasStatus names a cublasStatus_t (cublas_api.h).
func cublasStatus(r int32) string {
	names := map[int32]string{1: "CUBLAS_STATUS_NOT_INITIALIZED", 3: "CUBLAS_STATUS_ALLOC_FAILED (out of memory)",
		7: "CUBLAS_STATUS_INVALID_VALUE", 8: "CUBLAS_STATUS_ARCH_MISMATCH", 11: "CUBLAS_STATUS_MAPPING_ERROR",
		13: "CUBLAS_STATUS_EXECUTION_FAILED", 14: "CUBLAS_STATUS_INTERNAL_ERROR", 15: "CUBLAS_STATUS_NOT_SUPPORTED",
		16: "CUBLAS_STATUS_LICENSE_ERROR"}
	if n, ok := names[r]; ok {
		return fmt.Sprintf("status %d, %s", r, n)
	}
	return fmt.Sprintf("status %d", r)
}

var (
	kernelNamesOnce sync.Once
	kernelNameList  []string
)

// kernelNames are the kernels of Source (its extern "C" __global__ functions).
func kernelNames() []string {
	kernelNamesOnce.Do(func() {
		for _, m := range regexp.MustCompile(`extern "C" __global__ void (\w+)\(`).FindAllStringSubmatch(emuCode(Source), -1) {
			kernelNameList = append(kernelNameList, m[1])
		}
	})
	return kernelNameList
}

// cublasVersionString is cublasGetVersion's number as major.minor.patch:
// major·10000 + minor·100 + patch (cublas_api.h of cuBLAS 11.9 on), or
// major·1000 + minor·100 + patch in older ones (11.6.5: 11605), told apart
// by size (the newer form of a major ≥ 10 is ≥ 100000).
func cublasVersionString(v int32) string {
	if v < 100000 {
		return fmt.Sprintf("%d.%d.%d", v/1000, v/100%10, v%100)
	}
	return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
}
