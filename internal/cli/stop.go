package cli

import (
	"os"
	"os/signal"
	"time"

	"github.com/ncsn-go/ncsn/internal/fsutil"
)

// RemoveTempsOnStop makes Ctrl-C (SIGINT), SIGTERM or a closed terminal
// (SIGHUP) first delete the temporary files the command is writing
// (fsutil.RemoveOwnTemps) and then end the process as the signal would
// have: a stopped cmd/sample, cmd/plot or cmd/toy left its hidden
// .NAME.tmp-… files behind, which no later run removed. Nothing already
// in place is touched. (cmd/train handles these signals itself: it saves
// and stops.)
//
// A signal the command was started with ignored (nohup's SIGHUP, the SIGINT
// of a shell script's background job) stays ignored.
func RemoveTempsOnStop() {
	var sigs []os.Signal
	for _, s := range stopSignals {
		if !signal.Ignored(s) { // Notify would undo the ignore
			sigs = append(sigs, s)
		}
	}
	if len(sigs) == 0 {
		return
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, sigs...)
	go func() {
		s := <-c
		fsutil.RemoveOwnTemps() // writes wait from now on
		signal.Reset(s)
		raise(s)
		time.Sleep(time.Second) // the signal's default action ends the process
		os.Exit(exitCode(s))
	}()
}
