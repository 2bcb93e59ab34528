//go:build unix

package cli

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
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
		fsutil.WriteAtomic(filepath.Join(dir, "kept.png"), func(w io.Writer) error {
			w.Write([]byte("half"))
			os.Stdout.WriteString("writing\n")
			d, _ := time.ParseDuration(os.Getenv("CLI_STOP_SLEEP"))
			time.Sleep(d) // stopped here
			return nil
		})
		os.Exit(0)
	}
	for _, c := range []struct {
		sig    syscall.Signal
		remove string
		left   int
	}{{syscall.SIGINT, "1", 0}, {syscall.SIGTERM, "1", 0}, {syscall.SIGINT, "0", 2}} {
		dir := t.TempDir()
		cmd := writingChild(t, exec.Command(os.Args[0], "-test.run=^TestRemoveTempsOnStop$"), dir, c.remove, "20s")
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
	cmd := writingChild(t, exec.Command("sh", "-c", `trap '' HUP; exec "$0" -test.run='^TestRemoveTempsOnStop$'`, os.Args[0]), dir, "1", "300ms")
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
