// Package generate draws images from a trained checkpoint: it wires the
// checkpoint's EMA weights (or, asked, its raw weights) into an inference
// graph, on the CPU or a GPU, runs a sampler of package sample on it
// (annealed Langevin dynamics for NCSN models; the reverse SDE,
// predictor–corrector, probability-flow ODE, DDPM, DDIM and EDM's Heun
// samplers for continuous-time ones, with the settings the checkpoint
// recommends), optionally guided by a noise-conditional classifier (-class)
// or autoguided by a weaker model (the run's own kept guide, or another
// checkpoint), and writes a PNG grid (and, if asked, one PNG per sample).
// With an image and a mask it inpaints, with a grey image it colourises
// (controlled.go).
package generate

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/internal/blas"
	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/internal/english"
	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/internal/kernel"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/sample"
	"github.com/ncsn-go/ncsn/sde"
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
	Denoise       bool    // the final denoising step (em, pc, ddpm: a noise-free last step; ode: one noise-free step from ε to 0 after the solve)
	// Sampler is ald, em, pc, ode, ddpm, ddim or heun ("": the checkpoint's
	// recommendation, else ald for NCSN models, pc for continuous-time ones).
	Sampler string
	Steps   int     // discretisation steps of em, pc, ddpm, ddim and heun (0: the checkpoint's for its own sampler, else DefaultSteps)
	SNR     float64 // pc: the corrector's signal-to-noise ratio (0: 0.16)
	Tol     float64 // ode: RK45's rtol = atol (0: 1e-5)
	// heun: EDM's S_churn (0: the deterministic sampler), at σ in
	// [ChurnMin, ChurnMax] (ChurnMax 0: no upper limit), its noise scaled by ChurnNoise
	// (0: 1); sample.Continuous says more.
	Churn, ChurnMin, ChurnMax, ChurnNoise float64
	// DenoiseSet says Denoise was given: -denoise=false on a sampler whose
	// last step is noise-free anyway (heun, ode, ddim) is then an error.
	DenoiseSet bool
	// ChurnSet says Churn was given (-churn 0 included): otherwise a
	// checkpoint whose recommended sampler is heun lends its S_churn.
	ChurnSet bool
	Batch    int // images per network evaluation (0: min(N, 128))
	// Raw samples from the trained weights instead of their moving average.
	Raw bool
	// GIF, if set, receives the sampling film: the grid at x₀, then for
	// annealed Langevin dynamics after each noise level and the denoising
	// step, for the continuous samplers with fixed steps after about every
	// twelfth of their steps and the last (the adaptive ode solver has none).
	// Run writes it with the samples; Draw records it in its Result, for
	// Result.WriteFilm.
	GIF string
	// Inpaint ("test:N" or an image file of the model's size) with Mask (a
	// PNG, white = keep, or one of MaskNames: the part to fill in) draws
	// completions of the image; Colorize ("test:N" or an image file) draws
	// colour versions of its grey levels. The known part is re-imposed at
	// the matching noise level after every step (stochastic samplers only)
	// and exactly at the end; the grid starts with the input (and mask).
	Inpaint, Mask, Colorize string
	// DataDir holds the dataset for test:N (default data/<dataset>).
	DataDir string
	// Class asks for class-conditional samples by classifier guidance: one
	// class, a comma-separated list, or "all"; then N samples of each
	// class are drawn, one grid row per class (one class: a square grid). Guidance is the weight w of
	// ∇ₓ log p(y | x, σ) added to the score (1 is Bayes' rule; the
	// commands' default is DefaultGuidance; 0 draws unguided samples, and is
	// the only value without a class). Classifier is the
	// noise-conditional classifier's checkpoint file or folder ("":
	// DefaultClassifier), trained on the model's dataset and process.
	Class      string
	Guidance   float64
	Classifier string
	// Autoguide, a score model's checkpoint file or folder, guides the
	// sampler away from that weaker model of the same data and noise (an
	// earlier checkpoint of the same run, or a smaller network): the score
	// is w s + (1 − w) s_guide for w = AutoguideWeight (sample.Autoguided;
	// 0: the checkpoint's recommendation, else DefaultAutoguidance; 1 to
	// 100). AutoguideSelf is the guide the checkpoint keeps of its own run;
	// "" is that guide where the checkpoint recommends it for the sampler
	// in use (its own), else none; AutoguideNone is none (a checkpoint
	// file named "self" or "none" is given as ./self). Every step then
	// evaluates both networks (except at w = 1, the unguided sampler).
	Autoguide       string
	AutoguideWeight float64
	// Device is where the score network runs: "cpu"; "cuda", the first GPU
	// (a build with -tags gpu), or "cuda:N", GPU N; or "" — the first GPU
	// where the build has the tag and one is found, else the CPU. The
	// classifier of -class runs there too; the samplers' own arithmetic
	// stays on the CPU.
	Device string
	// Opened, when not nil, is the device to run on, opened by the caller
	// with OpenDevice (which closes it); Device is then not looked at.
	Opened *cuda.Device
	Log    io.Writer
	Bar    bool
	// filmCols is the -gif film's columns (0: ⌈√N⌉): a class's row, as in
	// the grid (the film wrapped the classes across rows).
	filmCols int
}

func (c Config) logw() io.Writer {
	if c.Log == nil {
		return io.Discard
	}
	return c.Log
}

// Validate reports what is wrong with c, if anything.
func (c Config) Validate() error {
	switch {
	case c.Ckpt == "":
		return fmt.Errorf("%w: -ckpt must name a checkpoint file or a folder of them", ErrConfig)
	case c.N < 1:
		return fmt.Errorf("%w: -n %d must be positive", ErrConfig, c.N)
	case !(c.Eps >= 0) || math.IsInf(c.Eps, 0):
		return fmt.Errorf("%w: -eps %g must be a positive finite number (0: the default)", ErrConfig, c.Eps)
	case c.Out == "" && c.OutDir == "" && c.GIF == "":
		return fmt.Errorf("%w: nothing to write: give -out, -out-dir or -gif", ErrConfig)
	case c.Batch < 0:
		return fmt.Errorf("%w: batch %d", ErrConfig, c.Batch)
	case !(c.SNR >= 0) || math.IsInf(c.SNR, 0):
		return fmt.Errorf("%w: -snr %g must be a positive finite number (0: the default)", ErrConfig, c.SNR)
	case c.Tol != 0 && !(c.Tol >= sample.MinTol && c.Tol < 1):
		return fmt.Errorf("%w: -tol %g must be from %g to below 1 (the solver's relative error; float64's rounding cannot meet less)", ErrConfig, c.Tol, sample.MinTol)
	}
	return c.validateDraw()
}

// MaxSteps bounds -steps and -steps-per-level: the samplers hold a
// schedule of one value per step, and a step costs one or two network
// evaluations per image (a million is days of work for one image even of
// the smallest network here; the papers' samplers take 10 to 2000).
const MaxSteps = checkpoint.MaxSampleSteps

// validateDraw checks the settings of drawing (Draw writes nothing).
func (c Config) validateDraw() error {
	switch {
	case c.StepsPerLevel < 0 || c.StepsPerLevel > MaxSteps:
		return fmt.Errorf("%w: -steps-per-level %d must be from 1 to %d (0: the default)", ErrConfig, c.StepsPerLevel, MaxSteps)
	case c.Steps < 0 || c.Steps > MaxSteps:
		return fmt.Errorf("%w: -steps %d must be from 1 to %d (0: the sampler's default)", ErrConfig, c.Steps, MaxSteps)
	case c.Class != "" && (c.Inpaint != "" || c.Colorize != ""):
		return fmt.Errorf("%w: -class and -inpaint/-colorize are one at a time", ErrConfig)
	case c.Class == "" && c.Guidance != 0:
		return fmt.Errorf("%w: -guidance goes with -class", ErrConfig)
	case c.Guidance < 0 || math.IsNaN(c.Guidance) || math.IsInf(c.Guidance, 0):
		return fmt.Errorf("%w: -guidance %g must be a finite number ≥ 0", ErrConfig, c.Guidance)
	case c.Autoguide == AutoguideNone && c.AutoguideWeight != 0:
		return fmt.Errorf("%w: -autoguide-weight goes with autoguidance, and -autoguide none turns it off", ErrConfig)
	case c.AutoguideWeight != 0 && !(c.AutoguideWeight >= 1 && c.AutoguideWeight <= 100):
		return fmt.Errorf("%w: -autoguide-weight %g must be a number from 1 (no guidance) to 100", ErrConfig, c.AutoguideWeight)
	case c.Churn < 0 || math.IsNaN(c.Churn) || math.IsInf(c.Churn, 0):
		return fmt.Errorf("%w: -churn %g must be a finite number ≥ 0", ErrConfig, c.Churn)
	case c.ChurnMin < 0 || math.IsNaN(c.ChurnMin) || c.ChurnMax < 0 || math.IsNaN(c.ChurnMax) || (c.ChurnMax > 0 && c.ChurnMin > c.ChurnMax):
		return fmt.Errorf("%w: -churn-min %g and -churn-max %g must be 0 ≤ min ≤ max", ErrConfig, c.ChurnMin, c.ChurnMax)
	case c.ChurnNoise < 0 || math.IsNaN(c.ChurnNoise) || math.IsInf(c.ChurnNoise, 0):
		return fmt.Errorf("%w: -churn-noise %g must be a finite number > 0", ErrConfig, c.ChurnNoise)
	}
	if c.Sampler != "" && !slices.Contains(Samplers, c.Sampler) {
		return fmt.Errorf("%w: unknown -sampler %q (%s)", ErrConfig, c.Sampler, strings.Join(Samplers, ", "))
	}
	if c.Class != "" && c.Class != "all" {
		// Its form, before the classifier is looked for (which then knows
		// how many classes there are).
		if _, err := parseClasses(c.Class, math.MaxInt32); err != nil {
			return err
		}
	}
	return nil
}

// Samplers are the sampler names Config.Sampler takes.
var Samplers = checkpoint.Samplers

// DefaultSteps are the discretisation steps of each sampler when -steps is
// not given.
var DefaultSteps = map[string]int{"em": 1000, "pc": 1000, "ddpm": 1000, "ddim": 100, "heun": 50}

// samplerFor checks that a sampler fits the process a model was trained on
// and returns the sampler to use ("" picks the process's default).
func samplerFor(name string, p sde.Process) (string, error) {
	discrete := p.Name() == "ncsn"
	if name == "" {
		if discrete {
			return "ald", nil
		}
		return "pc", nil
	}
	switch {
	case name == "ald" && !discrete:
		return "", fmt.Errorf("%w: -sampler ald runs NCSN's ladder of noise levels; this model was trained on the continuous %s SDE (use %s)", ErrConfig, p.Name(), fitting(p))
	case name != "ald" && discrete:
		return "", fmt.Errorf("%w: -sampler %s needs a model trained in continuous time (cmd/train -sde ve, vp or subvp); this one knows only its %d noise levels (use ald)", ErrConfig, name, len(p.Spec().Sigmas))
	case (name == "ddpm" || name == "ddim") && p.Name() != "vp":
		return "", fmt.Errorf("%w: -sampler %s is for VP models; this one was trained on the %s SDE (use %s)", ErrConfig, name, p.Name(), fitting(p))
	case name == "heun" && p.Name() != "ve":
		return "", fmt.Errorf("%w: -sampler heun integrates the VE process in σ; this model was trained on the %s SDE (use %s)", ErrConfig, p.Name(), fitting(p))
	}
	return name, nil
}

// fitsSampler refuses the settings of other samplers than c.Sampler's,
// which it would silently ignore.
func (c Config) fitsSampler() error {
	switch {
	case c.Sampler != "ald" && (c.StepsPerLevel != 0 || c.Eps != 0):
		return fmt.Errorf("%w: -steps-per-level and -eps are ald's (annealed Langevin dynamics); this run samples with %s (its -steps sets the steps)", ErrConfig, c.Sampler)
	case c.Sampler == "ald" && c.Steps != 0:
		return fmt.Errorf("%w: -steps is for the continuous-time samplers; ald takes -steps-per-level (Langevin steps per noise level)", ErrConfig)
	case c.Sampler != "pc" && c.SNR != 0:
		return fmt.Errorf("%w: -snr is pc's (its corrector's signal-to-noise ratio); this run samples with %s", ErrConfig, c.Sampler)
	case c.Sampler != "ode" && c.Tol != 0:
		return fmt.Errorf("%w: -tol is ode's (its solver's tolerance); this run samples with %s", ErrConfig, c.Sampler)
	}
	return nil
}

// fitting names the samplers of a continuous process.
func fitting(p sde.Process) string {
	switch p.Name() {
	case "ve":
		return "em, pc, ode or heun"
	case "vp":
		return "em, pc, ode, ddpm or ddim"
	}
	return "em, pc or ode"
}

// stochastic names the samplers of a process that can impose a constraint.
func stochastic(process string) string {
	switch process {
	case "ncsn":
		return "ald"
	case "ve":
		return "em, pc or heun with -churn"
	case "vp":
		return "em, pc or ddpm"
	}
	return "em or pc"
}

// Result describes what was drawn.
type Result struct {
	Checkpoint              string
	Step                    int
	Images                  []float64 // N images in (N,C,H,W) order, in [0,1]
	Channels, Height, Width int
	Seconds                 float64
	Sampler                 string // the sampler that drew them
	Evals                   int    // its network evaluations (each over all N images)
	// Autoguide is the guide of autoguidance (Config.Autoguide as given, or
	// AutoguideSelf where the checkpoint recommended its own) and
	// AutoguideWeight its weight w ("" and 0: none).
	Autoguide       string
	AutoguideWeight float64
	// Tiles come before the samples in the grid: the input of an inpainting
	// (its missing part grey) and its mask, or the grey input of a
	// colourisation.
	Tiles []float64
	// Labels are the classes asked of the samples (class-conditional runs),
	// one per sample; the grid then has one row per class.
	Labels []int
	Cols   int // grid columns (0: ⌈√n⌉)
	// film is the sampling film (Config.GIF), written with the samples
	// once they are known not to have diverged.
	film *film
}

// beforeWrite runs between the drawing and the writing of Run's outputs
// (a test's window on the -out-dir lock).
var beforeWrite = func(Config) {}

// Run loads the checkpoint, samples, and writes the PNGs.
func Run(c Config) (*Result, error) {
	if c.Log == nil {
		c.Log = io.Discard
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := c.checkOutputs(); err != nil {
		return nil, err
	}
	st, path, err := checkpoint.LoadFrom(c.Ckpt)
	if err != nil {
		return nil, err
	}
	if err := c.outsideImages(st.Dataset); err != nil {
		return nil, err
	}
	if c.OutDir != "" {
		// Held until the samples are written (res.write below).
		release, err := claimOutDir(c)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	which := "EMA weights"
	if c.Raw {
		which = "raw weights"
	}
	what := english.Count(c.N, "image")
	if c.Class != "" {
		what = fmt.Sprintf("%d images of each class of -class %s", c.N, c.Class)
	}
	// The device first: its line (or why there is none) is the first.
	if c.Opened == nil {
		dev, err := openDevice(c.Device, c.Log)
		if err != nil {
			return nil, err
		}
		if dev != nil {
			defer dev.Close()
			c.Opened = dev
		}
	}
	where := "backend: " + blas.Backend() + "; " + kernel.Describe()
	if c.Opened != nil {
		where = "on the device above"
	}
	fmt.Fprintf(c.Log, "sampling %s from %s (step %d, %s), %s; %s\n", what, path, st.Step, st.Dataset, which, where)
	res, err := Draw(st, c)
	if err != nil {
		return nil, err
	}
	res.Checkpoint = path
	beforeWrite(c)
	if err := res.write(c); err != nil {
		return nil, err
	}
	return res, nil
}

// maxSampleBytes bounds the memory of the samples of one run (float64
// values), so that a huge -n is an error rather than an out-of-memory crash.
const maxSampleBytes = 4 << 30

// Check reports what Draw would refuse in c for st — the sampler and its
// settings, the classifier of guidance and the guide of autoguidance, the
// inputs of an inpainting, the samples' memory — without drawing, for
// callers with slow work to do before they draw.
func Check(st *checkpoint.State, c Config) error {
	c, _, _, _, err := prepare(st, c)
	if err != nil {
		return err
	}
	n := c.N
	if c.Class != "" {
		_, _, classes, err := classifierFor(st, c)
		if err != nil {
			return err
		}
		n *= len(classes)
	}
	if c.Autoguide != "" {
		if _, _, _, err := guideFor(st, c); err != nil {
			return err
		}
	}
	c.filmCols = filmColumns(c.N, n, c.Class != "")
	if err := filmFits(c, st, n); err != nil {
		return err
	}
	return fitsMemory(st, c.N, n)
}

// filmColumns is the -gif film's columns for n samples, perClass of each
// class where classed: a row a class; one class, or none, a square grid
// (0: ⌈√n⌉; -class 7 -n 64 was one strip of 64).
func filmColumns(perClass, n int, classed bool) int {
	if classed && n > perClass {
		return perClass
	}
	return 0
}

// maxGIFSide is the most pixels a GIF has on a side (a 16-bit field).
const maxGIFSide = 65535

// filmFits refuses, before the drawing, a -gif film of n samples (c.filmCols
// a row) too wide or tall for a GIF: found after the drawing, it failed the
// run and lost its grid too.
func filmFits(c Config, st *checkpoint.State, n int) error {
	if c.GIF == "" {
		return nil
	}
	w, h := sample.GridSize(n, c.filmCols, st.Model.Height, st.Model.Width)
	if w > maxGIFSide || h > maxGIFSide {
		return fmt.Errorf("%w: -gif %s: the film of %d samples would be %d×%d pixels; a GIF is at most %d on a side: ask for fewer samples, or leave out -gif", ErrConfig, c.GIF, n, w, h, maxGIFSide)
	}
	return nil
}

// fitsMemory refuses n samples of st's model (perClass of each class of
// -class) that would take more than maxSampleBytes.
func fitsMemory(st *checkpoint.State, perClass, n int) error {
	if need := float64(n) * float64(st.Model.Dim()) * 8; need > maxSampleBytes {
		return fmt.Errorf("%w: -n %d: %d images of %d values would take %.0f GiB of memory (at most %d GiB): ask for fewer (cmd/sample: several runs with other -seed give more)", ErrConfig, perClass, n, st.Model.Dim(), need/(1<<30), maxSampleBytes>>30)
	}
	return nil
}

// prepare checks c against st and completes it with the checkpoint's
// recommendations for its own sampler; it returns the process, and the
// constraint and its tiles of an inpainting or colourisation.
func prepare(st *checkpoint.State, c Config) (Config, sde.Process, sample.Constraint, []float64, error) {
	proc, err := sde.New(st.Process)
	if err != nil {
		return c, nil, nil, nil, fmt.Errorf("generate: %w", err)
	}
	if err := c.validateDraw(); err != nil {
		return c, nil, nil, nil, err
	}
	if st.Model.IsClassifier() {
		return c, nil, nil, nil, fmt.Errorf("%w: this checkpoint is a noise-conditional classifier, not a score model; give it to -classifier with -class", ErrConfig)
	}
	if c.Sampler == "" {
		c.Sampler = st.SampleSampler // "" still: the process's default
		if c.Sampler != "" && !slices.Contains(Samplers, c.Sampler) {
			// A Go caller's name: it was taken for the sampler asked for,
			// and refused with heun's flags' message.
			fmt.Fprintf(c.logw(), "note: the checkpoint recommends a sampler this build does not have (%q): the process's default runs\n", c.Sampler)
			c.Sampler = ""
		}
	}
	if c.Sampler, err = samplerFor(c.Sampler, proc); err != nil {
		return c, nil, nil, nil, err
	}
	if c.Sampler == st.SampleSampler && c.Sampler != "ald" {
		// The checkpoint's own sampler: its recommended settings, unless given.
		if c.Steps == 0 {
			c.Steps = st.SampleSteps
		}
		if !c.ChurnSet && c.Churn == 0 {
			c.Churn = st.SampleChurn
		}
		if c.Autoguide == "" && st.SampleAutoguide > 0 && st.Guide != nil {
			c.Autoguide = AutoguideSelf
			if c.AutoguideWeight == 0 {
				c.AutoguideWeight = st.SampleAutoguide
			}
		}
	}
	if c.Autoguide == AutoguideSelf && c.AutoguideWeight == 0 && st.SampleAutoguide > 0 {
		c.AutoguideWeight = st.SampleAutoguide
	}
	switch {
	case c.Autoguide == "" && c.AutoguideWeight != 0:
		return c, nil, nil, nil, fmt.Errorf("%w: -autoguide-weight goes with -autoguide (the weaker model's checkpoint, or self); this checkpoint recommends no autoguidance for -sampler %s", ErrConfig, c.Sampler)
	case c.Autoguide == AutoguideNone:
		c.Autoguide = ""
	}
	cons, tiles, err := constraint(st, c)
	if err != nil {
		return c, nil, nil, nil, err
	}
	if cons != nil && (c.Sampler == "ode" || c.Sampler == "ddim" || (c.Sampler == "heun" && c.Churn == 0)) {
		return c, nil, nil, nil, fmt.Errorf("%w: -sampler %s is deterministic; -inpaint and -colorize need a stochastic one (for this %s model: %s)", ErrConfig, c.Sampler, st.Process.Name, stochastic(st.Process.Name))
	}
	if (c.Churn != 0 || c.ChurnMin != 0 || c.ChurnMax != 0 || c.ChurnNoise != 0) && c.Sampler != "heun" {
		return c, nil, nil, nil, fmt.Errorf("%w: -churn, -churn-min, -churn-max and -churn-noise are heun's; this run samples with %s", ErrConfig, c.Sampler)
	}
	if c.Sampler == "heun" && c.Churn == 0 && (c.ChurnMin != 0 || c.ChurnMax != 0 || c.ChurnNoise != 0) {
		// They shape the churn's noise: without churn there is none, and
		// they were ignored.
		return c, nil, nil, nil, fmt.Errorf("%w: -churn-min, -churn-max and -churn-noise shape heun's churn, and this run has none (-churn 0): give -churn", ErrConfig)
	}
	if err := c.fitsSampler(); err != nil {
		return c, nil, nil, nil, err
	}
	if c.DenoiseSet && !c.Denoise && slices.Contains([]string{"heun", "ddim"}, c.Sampler) {
		return c, nil, nil, nil, fmt.Errorf("%w: -denoise=false: %s's last step lands on its estimate of the clean image anyway; -denoise goes with ald, em, pc, ddpm and ode", ErrConfig, c.Sampler)
	}
	return c, proc, cons, tiles, nil
}

// Draw samples from a loaded checkpoint without writing anything (with
// c.GIF, the film is in the Result: WriteFilm writes it).
func Draw(st *checkpoint.State, c Config) (*Result, error) {
	if c.Log == nil {
		c.Log = io.Discard
	}
	c, proc, cons, tiles, err := prepare(st, c)
	if err != nil {
		return nil, err
	}
	batch := c.Batch
	if batch == 0 {
		batch = min(c.N, 128)
	}
	weights := st.EMA
	if c.Raw {
		weights = st.Weights
	}
	dev := c.Opened
	if dev == nil {
		if dev, err = openDevice(c.Device, c.Log); err != nil {
			return nil, err
		}
		if dev != nil {
			defer dev.Close()
		}
	}
	scorer, err := newScorer(dev, st.Model, weights, batch)
	if err != nil {
		return nil, err
	}
	defer scorer.Close()
	main, perEval, closeGuide, err := autoguide(st, c, dev, scorer, batch)
	if err != nil {
		return nil, err
	}
	defer closeGuide()
	sc, labels, done, err := guide(st, c, dev, main, batch)
	if err != nil {
		return nil, err
	}
	defer done()
	perClass := c.N
	if labels != nil {
		c.N = len(labels)
	}
	if err := fitsMemory(st, perClass, c.N); err != nil {
		return nil, err
	}
	c.filmCols = filmColumns(perClass, c.N, labels != nil)
	if err := filmFits(c, st, c.N); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(c.Seed, 0x73616d70))
	x := make([]float64, c.N*st.Model.Dim())
	t0 := time.Now()
	var evals int
	var film *film
	ds, onDevice := scorer.(*model.DeviceScorer)
	switch {
	case onDevice && c.Sampler == "ald" && cons == nil && labels == nil && c.GIF == "" && perEval == 1:
		if evals, err = annealedOnDevice(dev, ds, st, c, x, r); err != nil {
			return nil, err
		}
	case c.Sampler == "ald":
		if onDevice && c.GIF != "" && cons == nil && labels == nil && perEval == 1 {
			fmt.Fprintf(c.Log, "note: -gif: annealed Langevin records its frames on the CPU (the network still runs on the GPU), with the CPU's random numbers: the samples differ from this command's without -gif\n")
		}
		evals, film, err = annealed(st, c, sc, x, r, cons)
	default:
		evals, film, err = continuous(proc, st, c, sc, x, r, cons)
	}
	// A sampler whose result is not finite says so (sample.ErrDiverged): the
	// count below says it in this package's words, the same for every path.
	if err != nil && !(errors.Is(err, sample.ErrDiverged) && slices.ContainsFunc(x, notFinite)) {
		return nil, err
	}
	evals *= perEval // autoguidance: two networks per score
	bad := 0
	for i, v := range x {
		if notFinite(v) {
			bad++
		}
		x[i] = min(1, max(0, v))
	}
	if bad > 0 {
		return nil, fmt.Errorf("generate: the sampler diverged: %d of %d sample values are NaN or infinite", bad, len(x))
	}
	if cons != nil { // the known part, exactly, within [0, 1]
		cons.Exact(x)
	}
	secs := time.Since(t0).Seconds()
	fmt.Fprintf(c.Log, "sampler %s: %d network evaluations, %.1f s\n", c.Sampler, evals, secs)
	res := &Result{Step: st.Step, Images: x, Channels: st.Model.Channels, Height: st.Model.Height, Width: st.Model.Width,
		Seconds: secs, Sampler: c.Sampler, Evals: evals, Tiles: tiles, Labels: labels, film: film}
	if ag, ok := main.(*sample.Autoguided); ok {
		res.Autoguide, res.AutoguideWeight = c.Autoguide, ag.Weight
	}
	res.Cols = c.filmCols
	return res, nil
}

// annealed runs annealed Langevin dynamics from x₀ ~ U[0,1], as NCSN does,
// filming it if asked; it returns the network evaluations and the film.
func annealed(st *checkpoint.State, c Config, sc sample.Score, x []float64, r *rand.Rand, cons sample.Constraint) (int, *film, error) {
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
	a := sample.Annealed{Sigmas: st.Sigmas, StepsPerLevel: c.StepsPerLevel, Eps: c.Eps, Denoise: c.Denoise, Constraint: cons}
	evals := 0
	var bar *progressbar.ProgressBar
	if c.Bar {
		total := len(st.Sigmas)*c.StepsPerLevel + 1
		bar = newBar(total, c.Log)
	}
	a.Progress = func(done, total int) {
		evals = done
		if bar != nil {
			bar.Describe(fmt.Sprintf("level %d/%d", min(1+(done-1)/c.StepsPerLevel, len(st.Sigmas)), len(st.Sigmas)))
			bar.Set(done)
		}
	}
	var film *film
	if c.GIF != "" {
		film = newFilm(st.Model.Channels, st.Model.Height, st.Model.Width, c.filmCols)
	}
	a.AfterLevel = func(level int, x []float64) {
		if bar == nil {
			fmt.Fprintf(c.Log, "level %d/%d done (σ = %.4g)\n", level+1, len(st.Sigmas), st.Sigmas[level])
		}
		if film != nil {
			film.add(x, c.N, 50)
		}
	}
	for i := range x {
		x[i] = r.Float64() // x₀ ~ U[0,1], as NCSN
	}
	if film != nil {
		film.add(x, c.N, 100)
	}
	err := sample.AnnealedLangevin(sc, x, a, r)
	if bar != nil {
		bar.Finish() // cleared also where it failed: the error's line stands alone
	}
	if err != nil {
		return evals, nil, err
	}
	if film != nil {
		clamped := make([]float64, len(x))
		for i, v := range x {
			clamped[i] = min(1, max(0, v))
		}
		film.add(clamped, c.N, 300)
	}
	return evals, film, nil
}

// continuous runs a sampler of a continuous-time process from its prior,
// filming it if asked.
func continuous(p sde.Process, st *checkpoint.State, c Config, sc sample.Score, x []float64, r *rand.Rand, cons sample.Constraint) (int, *film, error) {
	if c.GIF != "" && c.Sampler == "ode" {
		return 0, nil, fmt.Errorf("%w: -gif films the samplers with fixed steps (ald, em, pc, ddpm, ddim, heun); the adaptive ode solver has none", ErrConfig)
	}
	steps := c.Steps
	if c.Sampler == "ode" {
		if steps != 0 {
			fmt.Fprintf(c.Log, "note: -steps %d is ignored by the adaptive ODE solver; -tol sets its accuracy\n", steps)
		}
	} else if steps == 0 {
		steps = DefaultSteps[c.Sampler]
	}
	cc := sample.Continuous{Process: p, Steps: steps, SNR: c.SNR, Tol: c.Tol, Churn: c.Churn, ChurnMin: c.ChurnMin, ChurnMax: c.ChurnMax, ChurnNoise: c.ChurnNoise, Dim: st.Model.Dim(), Denoise: c.Denoise, Constraint: cons}
	if c.Bar && c.Sampler != "ode" {
		total := steps
		switch c.Sampler {
		case "pc":
			total = 2 * steps
		case "heun":
			total = 2*steps - 1
		}
		bar := newBar(total, c.Log)
		defer bar.Finish()
		cc.Progress = func(evals int) { bar.Set(evals) }
	}
	sample.Prior(x, p, r)
	var film *film
	if c.GIF != "" {
		// About filmFrames frames from the prior to the last step.
		film = newFilm(st.Model.Channels, st.Model.Height, st.Model.Width, c.filmCols)
		film.add(x, c.N, 100)
		every := max(1, (steps+filmFrames-1)/filmFrames)
		cc.AfterStep = func(i, n int, x []float64) {
			switch {
			case i == n-1:
				film.add(x, c.N, 300)
			case (i+1)%every == 0:
				film.add(x, c.N, 50)
			}
		}
	}
	evals, err := runContinuous(c.Sampler, sc, x, cc, r)
	return evals, film, err
}

// filmFrames is about how many frames -gif takes of a continuous sampler.
const filmFrames = 12

// runContinuous runs the named sampler of a continuous-time process on x.
func runContinuous(name string, sc sample.Score, x []float64, cc sample.Continuous, r *rand.Rand) (int, error) {
	switch name {
	case "em":
		return sample.EulerMaruyama(sc, x, cc, r)
	case "pc":
		return sample.PredictorCorrector(sc, x, cc, r)
	case "ode":
		stats, err := sample.ProbabilityFlowRK45(sc, x, cc)
		return stats.Evals, err
	case "ddpm":
		return sample.Ancestral(sc, x, cc, r)
	case "ddim":
		return sample.DDIM(sc, x, cc)
	case "heun":
		return sample.Heun(sc, x, cc, r)
	}
	return 0, fmt.Errorf("%w: unknown sampler %q", ErrConfig, name)
}

func newBar(total int, w io.Writer) *progressbar.ProgressBar {
	return progressbar.NewOptions(total, progressbar.OptionSetWriter(w), progressbar.OptionSetWidth(20),
		progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(200*time.Millisecond))
}

// WriteFilm writes the sampling film that Draw recorded (Config.GIF) into
// the GIF file path, atomically; an error where none was recorded.
func (r *Result) WriteFilm(path string) error {
	if r.film == nil {
		return fmt.Errorf("%w: no film was recorded (Config.GIF, with a sampler of fixed steps)", ErrConfig)
	}
	return r.film.write(path)
}

func (r *Result) write(c Config) error {
	n := len(r.Images) / (r.Channels * r.Height * r.Width)
	// All or none: the film, the grid and the samples land together, so a
	// full disk or a failure half-way leaves every earlier output as it was
	// (the film and grid of a failed run replaced them), and no partial
	// -out-dir set that a metric could take for the whole.
	set := fsutil.NewFiles()
	if c.OutDir != "" {
		var err error
		if set, err = fsutil.NewSet(c.OutDir); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
	}
	defer set.Abort()
	var wrote []string
	kept := "none of the outputs written, the earlier ones kept"
	if r.film != nil && c.GIF != "" {
		note := fsutil.Replacing(c.GIF)
		if err := set.WriteFile(c.GIF, r.film.encode); err != nil {
			return fmt.Errorf("generate: writing %s (%s): %w", c.GIF, kept, err)
		}
		wrote = append(wrote, fmt.Sprintf("wrote %s (%d frames%s)", c.GIF, len(r.film.g.Image), note))
	}
	if c.Out != "" {
		all := append(append([]float64(nil), r.Tiles...), r.Images...)
		k := len(all) / (r.Channels * r.Height * r.Width)
		cols := r.Cols
		if cols == 0 {
			cols = int(math.Ceil(math.Sqrt(float64(k))))
		}
		img, err := sample.GridCols(all, k, cols, r.Channels, r.Height, r.Width)
		if err != nil {
			return err
		}
		note := fsutil.Replacing(c.Out)
		if err := set.WriteFile(c.Out, func(w io.Writer) error { return sample.WritePNG(w, img) }); err != nil {
			return fmt.Errorf("generate: writing %s (%s): %w", c.Out, kept, err)
		}
		wrote = append(wrote, fmt.Sprintf("wrote %s (%s, %.0f s%s)", c.Out, english.Count(n, "sample"), r.Seconds, note))
	}
	if c.OutDir != "" {
		d := r.Channels * r.Height * r.Width
		for i := 0; i < n; i++ {
			img, err := sample.Grid(r.Images[i*d:(i+1)*d], 1, r.Channels, r.Height, r.Width)
			if err != nil {
				return err
			}
			img = crop(img, r.Width, r.Height)
			name := fmt.Sprintf("sample-%05d.png", i)
			if err := set.Write(name, func(w io.Writer) error { return sample.WritePNG(w, img) }); err != nil {
				return fmt.Errorf("generate: writing %s (%s): %w", filepath.Join(c.OutDir, name), kept, err)
			}
		}
		wrote = append(wrote, fmt.Sprintf("wrote %s to %s", english.Count(n, "PNG"), c.OutDir))
	}
	if _, err := set.Commit(); err != nil {
		return fmt.Errorf("generate: %s: %w", kept, err)
	}
	for _, line := range wrote {
		fmt.Fprintln(c.Log, line)
	}
	return nil
}

func notFinite(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }
