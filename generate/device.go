package generate

import (
	"fmt"
	"io"

	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/sample"
)

// Devices are the names Config.Device takes ("" picks).
var Devices = []string{"cpu", "cuda"}

// pickDevice opens the device a run asked for: nil for the CPU. "" takes
// the GPU when the build has the gpu tag and one is found, and otherwise
// says why on log and stays on the CPU; "cuda" fails when there is none.
//
// The build tag is gpu, not cuda: -tags cuda switches on Gorgonia's own
// CUDA code (cgo against cuda.h and cuDNN), which this project does not use.
func pickDevice(name string, log io.Writer) (*cuda.Device, error) {
	switch name {
	case "cpu":
		return nil, nil
	case "", "cuda":
		if !cudaBuilt {
			if name == "cuda" {
				return nil, fmt.Errorf("%w: -device cuda: this program was built without GPU support; build it with -tags gpu (go run -tags gpu ./cmd/sample ...)", ErrConfig)
			}
			return nil, nil
		}
		dev, err := openGPU()
		if err != nil {
			if name == "cuda" {
				return nil, fmt.Errorf("generate: -device cuda: %w", err)
			}
			fmt.Fprintf(log, "no GPU (%v): running on the CPU\n", err)
			return nil, nil
		}
		fmt.Fprintf(log, "device: %s\n", dev.Describe)
		return dev, nil
	}
	return nil, fmt.Errorf("%w: unknown -device %q (cpu or cuda)", ErrConfig, name)
}

// scorer is the score network over weights on the device (nil: the CPU).
type scorer interface {
	sample.Score
	Close() error
}

func newScorer(dev *cuda.Device, cfg model.Config, weights model.Params, batch int) (scorer, error) {
	if dev == nil {
		return model.NewScorer(cfg, weights, batch)
	}
	return model.NewDeviceScorer(dev, cfg, weights, batch)
}
