package train

import (
	"fmt"
	"io"
	"math"

	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/nn"
	"github.com/ncsn-go/ncsn/optim"
)

// deviceDSM is the DSM training graph run on a device: the same graph and
// gorgonia.Grad gradients as dsmGraph, its operators run by nn.DeviceRun.
// The weights, their gradients, Adam's moments and the EMA stay in device
// memory for the whole run; each step sends up the noised batch and brings
// back each image's loss and the gradients' Σ(gradient²) (for the norm that
// clipping and the finiteness check need). Adam with the EMA is one launch
// over all the tensors, and so is the sum of squares (cuda.ParamSet). sync
// brings the state back for checkpoints.
type deviceDSM struct {
	g          *dsmGraph
	dr         *nn.DeviceRun
	dev        *cuda.Device
	host       [][]float32 // gradients, downloaded only when asked (grads)
	per        []float32
	w, gr      []cuda.Buffer // the trainable weights and their gradients (the graph's buffers)
	m, v, ema  []cuda.Buffer
	set        *cuda.ParamSet // all of them at once, for the norm and the update
	sq         cuda.Buffer    // Σ(gradient²) over all the gradients
	sqHost     []float32
	trainables []int // the trainer's parameter index of each trainable weight
}

// newDeviceDSM builds the graph on dev and uploads the run's state: the
// weights (params), their moving average and Adam's moments (in params
// order, fixed parameters included, as optim keeps them).
func newDeviceDSM(dev *cuda.Device, cfg model.Config, params, ema model.Params, m, v [][]float32, batch int) (d *deviceDSM, err error) {
	g, err := newDSMGraph(cfg, params, batch)
	if err != nil {
		return nil, err
	}
	run, err := nn.NewDeviceRun(dev, g.net.Graph)
	if err != nil {
		g.close()
		return nil, err
	}
	d = &deviceDSM{g: g, dr: run, dev: dev, per: make([]float32, batch)}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	for i, p := range params {
		if !p.Fixed {
			d.trainables = append(d.trainables, i)
		}
	}
	if len(d.trainables) != len(g.gradNodes) {
		return nil, fmt.Errorf("train: %d trainable parameters, %d gradients", len(d.trainables), len(g.gradNodes))
	}
	if err := run.Upload(g.net.Weights...); err != nil {
		return nil, err
	}
	for k, i := range d.trainables {
		wb, _ := run.Buffer(g.net.Weights[k])
		gb, _ := run.Buffer(g.gradNodes[k])
		d.w, d.gr = append(d.w, wb), append(d.gr, gb)
		d.host = append(d.host, make([]float32, len(params[i].Data)))
		for _, pair := range []struct {
			dst  *[]cuda.Buffer
			data []float32
		}{{&d.m, m[i]}, {&d.v, v[i]}, {&d.ema, ema[i].Data}} {
			b, err := dev.Alloc(len(pair.data))
			if err != nil {
				return nil, err
			}
			*pair.dst = append(*pair.dst, b)
			if err := dev.Upload(b, pair.data); err != nil {
				return nil, err
			}
		}
	}
	if d.set, err = dev.NewParamSet(d.w, d.gr, d.m, d.v, d.ema); err != nil {
		return nil, err
	}
	if d.sq, err = dev.Alloc(1); err != nil {
		return nil, err
	}
	d.sqHost = make([]float32, 1)
	return d, nil
}

func (d *deviceDSM) step(x, z []float32, means, sigmas []float64) (float64, []float64, error) {
	if err := d.g.prepare(x, z, means, sigmas); err != nil {
		return 0, nil, err
	}
	net := d.g.net
	err := d.dev.Batch(func() error {
		if err := d.dr.Upload(append(net.Inputs(), d.g.sigma, d.g.z)...); err != nil {
			return err
		}
		if err := d.dr.Run(); err != nil {
			return fmt.Errorf("train: running the training graph on the device: %w", err)
		}
		return d.dr.PerImage(d.g.loss, d.per)
	})
	if err != nil {
		return 0, nil, err
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

// grads downloads the gradients of the last run (the trainer does not
// need them: it uses norm and update; the data-parallel all-reduce would).
func (d *deviceDSM) grads() [][]float32 {
	for k, n := range d.g.gradNodes {
		if err := d.dr.Download(n, d.host[k]); err != nil {
			for i := range d.host[k] {
				d.host[k][i] = float32(math.NaN()) // a failed download is not a gradient
			}
		}
	}
	return d.host
}

// norm is the Euclidean norm of all the gradients of the last run.
func (d *deviceDSM) norm() (float64, error) {
	err := d.dev.Batch(func() error {
		if err := d.dev.GradSumSquares(d.sq, d.set); err != nil {
			return err
		}
		return d.dev.Download(d.sqHost, d.sq)
	})
	if err != nil {
		return 0, err
	}
	return math.Sqrt(float64(d.sqHost[0])), nil
}

// update is one Adam step of opt's hyper-parameters at its step count
// (after Begin) on every trainable weight, the gradients times scale, then
// the EMA with decay dec — on the device, as optim computes them.
func (d *deviceDSM) update(opt *optim.Adam, scale float64, dec float32) error {
	s := cuda.AdamStep{T: opt.T, LR: opt.LR, Beta1: opt.Beta1, Beta2: opt.Beta2, Eps: opt.Eps, Scale: scale}
	return d.dev.Batch(func() error { return d.dev.AdamEMA(d.set, s, dec) })
}

// sync copies the weights, their average and Adam's moments from the
// device into the trainer's state (before a checkpoint is written).
func (d *deviceDSM) sync(params, ema model.Params, m, v [][]float32) error {
	for k, i := range d.trainables {
		for _, pair := range []struct {
			dst []float32
			src cuda.Buffer
		}{{params[i].Data, d.w[k]}, {ema[i].Data, d.ema[k]}, {m[i], d.m[k]}, {v[i], d.v[k]}} {
			if err := d.dev.Download(pair.dst, pair.src); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *deviceDSM) close() {
	for _, bs := range [][]cuda.Buffer{d.m, d.v, d.ema} {
		for _, b := range bs {
			d.dev.Free(b)
		}
	}
	d.dev.Free(d.sq)
	d.dev.FreeParamSet(d.set)
	d.dr.Close()
	d.g.close()
}

// openDevice opens the device of Config.Device (a variable: tests put the
// CPU emulation of the kernels here).
var openDevice = func(name string, log io.Writer) (*cuda.Device, error) { return cuda.Pick(name, log) }

// deviceArith names the arithmetic path of a run on a device.
const deviceArith = "cuda+cublas"
