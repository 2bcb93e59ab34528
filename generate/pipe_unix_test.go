//go:build unix

package generate

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ncsn-go/ncsn/checkpoint"
)

// TestPipesRefused: a named pipe given as -mask, -inpaint or -colorize is refused at
// once (it was opened, and cmd/sample waited for a writer for ever).
func TestPipesRefused(t *testing.T) {
	dir := t.TempDir()
	pipe := filepath.Join(dir, "x.png")
	if err := syscall.Mkfifo(pipe, 0o644); err != nil {
		t.Skip("no named pipes here:", err)
	}
	for name, read := range map[string]func() bool{
		"mask":  func() bool { _, err := mask(pipe, 8, 8, 1); return err != nil },
		"input": func() bool { _, err := input(pipe, "-inpaint", &checkpoint.State{}, Config{}, 1); return err != nil },
	} {
		done := make(chan bool, 1)
		go func() { done <- read() }()
		select {
		case ok := <-done:
			if !ok {
				t.Errorf("%s: the pipe was taken for a file", name)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: still reading the pipe after 5 s", name)
		}
	}
}
