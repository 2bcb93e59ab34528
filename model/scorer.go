package model

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Scorer evaluates s_θ(x, σ) for any number of images through an inference
// graph of a fixed batch size: no gradient nodes, its own buffers.
type Scorer struct {
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
	net, err := Build(cfg, params, batch, tensor.Float32)
	if err != nil {
		return nil, err
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
func (s *Scorer) Close() error { return s.vm.Close() }

// Score writes s_θ(x, σ) into dst; x holds whole images in (N,C,H,W) order.
func (s *Scorer) Score(x []float64, sigma float64, dst []float64) error {
	d, b := s.Dim(), s.net.Batch
	if len(x)%d != 0 || len(dst) != len(x) {
		return fmt.Errorf("model: score of %d values into %d, images have %d", len(x), len(dst), d)
	}
	if !(sigma > 0) {
		return fmt.Errorf("model: σ must be positive, got %g", sigma)
	}
	for i := range s.sig {
		s.sig[i] = sigma
	}
	n := len(x) / d
	for start := 0; start < n; start += b {
		m := min(b, n-start)
		for i := 0; i < m*d; i++ {
			s.in[i] = float32(x[start*d+i])
		}
		clear(s.in[m*d:]) // padding images of the last chunk; their scores are dropped
		if err := s.net.SetInput(s.in, s.sig); err != nil {
			return err
		}
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
	}
	return nil
}
