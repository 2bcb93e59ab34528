// Package generate draws images from a trained checkpoint: it wires the
// checkpoint's EMA weights into an inference graph, runs annealed Langevin
// dynamics on it, and writes a PNG grid (and, if asked, one PNG per sample).
package generate

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/internal/blas"
	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/internal/kernel"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/sample"
	"github.com/schollz/progressbar/v3"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("generate: bad config")

// Config is one sampling run.
type Config struct {
	Ckpt          string  // a checkpoint file, or a folder (its latest checkpoint)
	Out           string  // the grid PNG
	OutDir        string  // if set, each sample also as its own PNG here
	N             int     // number of samples
	Seed          uint64  // same seed, same checkpoint → same PNG bytes
	StepsPerLevel int     // T; 0: the checkpoint's recommendation, else 100
	Eps           float64 // ε; 0: the checkpoint's recommendation, else sample.DefaultEps
	Denoise       bool    // the final denoising step
	Batch         int     // images per network evaluation (0: min(N, 128))
	// Raw samples from the trained weights instead of their moving average.
	Raw bool
	// GIF, if set, receives the annealing film: the grid at x₀, after each
	// noise level, and after the denoising step.
	GIF string
	Log io.Writer
	Bar bool
}

// Validate reports what is wrong with c, if anything.
func (c Config) Validate() error {
	switch {
	case c.N < 1:
		return fmt.Errorf("%w: -n %d must be positive", ErrConfig, c.N)
	case c.StepsPerLevel < 0:
		return fmt.Errorf("%w: -steps-per-level %d must be positive", ErrConfig, c.StepsPerLevel)
	case c.Eps < 0 || math.IsNaN(c.Eps):
		return fmt.Errorf("%w: -eps %g must be positive", ErrConfig, c.Eps)
	case c.Out == "" && c.OutDir == "":
		return fmt.Errorf("%w: nothing to write: give -out or -out-dir", ErrConfig)
	case c.Batch < 0:
		return fmt.Errorf("%w: batch %d", ErrConfig, c.Batch)
	}
	return nil
}

// Result describes what was drawn.
type Result struct {
	Checkpoint              string
	Step                    int
	Images                  []float64 // N images in (N,C,H,W) order, in [0,1]
	Channels, Height, Width int
	Seconds                 float64
}

// Run loads the checkpoint, samples, and writes the PNGs.
func Run(c Config) (*Result, error) {
	if c.Log == nil {
		c.Log = io.Discard
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	path, err := checkpoint.Resolve(c.Ckpt)
	if err != nil {
		return nil, err
	}
	st, err := checkpoint.Load(path)
	if err != nil {
		return nil, err
	}
	which := "EMA weights"
	if c.Raw {
		which = "raw weights"
	}
	fmt.Fprintf(c.Log, "sampling %d images from %s (step %d, %s), %s; backend: %s\n", c.N, path, st.Step, st.Dataset, which, blas.Backend()+"; "+kernel.Describe())
	res, err := Draw(st, c)
	if err != nil {
		return nil, err
	}
	res.Checkpoint = path
	if err := res.write(c); err != nil {
		return nil, err
	}
	return res, nil
}

// Draw samples from a loaded checkpoint without writing anything.
func Draw(st *checkpoint.State, c Config) (*Result, error) {
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.StepsPerLevel == 0 {
		c.StepsPerLevel = st.SampleSteps
		if c.StepsPerLevel == 0 {
			c.StepsPerLevel = 100
		}
	}
	if c.Eps == 0 {
		c.Eps = st.SampleEps
		if c.Eps == 0 {
			c.Eps = sample.DefaultEps
		}
	}
	batch := c.Batch
	if batch == 0 {
		batch = min(c.N, 128)
	}
	weights := st.EMA
	if c.Raw {
		weights = st.Weights
	}
	sc, err := model.NewScorer(st.Model, weights, batch)
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	a := sample.Annealed{Sigmas: st.Sigmas, StepsPerLevel: c.StepsPerLevel, Eps: c.Eps, Denoise: c.Denoise}
	var bar *progressbar.ProgressBar
	if c.Bar {
		total := len(st.Sigmas)*c.StepsPerLevel + 1
		bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(c.Log), progressbar.OptionSetWidth(20),
			progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish(),
			progressbar.OptionThrottle(200*time.Millisecond))
		a.Progress = func(done, total int) {
			bar.Describe(fmt.Sprintf("level %d/%d", min(1+(done-1)/c.StepsPerLevel, len(st.Sigmas)), len(st.Sigmas)))
			bar.Set(done)
		}
	}
	var film *film
	if c.GIF != "" {
		film = newFilm(st.Model.Channels, st.Model.Height, st.Model.Width)
	}
	a.AfterLevel = func(level int, x []float64) {
		if bar == nil {
			fmt.Fprintf(c.Log, "level %d/%d done (σ = %.4g)\n", level+1, len(st.Sigmas), st.Sigmas[level])
		}
		if film != nil {
			film.add(x, c.N, 50)
		}
	}
	r := rand.New(rand.NewPCG(c.Seed, 0x73616d70))
	x := make([]float64, c.N*st.Model.Dim())
	for i := range x {
		x[i] = r.Float64() // x₀ ~ U[0,1], as NCSN
	}
	if film != nil {
		film.add(x, c.N, 100)
	}
	t0 := time.Now()
	if err := sample.AnnealedLangevin(sc, x, a, r); err != nil {
		return nil, err
	}
	if bar != nil {
		bar.Finish()
	}
	for i, v := range x {
		x[i] = min(1, max(0, v))
	}
	if film != nil {
		film.add(x, c.N, 300)
		if err := film.write(c.GIF); err != nil {
			return nil, err
		}
		fmt.Fprintf(c.Log, "wrote %s (%d frames)\n", c.GIF, len(film.g.Image))
	}
	return &Result{Step: st.Step, Images: x, Channels: st.Model.Channels, Height: st.Model.Height, Width: st.Model.Width,
		Seconds: time.Since(t0).Seconds()}, nil
}

func (r *Result) write(c Config) error {
	n := len(r.Images) / (r.Channels * r.Height * r.Width)
	if c.Out != "" {
		img, err := sample.Grid(r.Images, n, r.Channels, r.Height, r.Width)
		if err != nil {
			return err
		}
		if err := fsutil.WriteAtomic(c.Out, func(w io.Writer) error { return sample.WritePNG(w, img) }); err != nil {
			return fmt.Errorf("generate: writing %s: %w", c.Out, err)
		}
		fmt.Fprintf(c.Log, "wrote %s (%d samples, %.0f s)\n", c.Out, n, r.Seconds)
	}
	if c.OutDir != "" {
		if err := os.MkdirAll(c.OutDir, 0o755); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
		d := r.Channels * r.Height * r.Width
		for i := 0; i < n; i++ {
			img, err := sample.Grid(r.Images[i*d:(i+1)*d], 1, r.Channels, r.Height, r.Width)
			if err != nil {
				return err
			}
			img = crop(img, r.Width, r.Height)
			p := filepath.Join(c.OutDir, fmt.Sprintf("sample-%05d.png", i))
			if err := fsutil.WriteAtomic(p, func(w io.Writer) error { return sample.WritePNG(w, img) }); err != nil {
				return fmt.Errorf("generate: writing %s: %w", p, err)
			}
		}
		fmt.Fprintf(c.Log, "wrote %d PNGs to %s\n", n, c.OutDir)
	}
	return nil
}
