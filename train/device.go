package train

import (
	"fmt"
	"io"
	"math"

	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/nn"
	"github.com/ncsn-go/ncsn/optim"
	G "gorgonia.org/gorgonia"
)

// deviceObjective is a training graph run on a device — the score model's
// DSM graph or the noise-conditional classifier's: the same graph and
// gorgonia.Grad gradients as on the CPU, its operators run by
// nn.DeviceRun. The weights, their gradients, Adam's moments and the EMA
// stay in device memory for the whole run; each step sends up the noised
// batch (and the classifier's labels) and brings back each image's loss and
// the gradients' Σ(gradient²) (for the norm that clipping and the
// finiteness check need). Adam with the EMA is one launch over all the
// tensors, and so is the sum of squares (cuda.ParamSet). sync brings the
// state back for checkpoints.
type deviceObjective struct {
	g          deviceGraph
	net        *model.ScoreNet
	gradNodes  []*G.Node
	loss       *G.Node
	dr         *nn.DeviceRun
	dev        *cuda.Device
	host       [][]float32 // gradients on the host: the data-parallel all-reduce's (pullGrads, pushGrads)
	per        []float32
	w, gr      []cuda.Buffer // the trainable weights and their gradients (the graph's buffers)
	m, v, ema  []cuda.Buffer
	set        *cuda.ParamSet // all of them at once, for the norm and the update
	trainables []int          // the trainer's parameter index of each trainable weight
}

// deviceGraph is a training graph that deviceObjective runs: dsmGraph or
// classifierGraph.
type deviceGraph interface {
	// parts are the network, the gradients of its trainable weights (in
	// order) and the loss node, whose per-image values the device keeps.
	parts() (net *model.ScoreNet, grads []*G.Node, loss *G.Node)
	// feed fills the graph's inputs for a batch, as run does, and returns
	// the input nodes to upload.
	feed(x, z []float32, labels []int, means, sigmas []float64) ([]*G.Node, error)
	close()
}

// newDSMObjective is the score model's DSM graph on dev (newDeviceObjective).
func newDSMObjective(dev *cuda.Device, cfg model.Config, params, ema model.Params, m, v [][]float32, batch int) (*deviceObjective, error) {
	g, err := newDSMGraph(cfg, params, batch)
	if err != nil {
		return nil, err
	}
	return newDeviceObjective(dev, g, params, ema, m, v)
}

// newClassifierObjective is the classifier's training graph on dev
// (newDeviceObjective).
func newClassifierObjective(dev *cuda.Device, cfg model.Config, params, ema model.Params, m, v [][]float32, batch int) (*deviceObjective, error) {
	g, err := newClassifierGraph(cfg, params, batch)
	if err != nil {
		return nil, err
	}
	return newDeviceObjective(dev, g, params, ema, m, v)
}

// newDeviceObjective plans the graph g on dev and uploads the run's state:
// the weights (params), their moving average and Adam's moments (in params
// order, fixed parameters included, as optim keeps them). It owns g, closed
// with it (or at once, on an error).
func newDeviceObjective(dev *cuda.Device, g deviceGraph, params, ema model.Params, m, v [][]float32) (d *deviceObjective, err error) {
	// Every method takes the device's turn (cuda.Device.Hold): another
	// user of the device in this process — a library caller's scorer —
	// would otherwise call it from its own thread while a Batch runs, and
	// share the kernels' parameter memory.
	defer dev.Hold()()
	net, gradNodes, loss := g.parts()
	run, err := nn.NewDeviceRun(dev, net.Graph)
	if err != nil {
		g.close()
		return nil, err
	}
	d = &deviceObjective{g: g, net: net, gradNodes: gradNodes, loss: loss, dr: run, dev: dev, per: make([]float32, net.Batch)}
	made := d // the returns below set d to nil with their error
	defer func() {
		if err != nil {
			made.closeHeld()
		}
	}()
	for i, p := range params {
		if !p.Fixed {
			d.trainables = append(d.trainables, i)
		}
	}
	if len(d.trainables) != len(gradNodes) {
		return nil, fmt.Errorf("train: %d trainable parameters, %d gradients", len(d.trainables), len(gradNodes))
	}
	if err := run.Upload(net.Weights...); err != nil {
		return nil, err
	}
	for k, i := range d.trainables {
		wb, _ := run.Buffer(net.Weights[k])
		gb, _ := run.Buffer(gradNodes[k])
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
	return d, nil
}

func (d *deviceObjective) run(x, z []float32, labels []int, means, sigmas []float64) (float64, []float64, error) {
	defer d.dev.Hold()()
	inputs, err := d.g.feed(x, z, labels, means, sigmas)
	if err != nil {
		return 0, nil, err
	}
	err = d.dev.Batch(func() error {
		if err := d.dr.Upload(inputs...); err != nil {
			return err
		}
		if err := d.dr.Run(); err != nil {
			return fmt.Errorf("train: running the training graph on the device: %w", err)
		}
		return d.dr.PerImage(d.loss, d.per)
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

// grads downloads the gradients of the last run, NaN where a download
// fails (the objective interface's; the trainer itself uses pullGrads and
// pushGrads around the all-reduce, and norm and update).
func (d *deviceObjective) grads() [][]float32 {
	if err := d.pullGrads(); err != nil {
		for _, h := range d.host {
			for i := range h {
				h[i] = float32(math.NaN()) // a failed download is not a gradient
			}
		}
	}
	return d.host
}

// pullGrads downloads the gradients of the last run into d.host, where the
// data-parallel all-reduce averages them over the ranks; pushGrads sends
// the average back for norm and update.
func (d *deviceObjective) pullGrads() error {
	defer d.dev.Hold()()
	return d.dev.Batch(func() error {
		for k, n := range d.gradNodes {
			if err := d.dr.Download(n, d.host[k]); err != nil {
				return err
			}
		}
		return nil
	})
}

func (d *deviceObjective) pushGrads() error {
	defer d.dev.Hold()()
	return d.dev.Batch(func() error {
		for k, b := range d.gr {
			if err := d.dev.Upload(b, d.host[k]); err != nil {
				return err
			}
		}
		return nil
	})
}

// norm is the Euclidean norm of all the gradients of the last run.
func (d *deviceObjective) norm() (float64, error) {
	defer d.dev.Hold()()
	var sq float64
	err := d.dev.Batch(func() (err error) {
		sq, err = d.dev.GradSumSquares(d.set)
		return err
	})
	if err != nil {
		return 0, err
	}
	return math.Sqrt(sq), nil
}

// update is one Adam step of opt's hyper-parameters at its step count
// (after Begin) on every trainable weight, the gradients times scale, then
// the EMA with decay dec — on the device, as optim computes them.
func (d *deviceObjective) update(opt *optim.Adam, scale float64, dec float32) error {
	defer d.dev.Hold()()
	s := cuda.AdamStep{T: opt.T, LR: opt.LR, Beta1: opt.Beta1, Beta2: opt.Beta2, Eps: opt.Eps, Scale: scale}
	return d.dev.Batch(func() error { return d.dev.AdamEMA(d.set, s, dec) })
}

// sync copies the weights, their average and Adam's moments from the
// device into the trainer's state (before a checkpoint is written).
func (d *deviceObjective) sync(params, ema model.Params, m, v [][]float32) error {
	defer d.dev.Hold()()
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

func (d *deviceObjective) close() {
	defer d.dev.Hold()()
	d.closeHeld()
}

// closeHeld is close for a caller holding the device's turn.
func (d *deviceObjective) closeHeld() {
	for _, bs := range [][]cuda.Buffer{d.m, d.v, d.ema} {
		for _, b := range bs {
			d.dev.Free(b)
		}
	}
	d.dev.FreeParamSet(d.set)
	d.dr.Close()
	d.g.close()
}

// openDevice opens the device of Config.Device (a variable: tests put the
// CPU emulation of the kernels here).
var openDevice = func(name string, log io.Writer) (*cuda.Device, error) { return cuda.Pick(name, log) }
