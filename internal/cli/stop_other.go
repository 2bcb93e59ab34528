//go:build !unix

package cli

import "os"

var stopSignals = []os.Signal{os.Interrupt}

// raise does nothing where signals cannot be sent again (Windows): the
// process exits with exitCode.
func raise(os.Signal) {}

// exitCode is what a Ctrl-C ended process reports on Windows
// (STATUS_CONTROL_C_EXIT).
func exitCode(os.Signal) int { return 0xC000013A }

// isPipe is false: no SIGPIPE reaches a process here.
func isPipe(os.Signal) bool { return false }
