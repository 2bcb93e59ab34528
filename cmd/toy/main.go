// Command toy runs every sampler and score-matching objective on
// distributions whose score is known exactly, prints the measured figures,
// and writes the pictures.
//
//	go run ./cmd/toy -out DIR
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ncsn-go/ncsn/internal/cli"
	"github.com/ncsn-go/ncsn/toy/demo"
)

func main() {
	cli.KeepOnClosedPipe()  // `… 2>&1 | head` must not kill the work half-way
	cli.RemoveTempsOnStop() // Ctrl-C mid-write leaves no temporary file
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("toy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "toy-out", "folder for the PNGs")
	seed := fs.Uint64("seed", 1, "random seed")
	points := fs.Int("points", 2000, fmt.Sprintf("samples per sampler (%d to %d)", demo.MinPoints, demo.MaxPoints))
	if err := cli.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "toy: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := cli.EmptyGiven(fs); err != nil { // "" would mean the default, silently
		fmt.Fprintln(stderr, "toy:", err)
		return 2
	}
	if *points < demo.MinPoints || *points > demo.MaxPoints { // a flag's error: exit 2, like the others
		fmt.Fprintf(stderr, "toy: -points %d must be from %d to %d\n", *points, demo.MinPoints, demo.MaxPoints)
		return 2
	}
	rep, err := demo.Run(demo.Config{OutDir: *out, Seed: *seed, Points: *points, Log: stderr})
	if err != nil {
		fmt.Fprintln(stderr, "toy:", err)
		return 1
	}
	rep.WriteTable(stdout)
	return 0
}
