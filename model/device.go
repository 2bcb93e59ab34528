package model

import (
	"fmt"
	"sync"

	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/nn"
	"gorgonia.org/tensor"
)

// DeviceScorer evaluates s_θ(x, σ) on a device (package cuda): the same
// graph as Scorer's, its operators run by nn.DeviceRun, the weights
// uploaded once, each batch's images and σ features uploaded per call.
// Calls from several goroutines take turns, with the other scorers of the
// device too (cuda.Device.Hold).
type DeviceScorer struct {
	mu      sync.Mutex // one evaluation at a time
	dev     *cuda.Device
	net     *ScoreNet
	run     *nn.DeviceRun
	in, out []float32
	sig     []float64
}

// NewDeviceScorer builds the inference graph over params for batch images
// at a time and uploads the weights to dev.
func NewDeviceScorer(dev *cuda.Device, cfg Config, params Params, batch int) (*DeviceScorer, error) {
	if cfg.IsClassifier() {
		return nil, fmt.Errorf("%w: a classifier (%d classes) has no score", ErrConfig, cfg.Classes)
	}
	net, err := Build(cfg, params, batch, tensor.Float32)
	if err != nil {
		return nil, err
	}
	run, err := uploaded(dev, net)
	if err != nil {
		return nil, err
	}
	d := cfg.Dim()
	return &DeviceScorer{dev: dev, net: net, run: run, in: make([]float32, batch*d), out: make([]float32, batch*d), sig: make([]float64, batch)}, nil
}

// uploaded plans net's graph on dev and uploads its weights.
func uploaded(dev *cuda.Device, net *ScoreNet) (*nn.DeviceRun, error) {
	defer dev.Hold()()
	run, err := nn.NewDeviceRun(dev, net.Graph)
	if err != nil {
		return nil, err
	}
	if err := run.Upload(net.Weights...); err != nil {
		run.Close()
		return nil, err
	}
	return run, nil
}

// Dim is the number of values per image.
func (s *DeviceScorer) Dim() int { return s.net.Config.Dim() }

// Profile is the time each operator took so far (NCSN_DEVICE_PROFILE=1;
// nn.DeviceRun.Profile).
func (s *DeviceScorer) Profile() string { return s.run.Profile() }

// Close frees the device memory.
func (s *DeviceScorer) Close() error {
	defer s.dev.Hold()() // other users of the device take turns too; the turn first
	s.mu.Lock()
	defer s.mu.Unlock()
	s.run.Close()
	return nil
}

// Score writes s_θ(x, σ) into dst; x holds whole images in (N,C,H,W) order.
func (s *DeviceScorer) Score(x []float64, sigma float64, dst []float64) error {
	defer s.dev.Hold()() // other users of the device take turns too; the turn first
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.net.Config
	d, b, hw := cfg.Dim(), s.net.Batch, cfg.Height*cfg.Width
	if len(x)%d != 0 || len(dst) != len(x) {
		return fmt.Errorf("model: score of %d values into %d, images have %d", len(x), len(dst), d)
	}
	return s.net.chunks(x, sigma, s.in, s.sig, func(start, m int) error {
		if err := s.run.Upload(s.net.Inputs()...); err != nil {
			return err
		}
		if err := s.run.Run(); err != nil {
			return fmt.Errorf("model: running the score network on the device: %w", err)
		}
		if err := s.run.Download(s.net.Out, s.out); err != nil {
			return err
		}
		// s.out is (C,B,H,W); the images are (B,C,H,W).
		for i := 0; i < m; i++ {
			for c := 0; c < cfg.Channels; c++ {
				for p := 0; p < hw; p++ {
					dst[(start+i)*d+c*hw+p] = float64(s.out[(c*b+i)*hw+p])
				}
			}
		}
		return nil
	})
}

// ScoreOnDevice writes s_θ(x, σ) for the n images of x (N,C,H,W order,
// device memory) into out, without leaving the device but for σ's
// features. It takes the device's turn (cuda.Device.Hold) for the call.
func (s *DeviceScorer) ScoreOnDevice(dev *cuda.Device, x cuda.Buffer, n int, sigma float64, out cuda.Buffer) error {
	if dev != s.dev {
		return fmt.Errorf("model: device score on another device than the scorer's")
	}
	defer s.dev.Hold()() // other users of the device take turns too
	return s.ScoreOnHeldDevice(dev, x, n, sigma, out)
}

// ScoreOnHeldDevice is ScoreOnDevice for a caller that holds the device's
// turn itself (cuda.Device.Hold) across its own work on x and out — a
// sampler's whole loop — and so keeps the device's other users out of
// that work too (ScoreOnDevice's Hold would wait for ever there: the turn
// is not taken twice). Every method of the device scorers takes the
// device's turn before its own lock, the order this one's caller keeps.
func (s *DeviceScorer) ScoreOnHeldDevice(dev *cuda.Device, x cuda.Buffer, n int, sigma float64, out cuda.Buffer) error {
	if dev != s.dev {
		return fmt.Errorf("model: device score on another device than the scorer's")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.net.Config
	d, b, hw := cfg.Dim(), s.net.Batch, cfg.Height*cfg.Width
	if n < 1 || x.N < n*d || out.N < n*d {
		return fmt.Errorf("model: device score of %d images from %d values into %d", n, x.N, out.N)
	}
	if !(sigma > 0) {
		return fmt.Errorf("model: σ must be positive, got %g", sigma)
	}
	for i := range s.sig {
		s.sig[i] = sigma
	}
	clear(s.in)
	if err := s.net.SetInput(s.in, s.sig); err != nil { // σ's features and scales
		return err
	}
	if err := s.run.Upload(s.net.SigmaInputs()...); err != nil {
		return err
	}
	xb, _ := s.run.Buffer(s.net.X)
	ob, _ := s.run.Buffer(s.net.Out)
	for start := 0; start < n; start += b {
		m := min(b, n-start)
		if err := dev.ToGraph(xb, x, start, m, cfg.Channels, b, hw); err != nil {
			return err
		}
		if err := s.run.Run(); err != nil {
			return fmt.Errorf("model: running the score network on the device: %w", err)
		}
		if err := dev.FromGraph(out, ob, start, m, cfg.Channels, b, hw); err != nil {
			return err
		}
	}
	return nil
}

// DeviceVJPScorer is VJPScorer on a device: the score network, the probe's
// dot product and gorgonia.Grad's gradient by the images, all run by
// nn.DeviceRun's kernels; each batch's images, σ features and probe go up,
// its scores and vector–Jacobian products come back. Calls from several
// goroutines take turns.
type DeviceVJPScorer struct {
	mu  sync.Mutex // one evaluation at a time
	dev *cuda.Device
	vjpGraph
	run           *nn.DeviceRun
	in, out, dxv  []float32
	sig, vin, tmp []float64
}

// NewDeviceVJPScorer builds the vector–Jacobian graph over params for batch
// images at a time and uploads the weights to dev.
func NewDeviceVJPScorer(dev *cuda.Device, cfg Config, params Params, batch int) (*DeviceVJPScorer, error) {
	v, err := buildVJP(cfg, params, batch, tensor.Float32)
	if err != nil {
		return nil, err
	}
	run, err := uploaded(dev, v.net)
	if err != nil {
		return nil, err
	}
	d := cfg.Dim()
	return &DeviceVJPScorer{dev: dev, vjpGraph: v, run: run, in: make([]float32, batch*d), out: make([]float32, batch*d),
		dxv: make([]float32, batch*d), sig: make([]float64, batch), vin: make([]float64, batch*d), tmp: make([]float64, batch*d)}, nil
}

// Dim is the number of values per image.
func (s *DeviceVJPScorer) Dim() int { return s.net.Config.Dim() }

// Close frees the device memory.
func (s *DeviceVJPScorer) Close() error {
	defer s.dev.Hold()() // other users of the device take turns too; the turn first
	s.mu.Lock()
	defer s.mu.Unlock()
	s.run.Close()
	return nil
}

// ScoreVJP writes s_θ(x, σ) into score and vᵀ∂s_θ/∂x into vjp, as
// VJPScorer.ScoreVJP does.
func (s *DeviceVJPScorer) ScoreVJP(x []float64, sigma float64, v, score, vjp []float64) error {
	defer s.dev.Hold()() // other users of the device take turns too; the turn first
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.net.Config
	d, b, hw := cfg.Dim(), s.net.Batch, cfg.Height*cfg.Width
	if len(x)%d != 0 || len(v) != len(x) || len(score) != len(x) || len(vjp) != len(x) {
		return fmt.Errorf("model: score and VJP of %d values (probe %d, outputs %d and %d), images have %d", len(x), len(v), len(score), len(vjp), d)
	}
	return s.net.chunks(x, sigma, s.in, s.sig, func(start, m int) error {
		copy(s.vin, v[start*d:start*d+m*d])
		clear(s.vin[m*d:])
		toGraph(s.probe.Value().Data(), s.vin, b, cfg.Channels, hw)
		if err := s.run.Upload(append(s.net.Inputs(), s.probe)...); err != nil {
			return err
		}
		if err := s.run.Run(); err != nil {
			return fmt.Errorf("model: running the score network and its input gradient on the device: %w", err)
		}
		if err := s.run.Download(s.net.Out, s.out); err != nil {
			return err
		}
		if err := s.run.Download(s.grad, s.dxv); err != nil {
			return err
		}
		fromGraph(s.out, s.tmp, b, cfg.Channels, hw)
		copy(score[start*d:start*d+m*d], s.tmp)
		fromGraph(s.dxv, s.tmp, b, cfg.Channels, hw)
		copy(vjp[start*d:start*d+m*d], s.tmp)
		return nil
	})
}

// DeviceClassGradient is ClassGradient on a device: the classifier, its
// cross-entropy against one-hot labels and gorgonia.Grad's gradient by the
// images, all run by nn.DeviceRun's kernels; each batch's images, σ
// features and labels go up, its gradients and log-probabilities come back.
// Calls from several goroutines take turns.
type DeviceClassGradient struct {
	mu  sync.Mutex // one evaluation at a time
	dev *cuda.Device
	classGraph
	run     *nn.DeviceRun
	in, dx  []float32
	per     []float32
	sig, dy []float64
}

// NewDeviceClassGradient builds the classifier cfg's gradient graph over
// params for batch images at a time and uploads the weights to dev.
func NewDeviceClassGradient(dev *cuda.Device, cfg Config, params Params, batch int) (*DeviceClassGradient, error) {
	g, err := buildClassGraph(cfg, params, batch, tensor.Float32)
	if err != nil {
		return nil, err
	}
	run, err := uploaded(dev, g.net)
	if err != nil {
		return nil, err
	}
	d := cfg.Dim()
	return &DeviceClassGradient{dev: dev, classGraph: g, run: run, in: make([]float32, batch*d), dx: make([]float32, batch*d),
		per: make([]float32, batch), sig: make([]float64, batch), dy: make([]float64, batch*d)}, nil
}

// Close frees the device memory.
func (c *DeviceClassGradient) Close() error {
	defer c.dev.Hold()() // other users of the device take turns too; the turn first
	c.mu.Lock()
	defer c.mu.Unlock()
	c.run.Close()
	return nil
}

// Gradient writes ∇ₓ log p(labels[i] | xᵢ, σ) into dst and log p(labels[i] |
// xᵢ, σ) into logp (nil to skip), as ClassGradient.Gradient does.
func (c *DeviceClassGradient) Gradient(x []float64, labels []int, sigma float64, dst, logp []float64) error {
	defer c.dev.Hold()() // other users of the device take turns too; the turn first
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.check(x, labels, dst, logp); err != nil {
		return err
	}
	cfg := c.net.Config
	d, b, hw := c.Dim(), c.net.Batch, cfg.Height*cfg.Width
	return c.net.chunks(x, sigma, c.in, c.sig, func(start, m int) error {
		if err := c.runChunk(labels[start : start+m]); err != nil {
			return err
		}
		if err := c.run.Download(c.grad, c.dx); err != nil {
			return err
		}
		// The cost is the batch mean of −log p: its gradient times −B is
		// each image's ∇ₓ log p.
		fromGraph(c.dx, c.dy, b, cfg.Channels, hw)
		for i := 0; i < m*d; i++ {
			dst[start*d+i] = -float64(b) * c.dy[i]
		}
		if logp != nil {
			if err := c.run.PerImage(c.cost, c.per); err != nil {
				return err
			}
			for i := 0; i < m; i++ {
				logp[start+i] = -float64(c.per[i])
			}
		}
		return nil
	})
}

// runChunk runs the graph on the chunk SetInput filled, with these labels
// (class 0 for the padding images).
func (c *DeviceClassGradient) runChunk(labels []int) error {
	oneHot(c.onehot.Value().Data().([]float32), labels, c.net.Batch, c.Classes())
	if err := c.run.Upload(append(c.net.Inputs(), c.onehot)...); err != nil {
		return err
	}
	if err := c.run.Run(); err != nil {
		return fmt.Errorf("model: running the classifier and its input gradient on the device: %w", err)
	}
	return nil
}

// Probs returns the class probabilities p(· | xᵢ, σ) of every image of x,
// N rows of Classes values, as ClassGradient.Probs does.
func (c *DeviceClassGradient) Probs(x []float64, sigma float64) ([]float64, error) {
	defer c.dev.Hold()() // other users of the device take turns too; the turn first
	c.mu.Lock()
	defer c.mu.Unlock()
	d, k := c.Dim(), c.Classes()
	if len(x)%d != 0 {
		return nil, fmt.Errorf("model: %d values are not whole images of %d", len(x), d)
	}
	out := make([]float64, len(x)/d*k)
	p := make([]float32, c.net.Batch*k)
	err := c.net.chunks(x, sigma, c.in, c.sig, func(start, m int) error {
		if err := c.runChunk(nil); err != nil {
			return err
		}
		if err := c.run.Probabilities(c.cost, p); err != nil {
			return err
		}
		for i := 0; i < m*k; i++ {
			out[start*k+i] = float64(p[i])
		}
		return nil
	})
	return out, err
}
