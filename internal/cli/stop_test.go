//go:build unix

package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ncsn-go/ncsn/internal/fsutil"
)

// TestRemoveTempsOnStop: a command stopped by Ctrl-C or SIGTERM while it
// writes a file (WriteAtomic) and a set (fsutil.Set) leaves no temporary
// file with RemoveTempsOnStop, and still ends by the signal; without it the
// temporaries stay (as they did).
func TestRemoveTempsOnStop(t *testing.T) {
	if dir := os.Getenv("CLI_STOP_CHILD"); dir != "" {
		if os.Getenv("CLI_STOP_REMOVE") == "1" {
			RemoveTempsOnStop()
		}
		os.WriteFile(filepath.Join(dir, "kept.png"), []byte("earlier"), 0o644)
		made := filepath.Join(dir, "made")
		fsutil.NewDir(made, ".lock")
		os.WriteFile(filepath.Join(made, ".lock"), nil, 0o644)
		set, _ := fsutil.NewSet(dir)
		set.Write("a.png", func(w io.Writer) error { _, err := w.Write([]byte("a")); return err })
		staging, _, _ := fsutil.TempDir(dir, ".staging-*") // a fetch's (CIFAR-10's batches)
		os.WriteFile(filepath.Join(staging, "part.bin"), []byte("part"), 0o644)
		fsutil.WriteAtomic(filepath.Join(dir, "kept.png"), func(w io.Writer) error {
			w.Write([]byte("half"))
			os.Stdout.WriteString("writing\n")
			d, _ := time.ParseDuration(os.Getenv("CLI_STOP_SLEEP"))
			time.Sleep(d) // stopped here
			return nil
		})
		os.Exit(0)
	}
	ctrlC := ctrlCBack(t)
	for _, c := range []struct {
		sig    syscall.Signal
		remove string
		left   int
	}{{syscall.SIGINT, "1", 0}, {syscall.SIGTERM, "1", 0}, {syscall.SIGINT, "0", 2}} {
		dir := t.TempDir()
		cmd := writingChild(t, command(ctrlC, os.Args[0], "-test.run=^TestRemoveTempsOnStop$"), dir, c.remove, "20s")
		cmd.Process.Signal(c.sig)
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != c.sig {
			t.Errorf("%v (remove %s): the child ended with %v, not by the signal", c.sig, c.remove, err)
		}
		temps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
		if len(temps) != c.left {
			t.Errorf("%v (remove %s): %d temporaries left, want %d: %v", c.sig, c.remove, len(temps), c.left, temps)
		}
		if staging, _ := filepath.Glob(filepath.Join(dir, ".staging-*")); len(staging) != min(c.left, 1) {
			t.Errorf("%v (remove %s): temporary folders left: %v", c.sig, c.remove, staging)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "kept.png")); string(b) != "earlier" {
			t.Errorf("%v: the earlier file became %q", c.sig, b)
		}
		// The folder the child made for its outputs, which holds nothing
		// but its lock file, goes too (cmd/sample's -out-dir stayed).
		if _, err := os.Stat(filepath.Join(dir, "made")); (err == nil) != (c.remove == "0") {
			t.Errorf("%v (remove %s): the child's empty folder: %v", c.sig, c.remove, err)
		}
	}
	// Started with SIGHUP ignored (nohup), the command goes on through one
	// and writes its file (Notify would have undone the ignore).
	dir := t.TempDir()
	cmd := writingChild(t, command(ctrlC, "sh", "-c", `trap '' HUP; exec "$0" -test.run='^TestRemoveTempsOnStop$'`, os.Args[0]), dir, "1", "300ms")
	cmd.Process.Signal(syscall.SIGHUP)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("SIGHUP ignored at the start ended the command: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "kept.png")); string(b) != "half" {
		t.Errorf("the file was not written: %q", b)
	}
}

// writingChild starts cmd as TestRemoveTempsOnStop's child writing into
// dir (remove: "1" with RemoveTempsOnStop; sleep: how long its write
// lasts) and returns once it is in the middle of that write.
func writingChild(t *testing.T, cmd *exec.Cmd, dir, remove, sleep string) *exec.Cmd {
	t.Helper()
	cmd.Env = append(os.Environ(), "CLI_STOP_CHILD="+dir, "CLI_STOP_REMOVE="+remove, "CLI_STOP_SLEEP="+sleep)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if l, err := bufio.NewReader(out).ReadString('\n'); err != nil || l != "writing\n" {
		t.Fatalf("child said %q, %v", l, err)
	}
	return cmd
}

// TestStopContext: the first stop signal cancels the context (after the
// notice); a copy of it sent at once (a closed terminal's SIGHUP comes from
// the kernel and from the shell) and a SIGPIPE are passed over; a second
// signal after RepeatWindow, while the command is stuck writing its file,
// removes the temporary and ends the process by that signal, leaving the
// file in place as it was. A signal ignored when the process started stays
// ignored: nohup's SIGHUP is not taken for a first signal.
func TestStopContext(t *testing.T) {
	if dir := os.Getenv("CLI_STOPCTX_CHILD"); dir != "" {
		ctx, stop := StopContext(context.Background(), func(s os.Signal) {
			fmt.Printf("notice %v\n", s)
			if os.Getenv("CLI_STOPCTX_STALL") != "" {
				select {} // its write blocks: a stalled stderr
			}
		}, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
		defer stop()
		os.WriteFile(filepath.Join(dir, "kept.png"), []byte("earlier"), 0o644)
		fmt.Println("ready")
		<-ctx.Done()
		fsutil.WriteAtomic(filepath.Join(dir, "kept.png"), func(w io.Writer) error {
			w.Write([]byte("half"))
			fmt.Println("stuck")
			time.Sleep(20 * time.Second) // a stop that hangs
			return nil
		})
		os.Exit(0)
	}
	ctrlC := ctrlCBack(t)
	for _, c := range []struct {
		name          string
		hupIgnored    bool
		first, second syscall.Signal
		stall         bool // the notice never returns (it stopped nothing, and the second signal was never read)
	}{
		{"ctrl-c twice", false, syscall.SIGINT, syscall.SIGINT, false},
		{"pipe, then ctrl-c", false, syscall.SIGPIPE, syscall.SIGINT, false},
		{"nohup", true, syscall.SIGTERM, syscall.SIGTERM, false},
		{"stalled stderr", false, syscall.SIGINT, syscall.SIGTERM, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := command(ctrlC, os.Args[0], "-test.run=^TestStopContext$")
			if c.hupIgnored {
				cmd = command(ctrlC, "sh", "-c", `trap '' HUP; exec "$0" -test.run='^TestStopContext$'`, os.Args[0])
			}
			cmd.Env = append(os.Environ(), "CLI_STOPCTX_CHILD="+dir)
			if c.stall {
				cmd.Env = append(cmd.Env, "CLI_STOPCTX_STALL=1")
			}
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			r := bufio.NewReader(out)
			expect := func(want string) {
				t.Helper()
				if l, err := r.ReadString('\n'); err != nil || l != want+"\n" {
					t.Fatalf("child said %q, %v; want %q", l, err, want)
				}
			}
			expect("ready")
			if c.hupIgnored {
				cmd.Process.Signal(syscall.SIGHUP) // passed over: the notice names the next signal
			}
			sent := time.Now()
			cmd.Process.Signal(c.first)
			expect("notice " + c.first.String())
			noticed := time.Now() // the child's window began before
			// A copy, once the first has been taken (sent together, the
			// kernel merges them): it ended the process, losing the save.
			copied := time.Since(sent) < RepeatWindow/2
			if copied {
				cmd.Process.Signal(c.first)
			}
			expect("stuck")
			if c.stall { // the window began once the notice was given up on, with the stop
				noticed = time.Now()
			}
			ended := make(chan error, 1)
			go func() { ended <- cmd.Wait() }()
			select {
			case err := <-ended:
				t.Fatalf("the child ended on a copy of the first signal: %v", err)
			case <-time.After(200 * time.Millisecond):
			}
			if !copied {
				t.Log("the first signal's notice came late: no copy sent")
			}
			time.Sleep(time.Until(noticed.Add(RepeatWindow + 100*time.Millisecond)))
			cmd.Process.Signal(syscall.SIGPIPE) // passed over after a first signal
			cmd.Process.Signal(c.second)
			err := <-ended
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != c.second {
				t.Fatalf("the child ended with %v, not by %v", err, c.second)
			}
			if temps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*")); len(temps) != 0 {
				t.Errorf("temporaries left: %v", temps)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "kept.png")); string(b) != "earlier" {
				t.Errorf("the earlier file became %q", b)
			}
		})
	}
}

// ctrlCBack is what gives a child process SIGINT's default action back
// where this test process was started with SIGINT ignored (a background job
// of a shell script), which its children inherit and StopContext and
// RemoveTempsOnStop rightly keep: perl, which can reset it (a shell cannot).
// nil where SIGINT is not ignored; the test is skipped where there is no
// perl.
func ctrlCBack(t *testing.T) []string {
	if !signal.Ignored(syscall.SIGINT) {
		return nil
	}
	perl, err := exec.LookPath("perl")
	if err != nil {
		t.Skip("SIGINT is ignored in this test process (started as a script's background job?), so in its children too, and no perl resets it")
	}
	return []string{perl, "-e", `$SIG{INT} = "DEFAULT"; exec @ARGV or die "exec: $!"`}
}

// command is exec.Command of argv after prefix.
func command(prefix []string, argv ...string) *exec.Cmd {
	argv = append(append([]string{}, prefix...), argv...)
	return exec.Command(argv[0], argv[1:]...)
}
