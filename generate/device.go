package generate

import (
	"errors"
	"fmt"
	"io"

	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/sample"
)

// pickDevice opens the device of -device (cuda.Pick): nil for the CPU.
func pickDevice(name string, log io.Writer) (*cuda.Device, error) {
	dev, err := cuda.Pick(name, log)
	if errors.Is(err, cuda.ErrNotBuilt) || errors.Is(err, cuda.ErrUnknownDevice) {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	return dev, nil
}

// OpenDevice opens the device of -device as Draw would (nil for the CPU),
// for a caller that wants a missing GPU found before its own slow work;
// it goes to Config.Opened, and the caller closes it.
func OpenDevice(name string, log io.Writer) (*cuda.Device, error) { return openDevice(name, log) }

// openDevice opens the device of a run (a variable: tests put the CPU
// emulation of the kernels here).
var openDevice = pickDevice

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
