package cli

import (
	"os"
	"os/signal"
	"syscall"
)

// KeepOnClosedPipe lets a command finish its files when its output goes
// to a pipe that closes early (`cmd/sample … 2>&1 | head -n 1`): writes to
// it then fail, and the command goes on, where by default the first write
// after the close would kill the process by SIGPIPE half-way through its
// work. (SIGPIPE is caught, not ignored, so the processes the command
// starts get the default again.) cmd/train instead takes SIGPIPE as a
// signal to save and stop.
func KeepOnClosedPipe() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE) // never read: Go's runtime then returns EPIPE
}
