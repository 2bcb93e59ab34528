//go:build !gpu

package generate

import (
	"errors"

	"github.com/ncsn-go/ncsn/internal/cuda"
)

// cudaBuilt reports that this build can run the network on a GPU.
const cudaBuilt = false

func openGPU() (*cuda.Device, error) { return nil, errors.New("built without -tags gpu") }
