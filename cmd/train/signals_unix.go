//go:build unix

package main

import (
	"os"
	"syscall"
)

// stopSignals save a checkpoint and stop the run: Ctrl-C, SIGTERM, a closed
// terminal or pipe, and SIGUSR1/SIGUSR2 — which Open MPI's mpirun forwards
// to every rank as they are (its Ctrl-C and SIGTERM reach the ranks as a
// SIGTERM that a SIGKILL follows a second later, too soon for a step and a
// save), so `kill -USR1 <mpirun's pid>` stops a data-parallel run with a
// checkpoint.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE, syscall.SIGUSR1, syscall.SIGUSR2}
