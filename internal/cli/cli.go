// Package cli holds what the commands share in reading their command line
// (Parse: one-line flag errors) and in their process (KeepOnClosedPipe,
// RemoveTempsOnStop, StopContext).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// Parse parses args into fs, whose output is the command's error stream.
// -h (or -help) prints the flags there and returns flag.ErrHelp; any other
// error is one line, "NAME: ERROR (-h lists the flags)", where package flag
// would print the error and then every flag.
func Parse(fs *flag.FlagSet, args []string) error {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		if usage != nil {
			usage()
		} else {
			fmt.Fprintf(out, "Usage of %s:\n", fs.Name())
			fs.PrintDefaults()
		}
	case err != nil:
		fmt.Fprintf(out, "%s: %v (-h lists the flags)\n", fs.Name(), err)
	}
	return err
}

// unsetZeros are the sampling flags of cmd/sample and cmd/eval whose 0 the
// library takes for "not given" (the default), with what to say where a 0 is
// given on the command line.
var unsetZeros = []struct{ flag, why string }{
	{"eps", "-eps 0 must be > 0 (the Langevin step size; leave -eps out for the checkpoint's)"},
	{"steps-per-level", "-steps-per-level 0 must be ≥ 1 (leave it out for the checkpoint's)"},
	{"steps", "-steps 0 must be ≥ 1 (leave it out for the sampler's default)"},
	{"snr", "-snr 0 must be > 0 (the corrector's signal-to-noise ratio, 0.16 by default); -sampler em is pc without its corrector"},
	{"tol", "-tol 0 must be from 1e-10 to below 1 (leave it out for 1e-5)"},
	{"churn-max", "-churn-max 0 would churn at no σ (the churn comes at σ ≤ -churn-max); -churn 0 turns the churn off"},
	{"churn-noise", "-churn-noise 0 must be > 0 (the scale of the churn's noise, 1 by default); -churn 0 turns the churn off"},
	{"autoguide-weight", "-autoguide-weight 0 must be a number from 1 (no guidance) to 100"},
}

// ZerosGiven refuses a 0 given on fs's command line to the sampling flags
// whose 0 means "not given" to the library (-eps, -steps, -snr, -tol, …): the
// run would take the default while the command line says 0. Call it after
// Parse; flags that fs lacks are passed over.
func ZerosGiven(fs *flag.FlagSet) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		for _, z := range unsetZeros {
			if err == nil && f.Name == z.flag {
				if v, e := strconv.ParseFloat(f.Value.String(), 64); e == nil && v == 0 {
					err = errors.New(z.why)
				}
			}
		}
	})
	return err
}

// EmptyGiven refuses a string flag given empty on fs's command line
// (`-sampler ""`, `-inpaint "$UNSET"`): the library takes "" for "not
// given", so the run would quietly take the default — or do nothing of what
// the flag asks. The flags named in none mean "none" when empty (`-out ""`:
// no grid) and are passed over. Call it after Parse.
func EmptyGiven(fs *flag.FlagSet, none ...string) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok || err != nil {
			return
		}
		if s, isString := g.Get().(string); isString && s == "" && !slices.Contains(none, f.Name) {
			err = fmt.Errorf("-%s is empty: give it a value, or leave it out for its default", f.Name)
		}
	})
	return err
}
