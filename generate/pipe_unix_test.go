//go:build unix

package generate

import (
	"path/filepath"
	"testing"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/internal/pipetest"
)

// TestPipesRefused: a named pipe given as -mask, -inpaint or -colorize is
// refused at once (it was opened, and cmd/sample waited for a writer for
// ever).
func TestPipesRefused(t *testing.T) {
	pipe := pipetest.Make(t, filepath.Join(t.TempDir(), "x.png"))
	pipetest.Refused(t, map[string]func() bool{
		"mask":  func() bool { _, err := mask(pipe, 8, 8, 1); return err != nil },
		"input": func() bool { _, _, err := input(pipe, "-inpaint", &checkpoint.State{}, Config{}, 1); return err != nil },
	})
}
