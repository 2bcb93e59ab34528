// Command sample draws images from a trained score network, by annealed
// Langevin dynamics or the samplers of continuous-time models, and writes
// them as a PNG grid.
//
//	go run ./cmd/sample [-ckpt FILE|DIR] -out grid.png [-n 64] [-seed 0] ...
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ncsn-go/ncsn/generate"
	"github.com/ncsn-go/ncsn/internal/cli"
	"github.com/ncsn-go/ncsn/sample"
	"golang.org/x/term"
)

func main() {
	cli.KeepOnClosedPipe()  // `… 2>&1 | head` must not kill the work half-way
	cli.RemoveTempsOnStop() // Ctrl-C mid-write leaves no temporary file
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c generate.Config
	fs.StringVar(&c.Ckpt, "ckpt", "checkpoints", "checkpoint file, or a folder (its latest checkpoint)")
	fs.StringVar(&c.Out, "out", "grid.png", "output PNG grid (empty: none)")
	fs.StringVar(&c.OutDir, "out-dir", "", "also write each sample as its own PNG in this folder")
	fs.IntVar(&c.N, "n", 64, "number of samples")
	fs.Uint64Var(&c.Seed, "seed", 0, "random seed")
	fs.IntVar(&c.StepsPerLevel, "steps-per-level", 0, "Langevin steps per noise level T (default: the checkpoint's, else 100)")
	fs.Float64Var(&c.Eps, "eps", 0, fmt.Sprintf("step size ε, α_i = ε σ_i²/σ_L² (default: the checkpoint's, else %g)", sample.DefaultEps))
	fs.BoolVar(&c.Denoise, "denoise", true, "final denoising step x + σ_L² s(x, σ_L) (em, pc, ddpm: a noise-free last step; ode: one noise-free step from ε to 0 after the solve, as score_sde)")
	fs.StringVar(&c.Sampler, "sampler", "", "ald, em, pc, ode, ddpm, ddim or heun (EDM's second-order sampler, ve models) (default: the checkpoint's recommendation, e.g. heun for MNIST's default; else ald for ncsn models, pc for continuous-time ones)")
	fs.IntVar(&c.Steps, "steps", 0, "discretisation steps of em, pc, ddpm, ddim, heun (default: the checkpoint's for its own sampler, else 1000; ddim 100, heun 50)")
	fs.Float64Var(&c.SNR, "snr", 0, "pc: the Langevin corrector's signal-to-noise ratio (default 0.16)")
	fs.Float64Var(&c.Tol, "tol", 0, "ode: the RK45 solver's relative and absolute tolerance (default 1e-5)")
	fs.Float64Var(&c.Churn, "churn", 0, "heun: EDM's S_churn, noise added before each step; 0 is the deterministic sampler (default: the checkpoint's for its own sampler, else 0)")
	fs.Float64Var(&c.ChurnMin, "churn-min", 0, "heun: churn only at σ ≥ this (EDM's S_tmin)")
	fs.Float64Var(&c.ChurnMax, "churn-max", 0, "heun: churn only at σ ≤ this (EDM's S_tmax; default: no limit)")
	fs.Float64Var(&c.ChurnNoise, "churn-noise", 0, "heun: scale of the churn's noise (EDM's S_noise; default 1)")
	fs.BoolVar(&c.Raw, "raw", false, "sample from the trained weights instead of their moving average (EMA)")
	fs.StringVar(&c.Inpaint, "inpaint", "", "complete this image (test:N for test image N of the model's dataset, or an image file of the model's size); needs -mask")
	fs.StringVar(&c.Mask, "mask", "", "with -inpaint: the part to fill in, top|bottom|left|right|centre|random, or a PNG (white = keep)")
	fs.StringVar(&c.Colorize, "colorize", "", "colour models: draw colour versions of this image's grey levels (test:N or an image file)")
	fs.StringVar(&c.DataDir, "data-dir", "", "where test:N finds the dataset (default ./data/<dataset>)")
	fs.StringVar(&c.Class, "class", "", "class-conditional samples by classifier guidance: a class (7), a list (0,1,2: one row each) or all; -n is then per class (default 8)")
	fs.Float64Var(&c.Guidance, "guidance", generate.DefaultGuidance, "with -class: the weight w of the classifier's gradient (1: Bayes' rule; larger: sharper classes; 0: unguided)")
	fs.StringVar(&c.Classifier, "classifier", generate.DefaultClassifier, "with -class: the noise-conditional classifier's checkpoint (cmd/train -classifier)")
	fs.StringVar(&c.Autoguide, "autoguide", "", "autoguidance: a weaker score model of the same data and noise to guide away from: an earlier checkpoint of the run or a smaller network, self (the EMA of an earlier step that the checkpoint keeps, cmd/train -guide-at), or none; each step then evaluates both (default: the checkpoint's recommendation for its own sampler, e.g. self at w 2 for MNIST's default)")
	fs.Float64Var(&c.AutoguideWeight, "autoguide-weight", 0, fmt.Sprintf("autoguidance's weight w of w·s + (1−w)·s_guide, from 1 (no guidance) to 100 (default: the checkpoint's recommendation, else %g)", float64(generate.DefaultAutoguidance)))
	fs.StringVar(&c.Device, "device", "", "where the network runs: cpu, or cuda (the first GPU; build with -tags gpu) or cuda:N (GPU N); default: the GPU if the build has it and one is found")
	fs.StringVar(&c.GIF, "gif", "", "also write the sampling film as an animated GIF: the grid after every noise level (ald) or about every twelfth step (em, pc, ddpm, ddim, heun)")
	if err := cli.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sample: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c.ChurnSet, c.DenoiseSet = set["churn"], set["denoise"]
	if err := cli.ZerosGiven(fs); err != nil {
		fmt.Fprintln(stderr, "sample:", err)
		return 2
	}
	// -sampler "" ran the recommended sampler, -inpaint "$UNSET" plain
	// samples, silently; -out, -out-dir and -gif empty write none.
	if err := cli.EmptyGiven(fs, "out", "out-dir", "gif"); err != nil {
		fmt.Fprintln(stderr, "sample:", err)
		return 2
	}
	if c.Class != "" && !set["n"] {
		c.N = 8
	}
	if c.Class == "" && (set["guidance"] || set["classifier"]) {
		fmt.Fprintln(stderr, "sample: -guidance and -classifier go with -class")
		return 2
	}
	if c.Class == "" {
		c.Guidance = 0
	}
	if set["data-dir"] && !strings.HasPrefix(c.Inpaint, "test:") && !strings.HasPrefix(c.Colorize, "test:") {
		fmt.Fprintln(stderr, "sample: -data-dir goes with -inpaint test:N or -colorize test:N (the test image's dataset)")
		return 2
	}
	c.Log = stderr
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		c.Bar = true
	}
	if _, err := generate.Run(c); err != nil {
		fmt.Fprintln(stderr, err) // library errors carry their package prefix
		return 1
	}
	return 0
}
