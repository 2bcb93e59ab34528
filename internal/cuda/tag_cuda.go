//go:build cuda

package cuda

// This project's GPU build tag is gpu (README, "GPU"): -tags cuda switches
// on Gorgonia's own cgo CUDA code, which needs cuda.h and cuDNN at build
// time and is not what this project runs on. So that a build with -tags
// cuda says so beside the C compiler's errors, this file does not compile.
var _ = build_with_tags_gpu_not_cuda__see_README_GPU
