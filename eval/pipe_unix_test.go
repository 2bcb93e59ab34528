//go:build unix

package eval

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ncsn-go/ncsn/checkpoint"
)

// TestInputPipesRefused: a named pipe given where eval reads a file — as
// -samples (a checkpoint or a grid), as a PNG of a samples folder, as
// -classifier or a guide's checkpoint — is an error at once; each of these
// reads once waited for a writer for ever (Run: until 2026-11-29).
func TestInputPipesRefused(t *testing.T) {
	pipe := filepath.Join(t.TempDir(), "x.png")
	if err := syscall.Mkfifo(pipe, 0o644); err != nil {
		t.Skip("no named pipes here:", err)
	}
	for name, read := range map[string]func() bool{
		"isCheckpoint":   func() bool { return !isCheckpoint(pipe) },
		"decodePNG":      func() bool { _, err := decodePNG(pipe); return err != nil },
		"LoadClassifier": func() bool { _, err := LoadClassifier(pipe); return err != nil },
		"checkpoint":     func() bool { _, err := checkpoint.Load(pipe); return err != nil },
		"Run": func() bool { // its flag checks asked safetensors.Looks, which opened it
			_, err := Run(Config{Dataset: "mnist", Samples: pipe, DataDir: t.TempDir()})
			return err != nil
		},
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
