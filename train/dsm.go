package train

import (
	"fmt"
	"math"

	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/nn"
	"github.com/ncsn-go/ncsn/sde"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// DSMLoss is the denoising score-matching loss with λ(σ) = σ², for scores
// s = s_θ(x + σz, σ) of a batch: per image ½‖σ·s + z‖², and their mean. It is
// the reference the graph's loss is checked against. (An EDM-preconditioned
// network's loss is this times (σ/c_out)² per image.)
func DSMLoss(scores, z []float32, sigmas []float64) (mean float64, per []float64) {
	b := len(sigmas)
	d := len(z) / b
	per = make([]float64, b)
	for i := 0; i < b; i++ {
		var s float64
		for j := i * d; j < (i+1)*d; j++ {
			r := sigmas[i]*float64(scores[j]) + float64(z[j])
			s += r * r
		}
		per[i] = s / 2
		mean += per[i]
	}
	return mean / float64(b), per
}

// objective is a training graph: a loss of the network on noised images
// and its symbolic gradients with respect to every trainable weight.
type objective interface {
	// run evaluates the loss and gradients for clean images x (B·D, in
	// (B,C,H,W) order) of classes labels, noised as x̃ = m·x + σ·z: means
	// and sigmas (B) are each image's marginal m and σ, z (B·D) standard
	// normal noise. It returns the batch's mean loss and each image's.
	run(x, z []float32, labels []int, means, sigmas []float64) (float64, []float64, error)
	// grads are the gradients of the last run, in the order of the
	// trainable weights, in host memory (the data-parallel all-reduce
	// averages them in place).
	grads() [][]float32
	close()
}

// gradient returns the gradient of o's last run for trainable weight i.
func gradient(o objective, i int) []float32 { return o.grads()[i] }

// gradNorm is the Euclidean norm of all the gradients of o's last run.
func gradNorm(o objective) float64 {
	var s float64
	for _, g := range o.grads() {
		for _, v := range g {
			s += float64(v) * float64(v)
		}
	}
	return math.Sqrt(s)
}

// nodeValues are the float32 values of nodes.
func nodeValues(ns []*G.Node) [][]float32 {
	out := make([][]float32, len(ns))
	for i, n := range ns {
		out[i] = n.Value().Data().([]float32)
	}
	return out
}

// noised writes x̃ = m·x + σ·z image by image (d values each) into dst.
func noised(dst, x, z []float32, means, sigmas []float64, d int) {
	for i := range dst {
		k := i / d
		if means[k] == 1 { // the VE family, as written before the mean existed
			dst[i] = x[i] + float32(sigmas[k])*z[i]
		} else {
			dst[i] = float32(means[k])*x[i] + float32(sigmas[k])*z[i]
		}
	}
}

// dsmGraph is the score model's training graph: the score network on
// x̃ = m·x + σz, the DSM loss, and its gradients.
type dsmGraph struct {
	net       *model.ScoreNet
	sigma, z  *G.Node
	loss      *G.Node
	lossOp    *nn.ResidualLossOp
	gradNodes []*G.Node
	vm        G.VM
	input     []float32
}

func newDSMGraph(cfg model.Config, params model.Params, batch int) (*dsmGraph, error) {
	d, err := nn.BuildChecked(func() (*dsmGraph, *G.ExprGraph, error) {
		d, err := buildDSMGraph(cfg, params, batch)
		if err != nil {
			return nil, nil, err
		}
		return d, d.net.Graph, nil
	})
	if err != nil {
		return nil, fmt.Errorf("train: building the training graph: %w", err)
	}
	d.vm = G.NewTapeMachine(d.net.Graph)
	return d, nil
}

// buildDSMGraph is one try of newDSMGraph: the graph, not yet compiled.
func buildDSMGraph(cfg model.Config, params model.Params, batch int) (*dsmGraph, error) {
	net, err := model.Build(cfg, params, batch, tensor.Float32)
	if err != nil {
		return nil, err
	}
	g := net.Graph
	d := &dsmGraph{net: net, input: make([]float32, batch*cfg.Dim())}
	d.sigma = G.NewTensor(g, G.Float32, 1, G.WithShape(batch), G.WithName("sigma"),
		G.WithValue(tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(batch))))
	zs := net.X.Shape()
	d.z = G.NewTensor(g, G.Float32, 4, G.WithShape(zs...), G.WithName("z"),
		G.WithValue(tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(zs...))))
	if d.loss, d.lossOp, err = nn.ResidualLoss(net.Out, d.sigma, d.z); err != nil {
		return nil, err
	}
	if d.gradNodes, err = G.Grad(d.loss, net.Weights...); err != nil {
		return nil, fmt.Errorf("differentiating the loss: %w", err)
	}
	return d, nil
}

// run evaluates the DSM loss and gradients (labels are not used); the
// network is conditioned on σ.
func (d *dsmGraph) run(x, z []float32, _ []int, means, sigmas []float64) (float64, []float64, error) {
	if err := d.prepare(x, z, means, sigmas); err != nil {
		return 0, nil, err
	}
	d.vm.Reset()
	if err := d.vm.RunAll(); err != nil {
		return 0, nil, fmt.Errorf("train: running the training graph: %w", err)
	}
	per := append([]float64(nil), d.lossOp.PerImage...)
	return float64(d.loss.Value().Data().(float32)), per, nil
}

// prepare fills the graph's inputs: x̃, σ's features, σ and z.
func (d *dsmGraph) prepare(x, z []float32, means, sigmas []float64) error {
	cfg := d.net.Config
	b, hw := d.net.Batch, cfg.Height*cfg.Width
	noised(d.input, x, z, means, sigmas, cfg.Dim())
	if err := d.net.SetInput(d.input, sigmas); err != nil {
		return err
	}
	sv := d.sigma.Value().Data().([]float32)
	zv := d.z.Value().Data().([]float32)
	for i := 0; i < b; i++ {
		sv[i] = float32(sigmas[i])
		for c := 0; c < cfg.Channels; c++ {
			copy(zv[(c*b+i)*hw:][:hw], z[i*cfg.Dim()+c*hw:][:hw])
		}
		if cfg.Precond == model.PrecondEDM {
			// EDM's weighting: ½‖σs + z‖² times (σ/c_out)², which is
			// ½‖D − x‖²/c_out², so σ·k and z·k with k = σ/c_out.
			k := sde.EDMPreconditioning(sigmas[i], cfg.SigmaData).LossScale
			sv[i] = float32(sigmas[i] * k)
			for c := 0; c < cfg.Channels; c++ {
				for j := range zv[(c*b+i)*hw:][:hw] {
					zv[(c*b+i)*hw+j] *= float32(k)
				}
			}
		}
	}
	return nil
}

func (d *dsmGraph) grads() [][]float32 { return nodeValues(d.gradNodes) }

func (d *dsmGraph) parts() (*model.ScoreNet, []*G.Node, *G.Node) { return d.net, d.gradNodes, d.loss }

// feed is prepare for a device (deviceGraph): the inputs to upload are the
// network's, σ and z.
func (d *dsmGraph) feed(x, z []float32, _ []int, means, sigmas []float64) ([]*G.Node, error) {
	if err := d.prepare(x, z, means, sigmas); err != nil {
		return nil, err
	}
	return append(d.net.Inputs(), d.sigma, d.z), nil
}

func (d *dsmGraph) close() { d.vm.Close() }
