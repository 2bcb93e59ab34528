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
