//go:build gpu

package generate

import "github.com/ncsn-go/ncsn/internal/cuda"

// cudaBuilt reports that this build can run the network on a GPU.
const cudaBuilt = true

func openGPU() (*cuda.Device, error) { return cuda.Open() }
