//go:build unix

package cli

import (
	"os"
	"syscall"
)

var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// raise sends s to this process again, for its default action.
func raise(s os.Signal) {
	if n, ok := s.(syscall.Signal); ok {
		syscall.Kill(os.Getpid(), n)
	}
}

// exitCode is a shell's status of a process that s ended (128 + its number).
func exitCode(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 1
}

// isPipe says whether s is SIGPIPE.
func isPipe(s os.Signal) bool { return s == syscall.SIGPIPE }
