// Command sigmas prints the noise schedule NCSNv2's rules choose for a
// training set: σ₁ (its largest pairwise distance, exact), γ, L and ε.
//
//	go run ./cmd/sigmas -dataset mnist|fashion|cifar10
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/train"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sigmas", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataset := fs.String("dataset", "mnist", "dataset: mnist, fashion or cifar10")
	dataDir := fs.String("data-dir", "", "data directory (default ./data/<dataset>)")
	sigmaMin := fs.Float64("sigma-min", 0.01, "σ_L")
	T := fs.Int("steps-per-level", 5, "Langevin steps per level T")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sigmas: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *T < 1 || !(*sigmaMin > 0) {
		fmt.Fprintf(stderr, "sigmas: -steps-per-level %d and -sigma-min %g must be positive\n", *T, *sigmaMin)
		return 2
	}
	if !slices.Contains(data.Names, *dataset) {
		fmt.Fprintf(stderr, "sigmas: unknown dataset %q (mnist, fashion or cifar10)\n", *dataset)
		return 2
	}
	o := data.Options{Dir: *dataDir, Log: stderr}
	ds, err := data.Load(*dataset, o, "train")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if _, err := train.ScheduleFromData(ds, *sigmaMin, *T, stdout); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
