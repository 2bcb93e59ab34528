package model

import (
	"fmt"
	"sync"

	"github.com/ncsn-go/ncsn/nn"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// VJPScorer evaluates s_θ(x, σ) and, for a probe v, the vector–Jacobian
// product vᵀ∂s_θ/∂x: the gradient of Σ v⊙s_θ(x, σ) with respect to the
// images, by gorgonia.Grad. With a random probe v, vᵀ(∂s/∂x)v is
// Hutchinson's unbiased estimate of the divergence ∇ₓ·s_θ that likelihoods
// through the probability-flow ODE need. Calls from several goroutines take
// turns.
type VJPScorer struct {
	mu sync.Mutex // one evaluation at a time: the graph and buffers are shared
	vjpGraph
	vm            G.VM
	in            []float32
	sig           []float64
	vin, sco, dxv []float64
}

// vjpGraph is the score network with a probe v beside its output and the
// gradient of Σ v⊙s_θ(x, σ) by the images: the graph of VJPScorer and
// DeviceVJPScorer.
type vjpGraph struct {
	net         *ScoreNet
	probe, grad *G.Node
}

// buildVJP builds the vector–Jacobian graph over params for batch images
// at a time.
func buildVJP(cfg Config, params Params, batch int, dtype tensor.Dtype) (vjpGraph, error) {
	if cfg.IsClassifier() {
		return vjpGraph{}, fmt.Errorf("%w: a classifier (%d classes) has no score", ErrConfig, cfg.Classes)
	}
	v, err := nn.BuildChecked(func() (vjpGraph, *G.ExprGraph, error) {
		net, err := Build(cfg, params, batch, dtype)
		if err != nil {
			return vjpGraph{}, nil, err
		}
		g := net.Graph
		shape := net.Out.Shape()
		probe := G.NewTensor(g, net.Out.Dtype(), len(shape), G.WithShape(shape...), G.WithName("probe"),
			G.WithValue(tensor.New(tensor.Of(dtype), tensor.WithShape(shape...))))
		cost, err := nn.ProbeDot(net.Out, probe)
		if err != nil {
			return vjpGraph{}, nil, err
		}
		grads, err := G.Grad(cost, net.X)
		if err != nil {
			return vjpGraph{}, nil, fmt.Errorf("differentiating the score by its input: %w", err)
		}
		return vjpGraph{net: net, probe: probe, grad: grads[0]}, g, nil
	})
	if err != nil {
		return vjpGraph{}, fmt.Errorf("model: building the score's vector–Jacobian graph: %w", err)
	}
	return v, nil
}

// NewVJPScorer builds the graph over params for batch images at a time.
func NewVJPScorer(cfg Config, params Params, batch int) (*VJPScorer, error) {
	return newVJPScorer(cfg, params, batch, tensor.Float32)
}

func newVJPScorer(cfg Config, params Params, batch int, dtype tensor.Dtype) (*VJPScorer, error) {
	v, err := buildVJP(cfg, params, batch, dtype)
	if err != nil {
		return nil, err
	}
	d := cfg.Dim()
	return &VJPScorer{vjpGraph: v, vm: G.NewTapeMachine(v.net.Graph), in: make([]float32, batch*d), sig: make([]float64, batch),
		vin: make([]float64, batch*d), sco: make([]float64, batch*d), dxv: make([]float64, batch*d)}, nil
}

// Dim is the number of values per image.
func (s *VJPScorer) Dim() int { return s.net.Config.Dim() }

// Close releases the graph's machine.
func (s *VJPScorer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vm.Close()
}

// ScoreVJP writes s_θ(x, σ) into score and vᵀ∂s_θ/∂x into vjp, image by
// image (each image's product involves only its own scores); x, v, score and
// vjp hold whole images in (N,C,H,W) order.
func (s *VJPScorer) ScoreVJP(x []float64, sigma float64, v, score, vjp []float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, b := s.Dim(), s.net.Batch
	if len(x)%d != 0 || len(v) != len(x) || len(score) != len(x) || len(vjp) != len(x) {
		return fmt.Errorf("model: score and VJP of %d values (probe %d, outputs %d and %d), images have %d", len(x), len(v), len(score), len(vjp), d)
	}
	cfg := s.net.Config
	hw := cfg.Height * cfg.Width
	return s.net.chunks(x, sigma, s.in, s.sig, func(start, m int) error {
		// The probe in the graph's (C,B,H,W) layout; zero for padding images.
		copy(s.vin, v[start*d:start*d+m*d])
		clear(s.vin[m*d:])
		toGraph(s.probe.Value().Data(), s.vin, b, cfg.Channels, hw)
		s.vm.Reset()
		if err := s.vm.RunAll(); err != nil {
			return fmt.Errorf("model: running the score network and its input gradient: %w", err)
		}
		fromGraph(s.net.Out.Value().Data(), s.sco, b, cfg.Channels, hw)
		fromGraph(s.grad.Value().Data(), s.dxv, b, cfg.Channels, hw)
		copy(score[start*d:start*d+m*d], s.sco)
		copy(vjp[start*d:start*d+m*d], s.dxv)
		return nil
	})
}

// toGraph copies images (B,C,H,W) into a graph tensor laid out (C,B,H,W).
func toGraph(dst any, src []float64, b, c, hw int) {
	d := c * hw
	for i := 0; i < b; i++ {
		for k := 0; k < c; k++ {
			for p := 0; p < hw; p++ {
				v := src[i*d+k*hw+p]
				switch t := dst.(type) {
				case []float32:
					t[(k*b+i)*hw+p] = float32(v)
				case []float64:
					t[(k*b+i)*hw+p] = v
				}
			}
		}
	}
}

// fromGraph copies a graph tensor laid out (C,B,H,W) into images (B,C,H,W).
func fromGraph(src any, dst []float64, b, c, hw int) {
	d := c * hw
	for i := 0; i < b; i++ {
		for k := 0; k < c; k++ {
			for p := 0; p < hw; p++ {
				switch t := src.(type) {
				case []float32:
					dst[i*d+k*hw+p] = float64(t[(k*b+i)*hw+p])
				case []float64:
					dst[i*d+k*hw+p] = t[(k*b+i)*hw+p]
				}
			}
		}
	}
}
