// Package cli holds what the commands share in reading their command line
// (Parse: one-line flag errors) and in their process (KeepOnClosedPipe,
// RemoveTempsOnStop, StopContext).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
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

// ChurnZeros refuses -churn-max 0 and -churn-noise 0 given on the command
// line (set: the flags given), which cmd/sample and cmd/eval share: to the
// library a 0 there means "not given" (no limit; a noise scale of 1), not
// what the flag says.
func ChurnZeros(set map[string]bool, churnMax, churnNoise float64) error {
	switch {
	case set["churn-max"] && churnMax == 0:
		return errors.New("-churn-max 0 would churn at no σ (the churn comes at σ ≤ -churn-max); -churn 0 turns the churn off")
	case set["churn-noise"] && churnNoise == 0:
		return errors.New("-churn-noise 0 must be > 0 (the scale of the churn's noise, 1 by default); -churn 0 turns the churn off")
	}
	return nil
}
