package train

import (
	"fmt"
	"io"

	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/nn"
)

// deviceDSM is the DSM training graph run on a device: the same graph and
// gorgonia.Grad gradients as dsmGraph, its operators run by nn.DeviceRun.
// In this first version the weights go up and the gradients come back
// every step (the default MNIST network: 0.9 MB each way); Adam and the
// EMA stay with the trainer on the CPU.
type deviceDSM struct {
	g    *dsmGraph
	dr   *nn.DeviceRun
	host [][]float32
	per  []float32
}

func newDeviceDSM(dev *cuda.Device, cfg model.Config, params model.Params, batch int) (*deviceDSM, error) {
	g, err := newDSMGraph(cfg, params, batch)
	if err != nil {
		return nil, err
	}
	run, err := nn.NewDeviceRun(dev, g.net.Graph)
	if err != nil {
		g.close()
		return nil, err
	}
	d := &deviceDSM{g: g, dr: run, per: make([]float32, batch)}
	for _, n := range g.gradNodes {
		d.host = append(d.host, make([]float32, n.Shape().TotalSize()))
	}
	return d, nil
}

func (d *deviceDSM) step(x, z []float32, means, sigmas []float64) (float64, []float64, error) {
	if err := d.g.prepare(x, z, means, sigmas); err != nil {
		return 0, nil, err
	}
	net := d.g.net
	if err := d.dr.Upload(net.X, net.Emb, net.InvSigma, d.g.sigma, d.g.z); err != nil {
		return 0, nil, err
	}
	if err := d.dr.Upload(net.Weights...); err != nil {
		return 0, nil, err
	}
	if err := d.dr.Run(); err != nil {
		return 0, nil, fmt.Errorf("train: running the training graph on the device: %w", err)
	}
	if err := d.dr.PerImage(d.g.loss, d.per); err != nil {
		return 0, nil, err
	}
	for i, n := range d.g.gradNodes {
		if err := d.dr.Download(n, d.host[i]); err != nil {
			return 0, nil, err
		}
	}
	per := make([]float64, len(d.per))
	var mean float64
	for i, v := range d.per {
		per[i] = float64(v)
		mean += per[i]
	}
	return mean / float64(len(per)), per, nil
}

func (d *deviceDSM) run(x, z []float32, _ []int, means, sigmas []float64) (float64, []float64, error) {
	return d.step(x, z, means, sigmas)
}

func (d *deviceDSM) grads() [][]float32 { return d.host }

func (d *deviceDSM) close() {
	d.dr.Close()
	d.g.close()
}

// openDevice opens the device of Config.Device (a variable: tests put the
// CPU emulation of the kernels here).
var openDevice = func(name string, log io.Writer) (*cuda.Device, error) { return cuda.Pick(name, log) }

// deviceArith names the arithmetic path of a run on a device.
const deviceArith = "cuda+cublas"
