// Package cuda reaches NVIDIA GPUs without cgo: the CUDA driver API
// (libcuda.so.1), NVRTC (libnvrtc), cuBLAS and, where installed, cuDNN
// are loaded at run time with purego (by name, then in the usual CUDA
// folders or NCSN_CUDA_LIBS); the kernels (kernels.cu, CUDA C kept in the
// repository) are compiled by NVRTC into machine code for the GPU (CUBIN,
// else PTX) once (cached per architecture under the user's cache folder)
// and launched through the driver, on one goroutine locked to its OS thread (Batch runs a whole
// graph there).
//
// Device holds buffers of float32 in device memory and runs the network's
// operators on them (ops.go): 3×3 convolutions on cuDNN — in exact float32
// on its legacy API (cudnn.go, on NCHW copies of the channel-major tensors,
// with the algorithms cuDNN's Find measures fastest, kept per GPU in the
// user's cache folder: algocache.go), in TF32 on its graph API
// (cudnn_graph.go, on our channel-major tensors as they are, else on the
// copies; NCSN_CUDNN_GRAPH_TUNE times several configurations and keeps the
// fastest in the same cache) — or, without cuDNN, as im2col and a cuBLAS
// product, 1×1 convolutions and linear layers as products, GroupNorm+SiLU,
// the σ bias, upsampling, concatenation, the DSM loss, with their
// gradients; Adam, the EMA, Langevin steps and Philox normal numbers. A
// step's launches can be captured once as a CUDA graph and replayed
// (graph.go).
//
// Every kernel is tested against a float64 reference on every backend the
// machine has: the GPU where a driver and a device are found, and wherever
// g++ is installed a CPU emulation (OpenEmulator) that compiles kernels.cu
// as C++ with a small header (emu.h) and runs each block's threads in
// turn, as fibers switched at __syncthreads where a kernel has barriers, in
// a shuffled order (EmuOrderEnv), checking much of what compute-sanitizer
// would: every thread at the same barrier, shared memory read before it is
// written (NaN-filled per block), writes out of a shared array's or an
// allocation's bounds (margins); and built under ThreadSanitizer, any two
// conflicting accesses of one phase (TestKernelsUnderThreadSanitizer).
// Another test
// compiles kernels.cu with NVRTC wherever libnvrtc loads (Debian's
// libnvrtc11.2 needs no GPU). The driver, cuBLAS and cuDNN calls run on
// the fake GPU too (OpenFakeGPU, fakedriver.go): fakecuda.h, their
// functions as cuda.h, cublas_api.h, cudnn_cnn.h and cudnn_graph.h declare
// them (stream capture and graphs included), built
// with the emulation into one library that the driver code loads in their
// place, refusing what a driver would (a call off the context's thread,
// memory outside an allocation, what a stream capture forbids). Backends
// lists what a machine has, for the tests of the packages that run graphs
// on a device.
//
// Commands use it when built with -tags gpu (package generate); -tags cuda
// would switch on Gorgonia's own cgo CUDA code instead, and a build with it
// fails here with an error that names the tag to use (tag_cuda.go).
package cuda
