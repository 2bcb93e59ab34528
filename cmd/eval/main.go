// Command eval scores samples against a dataset's test set with a classifier
// the project trains itself: confidence, class histogram and entropy, and the
// Fréchet distance of its features (with the real-data floor). It prints one
// JSON line, then a table. With -bpd it measures instead the bits per
// dimension of test images under a continuous-time checkpoint. Given a
// noise-conditional classifier's checkpoint, it reports the classifier's
// accuracy on noised test images per noise level. For a folder dataset
// (-dataset folder:PATH), which has no labels, it reports instead how far
// each sample is from its nearest training image, with a picture of the
// pairs (-nn-out), and a Fréchet distance of 8×8 thumbnails.
//
//	go run ./cmd/eval -dataset mnist -samples PATH [-n 256]
//	go run ./cmd/eval -dataset mnist -samples CHECKPOINT -bpd [-n 256]
//	go run ./cmd/eval -dataset mnist -samples CHECKPOINT -class all -n 26 [-guidance w]
//	go run ./cmd/eval -dataset mnist -samples checkpoints/classifier -n 2000
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/eval"
	"github.com/ncsn-go/ncsn/generate"
	"github.com/ncsn-go/ncsn/internal/cli"
)

func main() {
	cli.KeepOnClosedPipe()  // `… 2>&1 | head` must not kill the work half-way
	cli.RemoveTempsOnStop() // Ctrl-C mid-write leaves no temporary file
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c eval.Config
	fs.StringVar(&c.Dataset, "dataset", "", "dataset: mnist, fashion, cifar10, or folder:PATH (nearest training images and a thumbnail Fréchet distance instead of a classifier) (default: the checkpoint's where -samples names one, else mnist)")
	fs.StringVar(&c.DataDir, "data-dir", "", "data directory (default ./data/<dataset>); the classifier is cached there")
	fs.StringVar(&c.Samples, "samples", "", "a checkpoint file or folder, a folder of PNGs, or a grid PNG")
	fs.IntVar(&c.N, "n", 256, "samples to draw when -samples is a checkpoint")
	fs.Uint64Var(&c.Seed, "seed", 0, "random seed")
	fs.Float64Var(&c.Eps, "eps", 0, "sampler step size ε when drawing from a checkpoint (default: the checkpoint's, else cmd/sample's)")
	fs.IntVar(&c.StepsPerLevel, "steps-per-level", 0, "Langevin steps per level when drawing from a checkpoint (default: the checkpoint's, else 100)")
	fs.StringVar(&c.Sampler, "sampler", "", "sampler when drawing from a checkpoint, as cmd/sample's -sampler (default: the model's)")
	fs.IntVar(&c.Steps, "steps", 0, "discretisation steps when drawing from a checkpoint, as cmd/sample's -steps")
	fs.Float64Var(&c.SNR, "snr", 0, "pc's signal-to-noise ratio, as cmd/sample's -snr")
	fs.Float64Var(&c.Tol, "tol", 0, "ode's tolerance, as cmd/sample's -tol (and of -bpd's ODE)")
	fs.Float64Var(&c.Churn, "churn", 0, "heun's S_churn, as cmd/sample's -churn")
	fs.Float64Var(&c.ChurnMin, "churn-min", 0, "as cmd/sample's -churn-min")
	fs.Float64Var(&c.ChurnMax, "churn-max", 0, "as cmd/sample's -churn-max")
	fs.Float64Var(&c.ChurnNoise, "churn-noise", 0, "as cmd/sample's -churn-noise")
	fs.IntVar(&c.Size, "size", 0, "folder datasets, PNG samples: the image side (default: the checkpoint's, else 32)")
	fs.BoolVar(&c.Grey, "grey", false, "folder datasets, PNG samples: grey images")
	fs.StringVar(&c.NNOut, "nn-out", "nearest.png", "folder datasets: write samples beside their nearest training images here (empty: none)")
	fs.StringVar(&c.Class, "class", "", "draw class-conditional samples (-n of each class), as cmd/sample's -class, and report how many the classifier assigns to the class asked for")
	fs.Float64Var(&c.Guidance, "guidance", generate.DefaultGuidance, "with -class: the guidance weight w, as cmd/sample's")
	fs.StringVar(&c.Classifier, "classifier", "", "with -class: the noise-conditional classifier's checkpoint (default "+generate.DefaultClassifier+")")
	fs.StringVar(&c.Autoguide, "autoguide", "", "autoguidance when drawing: the weaker score model's checkpoint, self or none, as cmd/sample's -autoguide (default: the checkpoint's recommendation)")
	fs.Float64Var(&c.AutoguideWeight, "autoguide-weight", 0, "autoguidance's weight w, as cmd/sample's")
	fs.StringVar(&c.Device, "device", "", "where the network runs when drawing, under -bpd, or for a classifier's accuracy: cpu, or cuda / cuda:N (build with -tags gpu), as cmd/sample's")
	fs.BoolVar(&c.Raw, "raw", false, "draw from the trained weights instead of their moving average (EMA), as cmd/sample's -raw")
	denoise := fs.Bool("denoise", true, "the final denoising step when drawing, as cmd/sample's -denoise")
	fs.BoolVar(&c.BPD, "bpd", false, "bits/dim of -n test images under the checkpoint -samples names (continuous-time models)")
	if err := cli.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "eval: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c.ChurnSet, c.NSet, c.GreySet = set["churn"], set["n"], set["grey"]
	c.NoDenoise, c.DenoiseSet = !*denoise, set["denoise"]
	if err := cli.ZerosGiven(fs); err != nil {
		fmt.Fprintln(stderr, "eval:", err)
		return 2
	}
	if set["dataset"] && c.Dataset == "" {
		fmt.Fprintln(stderr, "eval: -dataset is empty: give mnist, fashion, cifar10 or folder:PATH")
		return 2
	}
	// -class "" and the like meant the default, silently; -nn-out "" writes none.
	if err := cli.EmptyGiven(fs, "nn-out"); err != nil {
		fmt.Fprintln(stderr, "eval:", err)
		return 2
	}
	if c.Dataset == "" {
		// A checkpoint's own dataset (a CIFAR-10 model's -bpd was refused
		// as "trained on cifar10, not mnist" without -dataset).
		if ds, ok := eval.CheckpointDataset(c.Samples); ok {
			c.Dataset = ds
			if ds != "mnist" {
				fmt.Fprintf(stderr, "eval: -dataset %s, the checkpoint's\n", ds)
			}
		} else {
			c.Dataset = "mnist"
		}
	}
	if _, folder := data.IsFolder(c.Dataset); !folder && (set["size"] || set["grey"] || set["nn-out"]) {
		fmt.Fprintln(stderr, "eval: -size, -grey and -nn-out go with -dataset folder:PATH")
		return 2
	}
	if c.Class == "" && (set["guidance"] || set["classifier"]) {
		// Both were ignored (the classifier's flag only where samples are
		// drawn: a classifier's -samples is refused with it elsewhere).
		fmt.Fprintln(stderr, "eval: -guidance and -classifier go with -class")
		return 2
	}
	if c.Class == "" {
		c.Guidance = 0
	}
	c.Log = stderr
	var res interface {
		JSON() string
		WriteTable(io.Writer)
	}
	var err error
	if _, ok := data.IsFolder(c.Dataset); ok && !c.BPD {
		res, err = eval.Folder(c)
	} else if eval.HoldsClassifier(c.Samples) {
		if c.BPD {
			fmt.Fprintf(stderr, "eval: -bpd needs a score model; %s is a noise-conditional classifier\n", c.Samples)
			return 1
		}
		res, err = eval.NoisyAccuracy(c)
	} else if c.BPD {
		res, err = eval.BitsPerDim(c)
	} else {
		res, err = eval.Run(c)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, res.JSON())
	res.WriteTable(stdout)
	return 0
}
