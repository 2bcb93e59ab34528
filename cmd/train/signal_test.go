//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain runs this test binary as a trainer when TRAIN_CHILD_ARGS is set
// (the arguments, one per line), so that a test can signal a real process.
func TestMain(m *testing.M) {
	if a := os.Getenv("TRAIN_CHILD_ARGS"); a != "" {
		os.Exit(run(strings.Split(a, "\n"), os.Stderr))
	}
	os.Exit(m.Run())
}

// TestSignalsSave: Ctrl-C, SIGTERM, a closed terminal (SIGHUP), a closed
// pipe (SIGPIPE) and SIGUSR1 (which mpirun forwards to its ranks as it is)
// each stop a training run with a checkpoint of the step it reached and
// exit status 130; a later run resumes from it. A trainer started with
// SIGHUP ignored (nohup) goes on through one, and then stops on Ctrl-C.
func TestSignalsSave(t *testing.T) {
	if testing.Short() {
		t.Skip("trains in child processes")
	}
	pics := greyPictures(t, 8)
	cache := t.TempDir()
	type signalCase struct {
		name  string
		sig   syscall.Signal
		nohup bool // started with SIGHUP ignored, and sent one first
	}
	cases := []signalCase{{name: "nohup, then SIGINT", sig: syscall.SIGINT, nohup: true}}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE, syscall.SIGUSR1} {
		cases = append(cases, signalCase{name: sig.String(), sig: sig})
	}
	for _, c := range cases {
		sig := c.sig
		t.Run(c.name, func(t *testing.T) {
			// A signal this test process was started with ignored (SIGHUP
			// under nohup, SIGINT in a script's background job) is ignored
			// by the trainer it starts too, as it should be: perl, where
			// there is one, gives the trainer the default action back
			// (a shell cannot), else the case is skipped.
			var undo []string
			if signal.Ignored(sig) {
				perl, err := exec.LookPath("perl")
				if err != nil {
					t.Skipf("%v is ignored in this test process (started under nohup, or as a script's background job?), so in the trainer too, and no perl resets it", sig)
				}
				name := map[syscall.Signal]string{syscall.SIGINT: "INT", syscall.SIGHUP: "HUP", syscall.SIGTERM: "TERM", syscall.SIGPIPE: "PIPE", syscall.SIGUSR1: "USR1"}[sig]
				undo = []string{perl, "-e", `$SIG{` + name + `} = "DEFAULT"; exec @ARGV or die "exec: $!"`}
			}
			dir := filepath.Join(t.TempDir(), "run")
			args := []string{"-dataset", "folder:" + pics, "-grey", "-base", "4", "-mult", "1,2", "-batch", "4",
				"-steps", "1000000", "-save-every", "1000000", "-ckpt-dir", dir, "-data-dir", cache}
			// This binary as the trainer, after NCSN_TEST_EXEC's emulator if any.
			argv := append(strings.Fields(os.Getenv("NCSN_TEST_EXEC")), os.Args[0], "-test.run", "^$")
			argv = append(undo, argv...)
			if c.nohup {
				argv = append([]string{"sh", "-c", `trap '' HUP; exec "$@"`, "sh"}, argv...)
			}
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = append(os.Environ(), "TRAIN_CHILD_ARGS="+strings.Join(args, "\n"))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			stop := func() string { cmd.Process.Kill(); cmd.Wait(); return out.String() }
			// Signal once a few steps are in train.csv (the handler is in
			// place before the first step).
			rows := func() int {
				b, _ := os.ReadFile(filepath.Join(dir, "train.csv"))
				return bytes.Count(b, []byte("\n"))
			}
			waitRows := func(n int) {
				for deadline := time.Now().Add(60 * time.Second); rows() < n; time.Sleep(50 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("not %d rows in train.csv after 60 s:\n%s", n, stop())
					}
				}
			}
			waitRows(4)
			if c.nohup { // the SIGHUP of a closed terminal does not stop it
				if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
					t.Fatalf("%v\n%s", err, stop())
				}
				waitRows(rows() + 3)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatalf("%v\n%s", err, stop())
			}
			ended := make(chan error, 1)
			go func() { ended <- cmd.Wait() }()
			var err error
			select {
			case err = <-ended:
			case <-time.After(2 * time.Minute):
				cmd.Process.Kill()
				<-ended
				t.Fatalf("%v: the trainer still ran 2 minutes after the signal:\n%s", sig, out.String())
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Fatalf("%v: %v, want exit status 130:\n%s", sig, err, out.String())
			}
			// One checkpoint, of the last step train.csv records.
			ckpts, _ := filepath.Glob(filepath.Join(dir, "ckpt-*.ckpt"))
			b, _ := os.ReadFile(filepath.Join(dir, "train.csv"))
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			last, _, _ := strings.Cut(lines[len(lines)-1], ",")
			step, _ := strconv.Atoi(last)
			if len(ckpts) != 1 || filepath.Base(ckpts[0]) != fmt.Sprintf("ckpt-%08d.ckpt", step) || step < 3 {
				t.Fatalf("%v: checkpoints %v, train.csv ends at step %d:\n%s", sig, ckpts, step, out.String())
			}
			// The same command, to two steps more, resumes from it.
			var res bytes.Buffer
			again := append(args[:len(args)-8:len(args)-8], "-steps", strconv.Itoa(step+2), "-save-every", "1000000", "-ckpt-dir", dir, "-data-dir", cache)
			if code := run(again, &res); code != 0 || !strings.Contains(res.String(), fmt.Sprintf("resuming from %s at step %d of %d", ckpts[0], step, step+2)) {
				t.Errorf("after %v: the run does not resume from step %d (exit %d):\n%s", sig, step, code, res.String())
			}
		})
	}
}
