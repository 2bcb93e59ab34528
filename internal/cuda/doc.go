// Package cuda reaches NVIDIA GPUs without cgo: the CUDA driver API
// (libcuda.so.1) and NVRTC (libnvrtc) are loaded at run time with purego,
// the kernels (kernels.cu, CUDA C kept in the repository) are compiled to
// PTX by NVRTC once per process, and launched through the driver.
//
// Every kernel has a Go reference and a test against it. The tests run each
// kernel on every backend the machine has: the GPU where a driver and a
// device are found, and everywhere g++ is installed a CPU emulation that
// compiles kernels.cu as C++ with a small header (emu.h) and runs
// each block's threads as OS threads meeting at __syncthreads. A third test
// compiles kernels.cu with NVRTC wherever libnvrtc loads (Debian's
// libnvrtc11.2 needs no GPU).
//
// This package is the first part of the CUDA build tag (issue 18): bindings,
// the random numbers, the optimiser and sampler updates and GroupNorm+SiLU.
// The network's graph does not run on it yet.
package cuda
