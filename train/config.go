package train

import (
	"errors"
	"fmt"
	"io"

	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/model"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("train: bad config")

// Config is one training run. The fields with JSON names are saved in every
// checkpoint; the others say where things are and how to report.
type Config struct {
	Dataset   string       `json:"dataset"`
	Preset    string       `json:"preset"`
	Model     model.Config `json:"model"`
	Steps     int          `json:"steps"` // total steps to reach
	Batch     int          `json:"batch"`
	LR        float64      `json:"lr"`
	EMADecay  float64      `json:"ema_decay"`
	SigmaMax  float64      `json:"sigma_max"`
	SigmaMin  float64      `json:"sigma_min"`
	Levels    int          `json:"levels"`
	Seed      uint64       `json:"seed"`
	SaveEvery int          `json:"save_every"`

	DataDir string `json:"-"`
	CkptDir string `json:"-"`
	Keep    int    `json:"-"` // checkpoints kept; ≤ 0 keeps all
	Fresh   bool   `json:"-"` // start over; earlier checkpoints are archived
	Wipe    bool   `json:"-"` // with Fresh: delete earlier checkpoints instead
	Resume  string `json:"-"` // resume from this file
	// Set names the settings the user gave explicitly (flag names); on resume
	// they must agree with the checkpoint's.
	Set map[string]bool `json:"-"`
	// Log receives progress lines; Bar draws a progress bar on it.
	Log io.Writer `json:"-"`
	Bar bool      `json:"-"`
	// Data, when set, is used instead of loading Dataset (tests).
	Data *data.Dataset `json:"-"`
}

// Preset returns the configuration of a named preset for a dataset.
//
//   - default: the network of ../shared/bench/torch_ref.py at base 16, batch 128,
//     NCSN's MNIST schedule (σ₁=1, σ_L=0.01, L=10), Adam 1e-3, EMA 0.999; its
//     step count is sized for about 50 minutes on 2 cores (README.md).
//   - smoke: a tiny network and batch that trains a few steps in seconds.
func Preset(name, dataset string) (Config, error) {
	if dataset != "mnist" {
		return Config{}, fmt.Errorf("%w: unknown dataset %q (this build trains mnist)", ErrConfig, dataset)
	}
	c := Config{
		Dataset: dataset, Preset: name, Model: model.MNIST(16),
		Steps: 4000, Batch: 128, LR: 1e-3, EMADecay: 0.999,
		SigmaMax: 1, SigmaMin: 0.01, Levels: 10, Seed: 0, SaveEvery: 500,
		DataDir: "data/mnist", CkptDir: "checkpoints", Keep: 5,
	}
	switch name {
	case "default":
	case "smoke":
		c.Model = model.MNIST(8)
		c.Model.EmbDim = 32
		c.Steps, c.Batch, c.SaveEvery = 20, 16, 10
	default:
		return Config{}, fmt.Errorf("%w: unknown preset %q (default or smoke)", ErrConfig, name)
	}
	return c, nil
}

// Validate reports what is wrong with c, if anything.
func (c Config) Validate() error {
	switch {
	case c.Steps < 1:
		return fmt.Errorf("%w: -steps %d must be positive", ErrConfig, c.Steps)
	case c.Batch < 1:
		return fmt.Errorf("%w: -batch %d must be positive", ErrConfig, c.Batch)
	case c.SaveEvery < 1:
		return fmt.Errorf("%w: -save-every %d must be positive", ErrConfig, c.SaveEvery)
	case !(c.LR > 0):
		return fmt.Errorf("%w: learning rate %g must be positive", ErrConfig, c.LR)
	case !(c.EMADecay >= 0 && c.EMADecay < 1):
		return fmt.Errorf("%w: EMA decay %g must be in [0,1)", ErrConfig, c.EMADecay)
	case c.CkptDir == "":
		return fmt.Errorf("%w: empty -ckpt-dir", ErrConfig)
	case c.Wipe && !c.Fresh:
		return fmt.Errorf("%w: -wipe only goes with -fresh", ErrConfig)
	case c.Fresh && c.Resume != "":
		return fmt.Errorf("%w: -fresh and -resume contradict each other", ErrConfig)
	}
	return c.Model.Validate()
}
