// Command plot draws a training run from its checkpoint folder: the loss and
// the loss per noise level against steps, the speed, and (with -progress) a
// strip of samples from every saved checkpoint.
//
//	go run ./cmd/plot [-run checkpoints] [-out plots] [-progress]
package main

import (
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"

	"github.com/ncsn-go/ncsn/generate"
	"github.com/ncsn-go/ncsn/internal/cli"
	"github.com/ncsn-go/ncsn/plot"
)

func main() {
	cli.KeepOnClosedPipe()  // `… 2>&1 | head` must not kill the work half-way
	cli.RemoveTempsOnStop() // Ctrl-C mid-write leaves no temporary file
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("run", "checkpoints", "the run's checkpoint folder (holds train.csv)")
	out := fs.String("out", "plots", "folder for the PNGs")
	smooth := fs.Int("smooth", 0, "moving-average window in steps (0: 1% of the run)")
	progress := fs.Bool("progress", false, "also sample a grid from every saved checkpoint (slow)")
	n := fs.Int("n", 16, "samples per checkpoint with -progress")
	T := fs.Int("steps-per-level", 0, "Langevin steps per level with -progress, for checkpoints sampled by annealed Langevin dynamics (default: the checkpoint's)")
	if err := cli.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "plot: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := cli.EmptyGiven(fs); err != nil { // "" would mean the default, silently
		fmt.Fprintln(stderr, "plot:", err)
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case *smooth < 0:
		fmt.Fprintf(stderr, "plot: -smooth %d must be ≥ 0 (0: 1%% of the run)\n", *smooth)
		return 2
	case (set["n"] || set["steps-per-level"]) && !*progress:
		fmt.Fprintln(stderr, "plot: -n and -steps-per-level go with -progress")
		return 2
	case *n < 1 || *n > plot.MaxProgressN:
		fmt.Fprintf(stderr, "plot: -n %d must be from 1 to %d (samples per checkpoint)\n", *n, plot.MaxProgressN)
		return 2
	case *T < 0 || *T > generate.MaxSteps:
		fmt.Fprintf(stderr, "plot: -steps-per-level %d must be from 1 to %d (0: each checkpoint's own)\n", *T, generate.MaxSteps)
		return 2
	}
	if fi, err := os.Stat(*dir); err == nil && !fi.IsDir() {
		// A checkpoint's path, say: the log is its folder's.
		fmt.Fprintf(stderr, "plot: -run %s is a file; give the run's folder (%s), which holds its train.csv\n", *dir, filepath.Dir(*dir))
		return 2
	}
	var progressImage func() (image.Image, error) // drawn before any file is written
	if *progress {
		if err := plot.CheckProgress(*dir, filepath.Join(*out, plot.ProgressFile)); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		progressImage = func() (image.Image, error) { return plot.ProgressImage(*dir, *n, 0, *T, stderr) }
	}
	files, err := plot.Curves(filepath.Join(*dir, "train.csv"), *out, *smooth, progressImage)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, f := range files {
		fmt.Fprintln(stderr, "wrote", f)
	}
	return 0
}
