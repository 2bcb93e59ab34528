//go:build unix

package plot

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestPipesRefused: a named pipe as a run's train.csv is refused at once (it was
// opened, and cmd/plot waited for a writer for ever).
func TestPipesRefused(t *testing.T) {
	dir := t.TempDir()
	pipe := filepath.Join(dir, "train.csv")
	if err := syscall.Mkfifo(pipe, 0o644); err != nil {
		t.Skip("no named pipes here:", err)
	}
	for name, read := range map[string]func() bool{
		"Curves": func() bool { _, err := Curves(pipe, filepath.Join(dir, "plots"), 0, nil); return err != nil },
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
