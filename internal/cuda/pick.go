package cuda

import (
	"errors"
	"fmt"
	"io"
)

// CudnnEnv names the variable that chooses how a GPU runs the 3×3
// convolutions: "" or "on" (cuDNN where it is found, each geometry's
// algorithms the fastest deterministic ones cuDNN's Find measures, kept per
// GPU in the user's cache folder), "heuristics" (cuDNN with the algorithms
// its heuristics guess, nothing measured or kept), "graph" (opt-in, not yet
// run on a GPU: each direction on the engine of cuDNN's graph API that its
// heuristics rank first among the allowed ones, else the heuristics' legacy
// algorithm), "off" (im2col and cuBLAS products, never cuDNN).
const CudnnEnv = "NCSN_CUDNN"

// ErrNotBuilt is wrapped when a GPU is asked of a build without -tags gpu.
var ErrNotBuilt = errors.New("built without GPU support")

// ErrUnknownDevice is wrapped for a -device that is neither cpu nor cuda.
var ErrUnknownDevice = errors.New("unknown device")

// Pick opens the device a command's -device flag names: nil for the CPU.
// "cpu" is the CPU; "cuda" is the GPU, an error where the build lacks
// -tags gpu or no GPU is found; "" takes the GPU when the build has the tag
// and one is found, and otherwise stays on the CPU, saying why on log
// (silently in a build without the tag). On a GPU it writes the device's
// description to log, and the device's later notes go there too.
//
// The build tag is gpu, not cuda: -tags cuda switches on Gorgonia's own
// CUDA code (cgo against cuda.h and cuDNN), which this project does not use.
func Pick(name string, log io.Writer) (*Device, error) {
	switch name {
	case "cpu":
		return nil, nil
	case "", "cuda":
		if !Built {
			if name == "cuda" {
				return nil, fmt.Errorf("-device cuda: %w; build with -tags gpu (go run -tags gpu ./cmd/...)", ErrNotBuilt)
			}
			return nil, nil
		}
		dev, err := Open()
		if err != nil {
			if name == "cuda" {
				return nil, fmt.Errorf("-device cuda: %w", err)
			}
			fmt.Fprintf(log, "no GPU (%v): running on the CPU\n", err)
			return nil, nil
		}
		fmt.Fprintf(log, "device: %s\n", dev.Describe)
		dev.Log = log
		return dev, nil
	}
	return nil, fmt.Errorf("%w %q (cpu or cuda)", ErrUnknownDevice, name)
}
