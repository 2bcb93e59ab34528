package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKeepOnClosedPipe: a process whose output pipe has closed goes on to
// write its file after KeepOnClosedPipe, and is killed by SIGPIPE without.
func TestKeepOnClosedPipe(t *testing.T) {
	if out := os.Getenv("CLI_PIPE_CHILD"); out != "" {
		if os.Getenv("CLI_PIPE_KEEP") == "1" {
			KeepOnClosedPipe()
			// The processes it starts get SIGPIPE's default, not an ignore.
			if b, err := exec.Command("cat", "/proc/self/status").Output(); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					if m, ok := strings.CutPrefix(l, "SigIgn:"); ok {
						if v, _ := strconv.ParseUint(strings.TrimSpace(m), 16, 64); v&(1<<(13-1)) != 0 {
							os.Exit(3)
						}
					}
				}
			}
		}
		time.Sleep(200 * time.Millisecond) // the reader has closed by now
		for i := 0; i < 100; i++ {
			fmt.Fprintln(os.Stderr, "log line", i)
		}
		os.WriteFile(out, []byte("done"), 0o644)
		os.Exit(0)
	}
	if runtime.GOOS == "windows" {
		t.Skip("no SIGPIPE on Windows")
	}
	for _, keep := range []string{"1", "0"} {
		out := filepath.Join(t.TempDir(), "out")
		cmd := exec.Command(os.Args[0], "-test.run=^TestKeepOnClosedPipe$")
		cmd.Env = append(os.Environ(), "CLI_PIPE_CHILD="+out, "CLI_PIPE_KEEP="+keep)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		r.Close() // the reader goes away, as head does
		err = cmd.Wait()
		_, statErr := os.Stat(out)
		if keep == "1" && (err != nil || statErr != nil) {
			t.Fatalf("with KeepOnClosedPipe: %v, file %v", err, statErr)
		}
		if keep == "0" && (err == nil || statErr == nil) {
			t.Fatalf("without it the child was not killed (%v): the test shows nothing", err)
		}
	}
}
