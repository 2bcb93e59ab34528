package cli

import (
	"os/signal"
	"syscall"
)

// KeepOnClosedPipe lets a command finish its files when its output goes
// to a pipe that closes early (`cmd/sample … 2>&1 | head -n 1`): writes to
// it then fail, and the command goes on, where by default the first write
// after the close would kill the process by SIGPIPE half-way through its
// work. cmd/train instead takes SIGPIPE as a signal to save and stop.
func KeepOnClosedPipe() { signal.Ignore(syscall.SIGPIPE) }
