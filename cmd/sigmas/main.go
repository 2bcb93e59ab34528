// Command sigmas prints the noise schedule NCSNv2's rules choose for a
// training set: σ₁ (its largest pairwise distance, exact), γ, L and ε.
//
//	go run ./cmd/sigmas -dataset mnist|fashion|cifar10|folder:PATH [-size 32|64] [-grey]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/internal/cli"
	"github.com/ncsn-go/ncsn/train"
)

func main() {
	cli.KeepOnClosedPipe()  // `… 2>&1 | head` must not kill the work half-way
	cli.RemoveTempsOnStop() // Ctrl-C mid-write leaves no temporary file
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sigmas", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataset := fs.String("dataset", "mnist", "dataset: mnist, fashion, cifar10, or folder:PATH")
	dataDir := fs.String("data-dir", "", "data directory (default ./data/<dataset>; folders: ./data/folders, the decoded cache)")
	size := fs.Int("size", 32, "folder datasets: image side, 32 or 64")
	grey := fs.Bool("grey", false, "folder datasets: grey images")
	sigmaMin := fs.Float64("sigma-min", 0.01, "σ_L")
	T := fs.Int("steps-per-level", 5, "Langevin steps per level T")
	if err := cli.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sigmas: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := cli.EmptyGiven(fs); err != nil { // "" would mean the default, silently
		fmt.Fprintln(stderr, "sigmas:", err)
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	_, folder := data.IsFolder(*dataset)
	switch {
	case *T < 1:
		fmt.Fprintf(stderr, "sigmas: -steps-per-level %d must be positive\n", *T)
		return 2
	case !(*sigmaMin > 0 && *sigmaMin < 1):
		fmt.Fprintf(stderr, "sigmas: -sigma-min %g must be in (0, 1): the smallest noise on images in [0, 1]\n", *sigmaMin)
		return 2
	case !folder && (set["size"] || set["grey"]):
		fmt.Fprintln(stderr, "sigmas: -size and -grey go with -dataset folder:PATH")
		return 2
	}
	var ds *data.Dataset
	var err error
	if path, ok := data.IsFolder(*dataset); ok {
		ds, _, err = data.LoadFolder(data.FolderOptions{Path: path, Size: *size, Grey: *grey, CacheDir: *dataDir, Log: stderr})
	} else if !slices.Contains(data.Names, *dataset) {
		fmt.Fprintf(stderr, "sigmas: unknown dataset %q (mnist, fashion, cifar10 or folder:PATH)\n", *dataset)
		return 2
	} else {
		ds, err = data.Load(*dataset, data.Options{Dir: *dataDir, Log: stderr}, "train")
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if _, err := train.ScheduleFromData(context.Background(), ds, *sigmaMin, *T, stdout); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
