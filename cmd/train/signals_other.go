//go:build !unix

package main

import (
	"os"
	"syscall"
)

// stopSignals save a checkpoint and stop the run (signals_unix.go).
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE}
