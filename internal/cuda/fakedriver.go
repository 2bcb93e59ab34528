//go:build linux

package cuda

import (
	_ "embed"
	"fmt"
	"os"
	"sync"

	"github.com/ebitengine/purego"
)

// The fake GPU, for tests: fakecuda.h (a CUDA driver, cuBLAS, and cuDNN's
// legacy convolutions and graph API, made of the calls package cuda uses,
// with cuda.h's, cublas_api.h's, cudnn_cnn.h's and cudnn_graph.h's
// prototypes and numbers) compiled with the CPU emulation of kernels.cu
// into one library, which the device's code (driver.go, graph_driver.go,
// cudnn.go, cudnn_graph.go) then loads in place of libcuda, libcublas and
// libcudnn. The emulator backend (emu.go) tests the kernels and ops.go;
// this tests the host code between them and a GPU, which otherwise runs
// only on one: the symbols and their argument order, the per-thread
// context, the pinned parameter block, column-major cuBLAS, stream
// capture's rules, cuDNN's descriptors and plans, Close's releases. The
// kernels still go through the real NVRTC (Compile), and the driver
// refuses an image that does not hold the kernel launched.

//go:embed fakecuda.h
var fakeSource string

// fakeAlgoDir, where a test sets it, is the folder of the fake GPUs' kept
// cuDNN choices (else each device has its own, gone when it closes).
var fakeAlgoDir string

var (
	fakeOnce sync.Once
	fakeLibs *libs
	fakeErr  error
	// The library's fake_report, fake_state, fake_set_devices, fake_set_cc,
	// fake_fail_allocs_after, fake_dnn_descriptors, fake_fail_graph_runs,
	// fake_short_heuristics_count and fake_graph_packed_only.
	fakeReport         func() string
	fakeState          func() string
	fakeSetDevices     func(n int32) int32
	fakeSetCC          func(cc int32)
	fakeFailAllocs     func(n int64)
	fakeDnnDescriptors func() int64
	fakeFailGraphRuns  func(n int64)
	fakeShortHeurCount func(n int64)
	fakePackedOnly     func(mask int64)
)

// loadFakeDriver builds the fake driver (once per process: g++, some
// seconds) and loads it.
func loadFakeDriver() (*libs, error) {
	fakeOnce.Do(func() {
		if _, err := NVRTCVersion(); err != nil {
			fakeErr = fmt.Errorf("the fake GPU compiles its kernels with NVRTC: %w", err)
			return
		}
		emu, err := emuSource("kernels.cu", Source)
		if err != nil {
			fakeErr = err
			return
		}
		h, err := buildLibrary(emu+"\n#line 1 \"fakecuda.h\"\n"+fakeSource, "the fake GPU")
		if err != nil {
			fakeErr = err
			return
		}
		purego.RegisterLibFunc(&fakeReport, h, "fake_report")
		purego.RegisterLibFunc(&fakeState, h, "fake_state")
		purego.RegisterLibFunc(&fakeSetDevices, h, "fake_set_devices")
		purego.RegisterLibFunc(&fakeSetCC, h, "fake_set_cc")
		purego.RegisterLibFunc(&fakeFailAllocs, h, "fake_fail_allocs_after")
		purego.RegisterLibFunc(&fakeDnnDescriptors, h, "fake_dnn_descriptors")
		purego.RegisterLibFunc(&fakeFailGraphRuns, h, "fake_fail_graph_runs")
		purego.RegisterLibFunc(&fakeShortHeurCount, h, "fake_short_heuristics_count")
		purego.RegisterLibFunc(&fakePackedOnly, h, "fake_graph_packed_only")
		fakeLibs = &libs{h: h, name: "fake libcuda, libcublas and libcudnn (fakecuda.h)",
			algoDir: func() (string, bool, error) {
				if fakeAlgoDir != "" {
					return fakeAlgoDir, false, nil
				}
				dir, err := os.MkdirTemp("", "ncsn-fakegpu-cudnn")
				return dir, true, err
			}}
	})
	return fakeLibs, fakeErr
}

// OpenFakeGPU opens GPU index of the fake driver (fakecuda.h on the CPU
// emulation; NCSN_FAKE_GPUS, read when it is first built, sets how many
// there are) through the same code as a real GPU. It needs g++ and NVRTC.
func OpenFakeGPU(index int) (*Device, error) {
	f, err := loadFakeDriver()
	if err != nil {
		return nil, err
	}
	d, err := openIndex(index, f)
	if err == nil {
		d.ReduceThreads = 32 // as the emulator: each thread of a block is a fiber
	}
	return d, err
}

// FakeGPUReport says what the fake GPU's last context to be released
// still held then ("allocations=0 host=0 modules=0 streams=0 graphs=0
// execs=0 handles=0"), or why there is no fake GPU.
func FakeGPUReport() string {
	if _, err := loadFakeDriver(); err != nil {
		return err.Error()
	}
	return fakeReport()
}

// SetFakeGPUs makes the number of fake GPUs n (NCSN_FAKE_GPUS's default
// 1), for tests; an error while one of them is open.
func SetFakeGPUs(n int) error {
	if _, err := loadFakeDriver(); err != nil {
		return err
	}
	if fakeSetDevices(int32(n)) != 0 {
		return fmt.Errorf("cuda: %d fake GPUs: out of 0–16, or a fake GPU is open", n)
	}
	return nil
}

// fakeDeviceCount is the number of fake GPUs, as the driver code sees it.
func fakeDeviceCount() (int, error) {
	f, err := loadFakeDriver()
	if err != nil {
		return 0, err
	}
	return deviceCount(f)
}

// FailFakeGPUAllocsAfter makes every call of the fake GPUs that takes
// memory (allocations, contexts, modules, streams, graphs, cuBLAS and
// cuDNN handles) after the next n fail as out of memory (n < 0: none
// fails), for tests of the paths that meet a full GPU.
func FailFakeGPUAllocsAfter(n int) error {
	if _, err := loadFakeDriver(); err != nil {
		return err
	}
	fakeFailAllocs(int64(n))
	return nil
}

// FakeGPUState says what every fake GPU holds now ("GPU 0: refs=0
// allocations=0 …"), or why there is no fake GPU.
func FakeGPUState() string {
	if _, err := loadFakeDriver(); err != nil {
		return err.Error()
	}
	return fakeState()
}
