package train

import (
	"fmt"
	"math"

	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/nn"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// classifierGraph trains a noise-conditional classifier p(y | x̃, σ): the
// cross-entropy of its logits on x̃ = m·x + σz against the clean images'
// labels, over the same noise levels (or times) as the score model, and the
// gradients of that loss.
type classifierGraph struct {
	net       *model.ScoreNet
	onehot    *G.Node
	loss      *G.Node
	ce        *nn.SoftmaxCEOp
	gradNodes []*G.Node
	vm        G.VM
	input     []float32
	per       []float64
}

func newClassifierGraph(cfg model.Config, params model.Params, batch int) (*classifierGraph, error) {
	if !cfg.IsClassifier() {
		return nil, fmt.Errorf("%w: the network has no classes", ErrConfig)
	}
	c, err := nn.BuildChecked(func() (*classifierGraph, *G.ExprGraph, error) {
		net, err := model.Build(cfg, params, batch, tensor.Float32)
		if err != nil {
			return nil, nil, err
		}
		c := &classifierGraph{net: net}
		c.onehot = G.NewMatrix(net.Graph, G.Float32, G.WithShape(batch, cfg.Classes), G.WithName("onehot"),
			G.WithValue(tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(batch, cfg.Classes))))
		if c.loss, c.ce, err = nn.SoftmaxCrossEntropy(net.Out, c.onehot); err != nil {
			return nil, nil, err
		}
		if c.gradNodes, err = G.Grad(c.loss, net.Weights...); err != nil {
			return nil, nil, fmt.Errorf("differentiating the classifier's loss: %w", err)
		}
		return c, net.Graph, nil
	})
	if err != nil {
		return nil, fmt.Errorf("train: building the classifier's training graph: %w", err)
	}
	c.input, c.per = make([]float32, batch*cfg.Dim()), make([]float64, batch)
	c.vm = G.NewTapeMachine(c.net.Graph)
	return c, nil
}

// run evaluates the cross-entropy −log p(y | x̃, σ) per image, its mean,
// and the gradients.
func (c *classifierGraph) run(x, z []float32, labels []int, means, sigmas []float64) (float64, []float64, error) {
	k := c.net.Config.Classes
	if err := c.fill(x, z, labels, means, sigmas); err != nil {
		return 0, nil, err
	}
	c.vm.Reset()
	if err := c.vm.RunAll(); err != nil {
		return 0, nil, fmt.Errorf("train: running the classifier's training graph: %w", err)
	}
	for i, y := range labels {
		c.per[i] = -math.Log(c.ce.Probs[i*k+y])
	}
	return float64(c.loss.Value().Data().(float32)), append([]float64(nil), c.per...), nil
}

// fill sets the graph's inputs: the noised images, σ's features and the
// one-hot labels.
func (c *classifierGraph) fill(x, z []float32, labels []int, means, sigmas []float64) error {
	cfg := c.net.Config
	k := cfg.Classes
	if len(labels) != c.net.Batch {
		return fmt.Errorf("train: %d labels for a batch of %d", len(labels), c.net.Batch)
	}
	noised(c.input, x, z, means, sigmas, cfg.Dim())
	if err := c.net.SetInput(c.input, sigmas); err != nil {
		return err
	}
	oh := c.onehot.Value().Data().([]float32)
	clear(oh)
	for i, y := range labels {
		if y < 0 || y >= k {
			return fmt.Errorf("train: label %d out of the classifier's %d classes", y, k)
		}
		oh[i*k+y] = 1
	}
	return nil
}

func (c *classifierGraph) grads() [][]float32 { return nodeValues(c.gradNodes) }

func (c *classifierGraph) parts() (*model.ScoreNet, []*G.Node, *G.Node) {
	return c.net, c.gradNodes, c.loss
}

// feed is fill for a device (deviceGraph): the inputs to upload are the
// network's and the labels.
func (c *classifierGraph) feed(x, z []float32, labels []int, means, sigmas []float64) ([]*G.Node, error) {
	if err := c.fill(x, z, labels, means, sigmas); err != nil {
		return nil, err
	}
	return append(c.net.Inputs(), c.onehot), nil
}

func (c *classifierGraph) close() { c.vm.Close() }
