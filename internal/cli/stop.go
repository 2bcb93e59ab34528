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
func RemoveTempsOnStop() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, stopSignals...)
	go func() {
		s := <-c
		fsutil.RemoveOwnTemps()
		signal.Reset(stopSignals...)
		raise(s)
		time.Sleep(time.Second) // the signal's default action ends the process
		os.Exit(exitCode(s))
	}()
}
