//go:build unix

package plot

import (
	"path/filepath"
	"testing"

	"github.com/ncsn-go/ncsn/internal/pipetest"
)

// TestPipesRefused: a named pipe as a run's train.csv is refused at once
// (it was opened, and cmd/plot waited for a writer for ever).
func TestPipesRefused(t *testing.T) {
	dir := t.TempDir()
	pipe := pipetest.Make(t, filepath.Join(dir, "train.csv"))
	pipetest.Refused(t, map[string]func() bool{
		"Curves": func() bool { _, err := Curves(pipe, filepath.Join(dir, "plots"), 0, nil); return err != nil },
	})
}
