//go:build unix

package data

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/internal/pipetest"
)

// TestPipeInDataFolder: a named pipe named as one of a dataset's files in
// its data folder is an error at once (its MD5 check read it, waiting for a
// writer for ever).
func TestPipeInDataFolder(t *testing.T) {
	dir := t.TempDir()
	pipetest.Make(t, filepath.Join(dir, mnistFiles["train"][0].Name))
	pipetest.Refused(t, map[string]func() bool{
		"LoadMNIST": func() bool {
			_, err := LoadMNIST(Options{Dir: dir, Mirrors: []string{}, NoRegistry: true}, "train")
			return errors.Is(err, fsutil.ErrNotRegular)
		},
	})
}
