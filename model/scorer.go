package model

import (
	"fmt"
	"math"
	"sync"

	"github.com/ncsn-go/ncsn/nn"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Scorer evaluates s_θ(x, σ) for any number of images through an inference
// graph of a fixed batch size: no gradient nodes, its own buffers. It is
// safe for concurrent use: calls from several goroutines take turns.
type Scorer struct {
	mu      sync.Mutex // one evaluation at a time: the graph and buffers are shared
	net     *ScoreNet
	vm      G.VM
	in, out []float32
	sig     []float64
}

// NewScorer builds the inference graph over params (typically the EMA weights).
func NewScorer(cfg Config, params Params, batch int) (*Scorer, error) {
	if cfg.IsClassifier() {
		return nil, fmt.Errorf("%w: a classifier (%d classes) has no score", ErrConfig, cfg.Classes)
	}
	net, err := nn.BuildChecked(func() (*ScoreNet, *G.ExprGraph, error) {
		net, err := Build(cfg, params, batch, tensor.Float32)
		if err != nil {
			return nil, nil, err
		}
		return net, net.Graph, nil
	})
	if err != nil {
		return nil, fmt.Errorf("model: building the inference graph: %w", err)
	}
	d := cfg.Dim()
	return &Scorer{
		net: net,
		vm:  G.NewTapeMachine(net.Graph),
		in:  make([]float32, batch*d),
		out: make([]float32, batch*d),
		sig: make([]float64, batch),
	}, nil
}

// Dim is the number of values per image.
func (s *Scorer) Dim() int { return s.net.Config.Dim() }

// Close releases the graph's machine.
func (s *Scorer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vm.Close()
}

// Score writes s_θ(x, σ) into dst; x holds whole images in (N,C,H,W) order.
func (s *Scorer) Score(x []float64, sigma float64, dst []float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.Dim()
	if len(x)%d != 0 || len(dst) != len(x) {
		return fmt.Errorf("model: score of %d values into %d, images have %d", len(x), len(dst), d)
	}
	return s.net.chunks(x, sigma, s.in, s.sig, func(start, m int) error {
		s.vm.Reset()
		if err := s.vm.RunAll(); err != nil {
			return fmt.Errorf("model: running the score network: %w", err)
		}
		if err := s.net.ReadOutput(s.out); err != nil {
			return err
		}
		for i := 0; i < m*d; i++ {
			dst[start*d+i] = float64(s.out[i])
		}
		return nil
	})
}

// chunks feeds the images of x (whole images, (N,C,H,W) order) to the
// graph a batch at a time, all at noise level σ: for each chunk it copies
// the images into in (float32; a last chunk's padding images zeroed, their
// outputs to be dropped), sets the graph's inputs, and calls run with the
// chunk's first image and its number of images. sig is the per-image σ
// buffer (Batch values).
func (n *ScoreNet) chunks(x []float64, sigma float64, in []float32, sig []float64, run func(start, m int) error) error {
	if !(sigma > 0) || math.IsInf(sigma, 1) {
		return fmt.Errorf("model: σ must be positive and finite, got %g", sigma)
	}
	for i := range sig {
		sig[i] = sigma
	}
	d, b := n.Config.Dim(), n.Batch
	count := len(x) / d
	for start := 0; start < count; start += b {
		m := min(b, count-start)
		for i := 0; i < m*d; i++ {
			in[i] = float32(x[start*d+i])
		}
		clear(in[m*d:])
		if err := n.SetInput(in, sig); err != nil {
			return err
		}
		if err := run(start, m); err != nil {
			return err
		}
	}
	return nil
}
