// Package model defines the noise-conditional score network s_θ(x, σ): a small
// U-Net written as a Gorgonia expression graph (operators from package nn).
//
// The model knows nothing of losses or noise schedules: it maps a batch of
// images and one σ per image to a batch of scores. Of package sde it takes
// only EDM's preconditioning coefficients (c_in, c_out, c_skip of σ), which
// live there with every other σ formula. Its noise conditioning is the same
// with either preconditioning: Fourier features of ln σ at frequencies
// ~ N(0, 16²), score_sde's NCSN++ embedding, where EDM feeds its networks
// c_noise = ln σ / 4. Training graphs (with
// gradients) and sampling graphs (its own batch size, no gradients) are built
// separately from the same Params.
//
// The same U-Net's encoder, with Config.Classes set, is a noise-conditional
// classifier p(y | x, σ) for classifier guidance (ClassGradient: ∇ₓ log p).
// Scorer evaluates scores for samplers; VJPScorer adds vector–Jacobian
// products, for the divergence that likelihoods need; the Device* forms run
// the same graphs on a GPU (package nn's DeviceRun).
package model

import (
	"errors"
	"fmt"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("model: bad config")

// Config fixes the architecture. It is saved with every checkpoint.
type Config struct {
	Channels int   `json:"channels"` // image channels: 1 for MNIST, 3 for CIFAR-10
	Height   int   `json:"height"`
	Width    int   `json:"width"`
	Base     int   `json:"base"` // channels at full resolution
	Mult     []int `json:"mult"` // channel multiplier per resolution level
	EmbDim   int   `json:"emb_dim"`
	// FourierScale is the standard deviation of the fixed random frequencies
	// applied to log σ (as in the PyTorch reference).
	FourierScale float64 `json:"fourier_scale"`
	// Classes, when positive, makes the network a noise-conditional
	// classifier p(y | x, σ) instead of a score network: the U-Net's
	// encoder half (the same σ-conditioned residual blocks), then GroupNorm,
	// SiLU and a linear layer to Classes logits.
	Classes int `json:"classes,omitempty"`
	// Precond is the network's parameterisation of the score: "" for
	// NCSNv2's s = F(x, σ)/σ, or "edm" for the preconditioning of Karras et
	// al. 2022 (package sde's EDMPreconditioning): F sees c_in·x and
	// s = (c_skip·x + c_out·F − x)/σ². SigmaData is EDM's σ_data, the root
	// mean square of the training values.
	Precond   string  `json:"precond,omitempty"`
	SigmaData float64 `json:"sigma_data,omitempty"`
}

// Parameterisations of the score (Config.Precond).
const (
	PrecondNCSNv2 = ""
	PrecondEDM    = "edm"
)

// MNIST returns the default architecture for 28×28 grey images: the network of
// ../shared/bench/torch_ref.py with base 16.
func MNIST(base int) Config {
	return Config{Channels: 1, Height: 28, Width: 28, Base: base, Mult: []int{1, 2, 2}, EmbDim: 128, FourierScale: 16}
}

// CIFAR10 returns the same architecture for 32×32 colour images.
func CIFAR10(base int, mult ...int) Config {
	if len(mult) == 0 {
		mult = []int{1, 2, 2}
	}
	return Config{Channels: 3, Height: 32, Width: 32, Base: base, Mult: mult, EmbDim: 128, FourierScale: 16}
}

// Limits of Validate.
const (
	maxChannels = 4
	maxSide     = 1024
	maxBase     = 1024
	maxMult     = 16
	maxLevels   = 8
	maxEmbDim   = 8192
	maxClasses  = 1000
	// maxSigmaData bounds σ_data far above any image's values (in [0, 1]).
	maxSigmaData = 1000
)

// Validate reports what is wrong with c, if anything.
func (c Config) Validate() error {
	if err := c.validateShape(); err != nil {
		return err
	}
	switch c.Precond {
	case PrecondNCSNv2:
		if c.SigmaData != 0 {
			return fmt.Errorf("%w: sigma_data %g without EDM preconditioning", ErrConfig, c.SigmaData)
		}
	case PrecondEDM:
		if c.IsClassifier() {
			return fmt.Errorf("%w: EDM preconditioning is for score networks, not classifiers", ErrConfig)
		}
		if !(c.SigmaData > 0 && c.SigmaData <= maxSigmaData) {
			return fmt.Errorf("%w: EDM's sigma_data %g must be in (0, %g]", ErrConfig, c.SigmaData, float64(maxSigmaData))
		}
	default:
		return fmt.Errorf("%w: unknown preconditioning %q (none, or edm)", ErrConfig, c.Precond)
	}
	return nil
}

// validateShape checks what fixes the weights' layout: everything but the
// preconditioning, which the weights do not depend on.
func (c Config) validateShape() error {
	switch {
	case c.Channels < 1 || c.Height < 1 || c.Width < 1:
		return fmt.Errorf("%w: image shape %d×%d×%d", ErrConfig, c.Channels, c.Height, c.Width)
	case c.Base < 1:
		return fmt.Errorf("%w: base %d must be positive", ErrConfig, c.Base)
	case len(c.Mult) == 0:
		return fmt.Errorf("%w: no resolution levels", ErrConfig)
	case c.EmbDim < 2 || c.EmbDim%2 != 0:
		return fmt.Errorf("%w: emb_dim %d must be even and positive", ErrConfig, c.EmbDim)
	// Bounds far beyond any network this code can train keep the arithmetic
	// of sizes exact and a hostile checkpoint header from asking for
	// unbounded memory.
	case c.Channels > maxChannels || c.Height > maxSide || c.Width > maxSide:
		return fmt.Errorf("%w: image shape %d×%d×%d beyond %d×%d×%d", ErrConfig, c.Channels, c.Height, c.Width, maxChannels, maxSide, maxSide)
	case c.Base > maxBase:
		return fmt.Errorf("%w: base %d beyond %d", ErrConfig, c.Base, maxBase)
	case len(c.Mult) > maxLevels:
		return fmt.Errorf("%w: %d resolution levels, at most %d", ErrConfig, len(c.Mult), maxLevels)
	case c.EmbDim > maxEmbDim:
		return fmt.Errorf("%w: emb_dim %d beyond %d", ErrConfig, c.EmbDim, maxEmbDim)
	case c.Classes < 0 || c.Classes == 1 || c.Classes > maxClasses:
		return fmt.Errorf("%w: %d classes (a classifier has 2 to %d; 0 is a score network)", ErrConfig, c.Classes, maxClasses)
	}
	for _, m := range c.Mult {
		if m < 1 || m > maxMult {
			return fmt.Errorf("%w: channel multiplier %d (1 to %d)", ErrConfig, m, maxMult)
		}
	}
	div := 1 << (len(c.Mult) - 1)
	if c.Height%div != 0 || c.Width%div != 0 {
		return fmt.Errorf("%w: %d×%d images cannot be halved %d times", ErrConfig, c.Height, c.Width, len(c.Mult)-1)
	}
	return nil
}

// Dim is the number of values in one image.
func (c Config) Dim() int { return c.Channels * c.Height * c.Width }

// IsClassifier reports whether cfg is a noise-conditional classifier rather
// than a score network.
func (c Config) IsClassifier() bool { return c.Classes > 0 }

// headSize is the length of a classifier's flattened last feature map: the
// deepest channels at the resolution after len(Mult)-1 halvings.
func (c Config) headSize() int {
	ch := c.channels()
	div := 1 << (len(c.Mult) - 1)
	return ch[len(ch)-1] * (c.Height / div) * (c.Width / div)
}

func (c Config) channels() []int {
	ch := make([]int, len(c.Mult))
	for i, m := range c.Mult {
		ch[i] = c.Base * m
	}
	return ch
}

// groups is GroupNorm's group count: min(8, channels), as in the reference.
func groups(c int) int {
	g := min(8, c)
	for c%g != 0 {
		g--
	}
	return g
}
