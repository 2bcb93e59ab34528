package model

import (
	"fmt"
	"math"
	"sync"

	"github.com/ncsn-go/ncsn/nn"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ClassGradient evaluates a noise-conditional classifier's log-probability
// of given classes and its gradient with respect to the images,
// ∇ₓ log p(y | x, σ), by gorgonia.Grad through the classifier's graph: the
// term that classifier guidance adds to a score. Calls from several
// goroutines take turns.
type ClassGradient struct {
	mu sync.Mutex // one evaluation at a time: the graph and buffers are shared
	classGraph
	vm  G.VM
	in  []float32
	sig []float64
	dx  []float64
}

// classGraph is a classifier with one-hot labels beside its logits, the
// batch mean of the cross-entropy and its gradient by the images: the
// graph of ClassGradient and DeviceClassGradient.
type classGraph struct {
	net          *ScoreNet
	onehot, cost *G.Node
	ce           *nn.SoftmaxCEOp
	grad         *G.Node
}

// buildClassGraph builds the classifier cfg's gradient graph over params
// for batch images at a time.
func buildClassGraph(cfg Config, params Params, batch int, dtype tensor.Dtype) (classGraph, error) {
	if !cfg.IsClassifier() {
		return classGraph{}, fmt.Errorf("%w: a score network is not a classifier (no classes)", ErrConfig)
	}
	c, err := nn.BuildChecked(func() (classGraph, *G.ExprGraph, error) {
		net, err := Build(cfg, params, batch, dtype)
		if err != nil {
			return classGraph{}, nil, err
		}
		g := net.Graph
		shape := net.Out.Shape()
		onehot := G.NewTensor(g, net.Out.Dtype(), 2, G.WithShape(shape...), G.WithName("onehot"),
			G.WithValue(tensor.New(tensor.Of(dtype), tensor.WithShape(shape...))))
		cost, ce, err := nn.SoftmaxCrossEntropy(net.Out, onehot)
		if err != nil {
			return classGraph{}, nil, err
		}
		grads, err := G.Grad(cost, net.X)
		if err != nil {
			return classGraph{}, nil, fmt.Errorf("differentiating the classifier by its input: %w", err)
		}
		return classGraph{net: net, onehot: onehot, cost: cost, ce: ce, grad: grads[0]}, g, nil
	})
	if err != nil {
		return classGraph{}, fmt.Errorf("model: building the classifier's gradient graph: %w", err)
	}
	return c, nil
}

// NewClassGradient builds the graph of the classifier cfg over params (its
// EMA weights, typically) for batch images at a time.
func NewClassGradient(cfg Config, params Params, batch int) (*ClassGradient, error) {
	return newClassGradient(cfg, params, batch, tensor.Float32)
}

func newClassGradient(cfg Config, params Params, batch int, dtype tensor.Dtype) (*ClassGradient, error) {
	g, err := buildClassGraph(cfg, params, batch, dtype)
	if err != nil {
		return nil, err
	}
	d := cfg.Dim()
	return &ClassGradient{classGraph: g, vm: G.NewTapeMachine(g.net.Graph), in: make([]float32, batch*d), sig: make([]float64, batch), dx: make([]float64, batch*d)}, nil
}

// Dim is the number of values per image.
func (c *classGraph) Dim() int { return c.net.Config.Dim() }

// Classes is the number of classes.
func (c *classGraph) Classes() int { return c.net.Config.Classes }

// check is Gradient's check of its arguments.
func (c *classGraph) check(x []float64, labels []int, dst, logp []float64) error {
	d, k := c.Dim(), c.Classes()
	if len(x)%d != 0 || len(dst) != len(x) || len(labels) != len(x)/d || (logp != nil && len(logp) != len(labels)) {
		return fmt.Errorf("model: class gradient of %d values, %d labels, into %d; images have %d", len(x), len(labels), len(dst), d)
	}
	for _, y := range labels {
		if y < 0 || y >= k {
			return fmt.Errorf("model: class %d out of range (the classifier has %d)", y, k)
		}
	}
	return nil
}

// Close releases the graph's machine.
func (c *ClassGradient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.vm.Close()
}

// Gradient writes ∇ₓ log p(labels[i] | xᵢ, σ) for every image xᵢ of x
// ((N,C,H,W) order) into dst, and returns each image's log p(labels[i] | xᵢ, σ)
// into logp (len N; nil to skip).
func (c *ClassGradient) Gradient(x []float64, labels []int, sigma float64, dst, logp []float64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gradient(x, labels, sigma, dst, logp)
}

// gradient is Gradient, c.mu held.
func (c *ClassGradient) gradient(x []float64, labels []int, sigma float64, dst, logp []float64) error {
	d, b, k := c.Dim(), c.net.Batch, c.Classes()
	if err := c.check(x, labels, dst, logp); err != nil {
		return err
	}
	cfg := c.net.Config
	hw := cfg.Height * cfg.Width
	return c.net.chunks(x, sigma, c.in, c.sig, func(start, m int) error {
		// One-hot rows; padding images take class 0, their gradients dropped.
		switch oh := c.onehot.Value().Data().(type) {
		case []float32:
			oneHot(oh, labels[start:start+m], b, k)
		case []float64:
			oneHot(oh, labels[start:start+m], b, k)
		}
		c.vm.Reset()
		if err := c.vm.RunAll(); err != nil {
			return fmt.Errorf("model: running the classifier and its input gradient: %w", err)
		}
		// The graph's cost is the batch mean of −log p: its gradient times −B
		// is each image's ∇ₓ log p.
		fromGraph(c.grad.Value().Data(), c.dx, b, cfg.Channels, hw)
		for i := 0; i < m*d; i++ {
			dst[start*d+i] = -float64(b) * c.dx[i]
		}
		if logp != nil {
			for i := 0; i < m; i++ {
				logp[start+i] = math.Log(c.ce.Probs[i*k+labels[start+i]])
			}
		}
		return nil
	})
}

// oneHot writes b one-hot rows of k classes: labels, then class 0.
func oneHot[T float32 | float64](oh []T, labels []int, b, k int) {
	clear(oh)
	for i := 0; i < b; i++ {
		y := 0
		if i < len(labels) {
			y = labels[i]
		}
		oh[i*k+y] = 1
	}
}

// Probs returns the class probabilities p(· | xᵢ, σ) of every image of x,
// N rows of Classes values.
func (c *ClassGradient) Probs(x []float64, sigma float64) ([]float64, error) {
	c.mu.Lock() // over the reading of the probabilities the graph left
	defer c.mu.Unlock()
	d, k := c.Dim(), c.Classes()
	if len(x)%d != 0 {
		return nil, fmt.Errorf("model: %d values are not whole images of %d", len(x), d)
	}
	n := len(x) / d
	out := make([]float64, n*k)
	dst := make([]float64, len(x))
	labels := make([]int, n)
	b := c.net.Batch
	for start := 0; start < n; start += b {
		m := min(b, n-start)
		if err := c.gradient(x[start*d:(start+m)*d], labels[start:start+m], sigma, dst[start*d:(start+m)*d], nil); err != nil {
			return nil, err
		}
		copy(out[start*k:(start+m)*k], c.ce.Probs[:m*k])
	}
	return out, nil
}
