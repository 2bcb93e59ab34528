//go:build unix

package eval

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/internal/pipetest"
)

// TestInputPipesRefused: a named pipe given where eval reads a file — as
// -samples (a checkpoint or a grid), as a PNG of a samples folder, as
// -classifier or a guide's checkpoint — is an error at once; each of these
// reads once waited for a writer for ever (Run: until 2026-11-29).
func TestInputPipesRefused(t *testing.T) {
	pipe := pipetest.Make(t, filepath.Join(t.TempDir(), "x.png"))
	pipetest.Refused(t, map[string]func() bool{
		"isCheckpoint":   func() bool { return !isCheckpoint(pipe) },
		"decodePNG":      func() bool { _, err := decodePNG(pipe); return err != nil },
		"LoadClassifier": func() bool { _, err := LoadClassifier(pipe); return err != nil },
		"checkpoint":     func() bool { _, err := checkpoint.Load(pipe); return err != nil },
		"Run": func() bool { // its flag checks asked safetensors.Looks, which opened it
			_, err := Run(Config{Dataset: "mnist", Samples: pipe, DataDir: t.TempDir()})
			return err != nil && strings.Contains(err.Error(), "not a regular file") // "an empty file" before
		},
	})
}
