package cuda

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// CudnnEnv names the variable that chooses how a GPU runs the 3×3
// convolutions: "on" (cuDNN where it is found, each geometry's algorithms
// the fastest deterministic ones cuDNN's Find measures, kept per GPU in the
// user's cache folder), "heuristics" (cuDNN with the algorithms its
// heuristics guess, nothing measured or kept), "graph" (each direction on
// the engine of cuDNN 9's graph API that its heuristics rank first among
// the allowed ones, on our channel-major tensors where it has an engine
// for them — NCSN_CUDNN_GRAPH_LAYOUT=nchw: on NCHW copies only — else the
// heuristics' legacy algorithm; GraphTuneEnv: the fastest of the first
// few, timed), "off" (im2col and cuBLAS products, never
// cuDNN). Unset: "on", and "graph" with TF32 (NCSN_TF32=1) where cuDNN 9
// is found.
const CudnnEnv = "NCSN_CUDNN"

// EmulateEnv names the variable that, set to 1, makes Pick and DeviceCount
// see one device that is the CPU emulation of the kernels (OpenEmulator:
// g++ needed, and slow) in place of the GPUs: for end-to-end checks of the
// device path, under mpirun too, on machines without a GPU. Set to
// "driver", they see the fake GPUs instead (OpenFakeGPU: the same, run
// through the driver code of a real GPU; g++ and NVRTC needed;
// NCSN_FAKE_GPUS of them, default 1).
const EmulateEnv = "NCSN_CUDA_EMULATE"

// ErrNotBuilt is wrapped when a GPU is asked of a build without -tags gpu.
var ErrNotBuilt = errors.New("built without GPU support")

// ErrUnknownDevice is wrapped for a -device that is neither cpu nor cuda.
var ErrUnknownDevice = errors.New("unknown device")

// Pick opens the device a command's -device flag names: nil for the CPU.
// "cpu" is the CPU; "cuda" is the first GPU and "cuda:N" GPU N (0, 1, … in
// the driver's order), an error where the build lacks -tags gpu or no such
// GPU is found; "" takes the first GPU when the build has the tag and one
// is found, and otherwise stays on the CPU, saying why on log (silently in
// a build without the tag). On a GPU it writes the device's description to
// log, and the device's later notes go there too.
//
// The build tag is gpu, not cuda: -tags cuda switches on Gorgonia's own
// CUDA code (cgo against cuda.h and cuDNN), which this project does not use.
func Pick(name string, log io.Writer) (*Device, error) {
	if name == "cpu" {
		return nil, nil
	}
	index, err := ParseDevice(name)
	if err != nil {
		return nil, err
	}
	if !Built {
		if name != "" {
			return nil, fmt.Errorf("-device %s: %w; build with -tags gpu (go run -tags gpu ./cmd/...)", name, ErrNotBuilt)
		}
		return nil, nil
	}
	if err := checkSettings(); err != nil {
		return nil, err
	}
	var dev *Device
	switch os.Getenv(EmulateEnv) {
	case "1":
		if index != 0 {
			err = fmt.Errorf("%w: no GPU %d: %s=1 has one device, the CPU emulation", ErrNoDevice, index, EmulateEnv)
		} else {
			dev, err = OpenEmulator()
		}
	case "driver":
		dev, err = OpenFakeGPU(index)
	default:
		dev, err = OpenIndex(index)
	}
	if err != nil {
		if name != "" {
			return nil, fmt.Errorf("-device %s: %w", name, err)
		}
		if !errors.Is(err, ErrNoLibrary) && !errors.Is(err, ErrNoDevice) {
			// A GPU that is there but did not open, or a setting's typo
			// (NCSN_CUDA_GRAPH=yes): the run went to the CPU, many times
			// slower, saying there was no GPU.
			return nil, fmt.Errorf("the GPU: %w (-device cpu runs on the CPU)", err)
		}
		fmt.Fprintf(log, "no GPU (%v): running on the CPU\n", err)
		return nil, nil
	}
	fmt.Fprintf(log, "device: %s\n", dev.Describe)
	dev.Log = log
	return dev, nil
}

// TF32Env names the variable that lets cuBLAS run the float32 matrix
// products on TF32 tensor cores (inputs rounded to a 10-bit mantissa, as
// PyTorch's convolutions do by default): NCSN_TF32=1.
const TF32Env = "NCSN_TF32"

// checkSettings refuses a value of NCSN_TF32 or NCSN_CUDA_EMULATE that
// would be taken as unset (NCSN_TF32=true ran in exact float32, silently).
func checkSettings() error {
	for _, s := range []struct {
		env  string
		want []string
	}{{TF32Env, []string{"", "0", "1"}}, {EmulateEnv, []string{"", "0", "1", "driver"}}} {
		if v := os.Getenv(s.env); !slices.Contains(s.want, v) {
			return fmt.Errorf("cuda: %s=%q: want %s, or unset", s.env, v, strings.Join(s.want[1:], ", "))
		}
	}
	return nil
}

// ParseDevice reads a -device that names a GPU: "", "cuda" (GPU 0) or
// "cuda:N" (GPU N); anything else, "cpu" included, wraps ErrUnknownDevice.
func ParseDevice(name string) (int, error) {
	switch name {
	case "", "cuda":
		return 0, nil
	}
	if n, ok := strings.CutPrefix(name, "cuda:"); ok {
		if i, err := strconv.Atoi(n); err == nil && i >= 0 && strconv.Itoa(i) == n {
			return i, nil
		}
	}
	return 0, fmt.Errorf("-device %q: %w (cpu, cuda, or cuda:N for GPU N)", name, ErrUnknownDevice)
}
