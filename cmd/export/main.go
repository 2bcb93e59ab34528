// Command export writes a checkpoint's weights as a safetensors file that
// PyTorch loads into the reference network (../shared/bench/torch_ref.py's
// ScoreNet, strict=True), or with -import turns such a file back into a
// checkpoint that cmd/sample draws from.
//
//	go run ./cmd/export -ckpt checkpoints -out model.safetensors [-weights ema|raw]
//	go run ./cmd/export -import model.safetensors -out DIR [-config model.json] [-dataset mnist] [-sde ncsn]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/export"
	"github.com/ncsn-go/ncsn/internal/cli"
	"github.com/ncsn-go/ncsn/sde"
)

func main() {
	cli.KeepOnClosedPipe()  // `… 2>&1 | head` must not kill the work half-way
	cli.RemoveTempsOnStop() // Ctrl-C mid-write leaves no temporary file
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c export.Config
	fs.StringVar(&c.Ckpt, "ckpt", "checkpoints", "checkpoint file, or a folder (its latest checkpoint), to export")
	out := fs.String("out", "", "the safetensors file to write (export), or the checkpoint folder to write (-import)")
	fs.StringVar(&c.Weights, "weights", "ema", "which weights to export: ema (what sampling uses) or raw")
	fs.BoolVar(&c.Force, "force", false, "replace an existing -out file")
	fs.StringVar(&c.Import, "import", "", "a safetensors file to import as a checkpoint into the folder -out")
	fs.StringVar(&c.ModelConfig, "config", "", "-import: a JSON model configuration, for files without our metadata (default: read from the tensors' shapes)")
	fs.StringVar(&c.Dataset, "dataset", "", "-import: the dataset, for files without our metadata (default mnist)")
	fs.StringVar(&c.SDE, "sde", "", "-import: the diffusion process, for files without our metadata (default ncsn, σ 1 → 0.01 over 10 levels)")
	if err := cli.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "export: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := cli.EmptyGiven(fs); err != nil { // "" would mean the default, silently
		fmt.Fprintln(stderr, "export:", err)
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	importOnly, exportOnly := []string{"config", "dataset", "sde"}, []string{"ckpt", "weights", "force"}
	wrong, mode := importOnly, "export (without -import)"
	if c.Import != "" {
		wrong, mode = exportOnly, "-import"
	}
	for _, f := range wrong {
		if set[f] {
			fmt.Fprintf(stderr, "export: -%s does not go with %s\n", f, mode)
			return 2
		}
	}
	// Names checked here, as cmd/train and cmd/sigmas do: a command-line
	// mistake (exit 2), not a failure of the import.
	if _, folder := data.IsFolder(c.Dataset); set["dataset"] && !folder && !slices.Contains(data.Names, c.Dataset) {
		fmt.Fprintf(stderr, "export: -dataset %q: unknown dataset (mnist, fashion, cifar10 or folder:PATH)\n", c.Dataset)
		return 2
	}
	if set["sde"] && c.SDE != "" { // "": the default, ncsn
		if _, err := sde.Default(c.SDE); err != nil {
			fmt.Fprintf(stderr, "export: -sde %q: unknown process (ncsn, ve, vp or subvp)\n", c.SDE)
			return 2
		}
	}
	if c.Weights != "ema" && c.Weights != "raw" {
		fmt.Fprintf(stderr, "export: -weights %q must be ema or raw\n", c.Weights)
		return 2
	}
	c.Log = stderr
	var err error
	if c.Import != "" {
		c.OutDir = *out
		_, err = export.Import(c)
	} else {
		c.Out = *out
		err = export.Export(c)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
