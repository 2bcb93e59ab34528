//go:build linux

package cuda

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// nvrtcNames are tried in order: CUDA 13, 12, then Debian's libnvrtc11.2.
var nvrtcNames = []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"}

type nvrtcLib struct {
	name         string
	version      func(major, minor *int32) int32
	create       func(prog *uintptr, src, name string, nh int32, headers, includes uintptr) int32
	compile      func(prog uintptr, nopt int32, opts unsafe.Pointer) int32
	ptxSize      func(prog uintptr, size *uintptr) int32
	ptx          func(prog uintptr, out *byte) int32
	cubinSize    func(prog uintptr, size *uintptr) int32 // nil where NVRTC has no CUBIN output
	cubin        func(prog uintptr, out *byte) int32
	logSize      func(prog uintptr, size *uintptr) int32
	log          func(prog uintptr, out *byte) int32
	destroy      func(prog *uintptr) int32
	errString    func(res int32) string
	numArchs     func(n *int32) int32   // nil before NVRTC 11.2
	archs        func(out *int32) int32 // likewise
	major, minor int32
}

var (
	nvrtcOnce sync.Once
	nvrtc     *nvrtcLib
	nvrtcErr  error
)

func loadNVRTC() (*nvrtcLib, error) {
	nvrtcOnce.Do(func() {
		h, name, err := dlopenAny("NVRTC", nvrtcNames)
		if err != nil {
			nvrtcErr = err
			return
		}
		l := &nvrtcLib{name: name}
		for sym, fn := range map[string]any{
			"nvrtcVersion": &l.version, "nvrtcCreateProgram": &l.create, "nvrtcCompileProgram": &l.compile,
			"nvrtcGetPTXSize": &l.ptxSize, "nvrtcGetPTX": &l.ptx, "nvrtcGetProgramLogSize": &l.logSize,
			"nvrtcGetProgramLog": &l.log, "nvrtcDestroyProgram": &l.destroy, "nvrtcGetErrorString": &l.errString,
		} {
			if _, err := purego.Dlsym(h, sym); err != nil {
				nvrtcErr = fmt.Errorf("%w: %s has no %s", ErrNoLibrary, name, sym)
				return
			}
			purego.RegisterLibFunc(fn, h, sym)
		}
		if _, err := purego.Dlsym(h, "nvrtcGetSupportedArchs"); err == nil {
			purego.RegisterLibFunc(&l.numArchs, h, "nvrtcGetNumSupportedArchs")
			purego.RegisterLibFunc(&l.archs, h, "nvrtcGetSupportedArchs")
		}
		if _, err := purego.Dlsym(h, "nvrtcGetCUBIN"); err == nil {
			purego.RegisterLibFunc(&l.cubinSize, h, "nvrtcGetCUBINSize")
			purego.RegisterLibFunc(&l.cubin, h, "nvrtcGetCUBIN")
		}
		l.version(&l.major, &l.minor)
		nvrtc = l
	})
	return nvrtc, nvrtcErr
}

// newestArchBelow is the newest architecture NVRTC compiles for that is
// older than cc (major×10 + minor: 90 for sm_90), and whether there is
// one: PTX made for it runs on the newer GPU (the driver compiles it), where
// NVRTC is older than the GPU and knows no code for it.
func newestArchBelow(cc int) (int, bool) {
	l, err := loadNVRTC()
	if err != nil || l.numArchs == nil {
		return 0, false
	}
	var n int32
	if l.numArchs(&n) != 0 || n < 1 || n > 1024 {
		return 0, false
	}
	all := make([]int32, n)
	if l.archs(&all[0]) != 0 {
		return 0, false
	}
	best := 0
	for _, a := range all {
		if int(a) < cc {
			best = max(best, int(a))
		}
	}
	return best, best > 0
}

// NVRTCVersion names the NVRTC library found ("" and the reason if none).
func NVRTCVersion() (string, error) {
	l, err := loadNVRTC()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("NVRTC %d.%d (%s)", l.major, l.minor, l.name), nil
}

// Compile compiles CUDA C source for an architecture: PTX for a virtual
// one ("compute_90"), which the driver compiles when it loads it, or
// machine code (CUBIN, an ELF image) for a real one ("sm_90"), which needs
// no compiler in the driver and so loads on a driver older than NVRTC.
// Floating-point contraction is off (--fmad=false), so that a kernel's
// arithmetic is the one its source spells, as the CPU's.
func Compile(src, arch string) ([]byte, error) {
	l, err := loadNVRTC()
	if err != nil {
		return nil, err
	}
	var prog uintptr
	if r := l.create(&prog, src, "kernels.cu", 0, 0, 0); r != 0 {
		return nil, fmt.Errorf("cuda: nvrtcCreateProgram: %s", l.errString(r))
	}
	defer l.destroy(&prog)
	cubin := strings.HasPrefix(arch, "sm_")
	if cubin && l.cubin == nil {
		return nil, fmt.Errorf("cuda: %s makes no CUBIN (machine code for %s)", l.name, arch)
	}
	opts := []string{"--gpu-architecture=" + arch, "--fmad=false", "--std=c++17"}
	var pin runtime.Pinner
	defer pin.Unpin()
	cs := make([]*byte, len(opts))
	for i, o := range opts {
		b := append([]byte(o), 0)
		pin.Pin(&b[0])
		cs[i] = &b[0]
	}
	pin.Pin(&cs[0])
	r := l.compile(prog, int32(len(cs)), unsafe.Pointer(&cs[0]))
	if r != 0 {
		var n uintptr
		l.logSize(prog, &n)
		msg := ""
		if n > 1 {
			buf := make([]byte, n)
			l.log(prog, &buf[0])
			msg = strings.TrimRight(string(buf[:n-1]), "\n")
		}
		return nil, fmt.Errorf("cuda: compiling kernels for %s: %s: %s", arch, l.errString(r), msg)
	}
	var n uintptr
	if cubin {
		if r := l.cubinSize(prog, &n); r != 0 || n == 0 {
			return nil, fmt.Errorf("cuda: nvrtcGetCUBINSize: %s", l.errString(r))
		}
		bin := make([]byte, n)
		if r := l.cubin(prog, &bin[0]); r != 0 {
			return nil, fmt.Errorf("cuda: nvrtcGetCUBIN: %s", l.errString(r))
		}
		return bin, nil
	}
	if r := l.ptxSize(prog, &n); r != 0 || n == 0 {
		return nil, fmt.Errorf("cuda: nvrtcGetPTXSize: %s", l.errString(r))
	}
	ptx := make([]byte, n)
	if r := l.ptx(prog, &ptx[0]); r != 0 {
		return nil, fmt.Errorf("cuda: nvrtcGetPTX: %s", l.errString(r))
	}
	return ptx, nil
}
