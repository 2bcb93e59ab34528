package cli

import (
	"context"
	"os"
	"os/signal"
	"sync"
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
	sigs := notIgnored(stopSignals)
	if len(sigs) == 0 {
		return
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, sigs...)
	go func() { endBy(<-c) }()
}

// StopContext is for a command that stops cleanly (cmd/train saves a
// checkpoint): the first of sigs cancels the context it returns, after
// notice (when not nil) is called with it — to say what the command does
// now. A second of them, while the command has not returned, does what
// RemoveTempsOnStop does: it removes the temporary files being written and
// ends the process as the signal would have, so a command stuck in its
// clean stop (a stalled disk, a rank that waits for a dead one) is stopped
// by another Ctrl-C, not only by kill -9. Files already in place are kept.
//
// A signal within RepeatWindow of the first (of its notice's end) is taken
// for a copy of it, not a second: one stop often arrives twice — a closed
// terminal's SIGHUP from the kernel and again from the shell, `timeout`'s
// SIGTERM to the process and to its group, make's forwarding — and ending
// the process then lost the checkpoint the first was saving. SIGPIPE (a
// closed output pipe) is only ever a first signal: after any first one,
// later SIGPIPEs are passed over, since the command's own messages to the
// closed pipe raise them while it stops. Signals the process was started
// with ignored (nohup's SIGHUP, the SIGINT of a shell script's background
// job) stay ignored. stop ends all this (the signals get their default
// action again, unless the command catches them elsewhere) and cancels the
// context; call it when the command is done.
func StopContext(parent context.Context, notice func(os.Signal), sigs ...os.Signal) (ctx context.Context, stop context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	sigs = notIgnored(sigs)
	if len(sigs) == 0 {
		return ctx, cancel
	}
	c := make(chan os.Signal, 4)
	signal.Notify(c, sigs...)
	done := make(chan struct{})
	go func() {
		var first time.Time
		for {
			select {
			case <-done:
				return
			case s := <-c:
				switch {
				case first.IsZero():
					// The notice first, but not waited for beyond
					// RepeatWindow: its write blocks on a stalled stderr
					// (a full pipe, a terminal paused by Ctrl-S), and the
					// stop, and a second signal, waited with it for ever.
					noticed := make(chan struct{})
					go func() {
						if notice != nil {
							notice(s)
						}
						close(noticed)
					}()
					select {
					case <-noticed:
					case <-time.After(RepeatWindow):
					}
					cancel()
					first = time.Now() // after the notice, whose write may block
				case !isPipe(s) && time.Since(first) >= RepeatWindow:
					endBy(s)
				}
			}
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() { signal.Stop(c); close(done) })
		cancel()
	}
}

// RepeatWindow is how long after StopContext's first signal another is
// taken for a copy of it.
const RepeatWindow = time.Second

// notIgnored is sigs less those the process was started with ignored:
// signal.Notify would undo the ignore.
func notIgnored(sigs []os.Signal) []os.Signal {
	var out []os.Signal
	for _, s := range sigs {
		if !signal.Ignored(s) {
			out = append(out, s)
		}
	}
	return out
}

// endBy removes this process's temporary files and ends it as signal s
// would have by default.
func endBy(s os.Signal) {
	fsutil.RemoveOwnTemps() // writes wait from now on
	signal.Reset(s)
	raise(s)
	time.Sleep(time.Second) // the signal's default action ends the process
	os.Exit(exitCode(s))
}
