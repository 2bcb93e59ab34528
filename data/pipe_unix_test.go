//go:build unix

package data

import (
	"errors"
	"os"
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
		"LoadCIFAR10": func() bool {
			// Every other batch file, too, is missing: the MD5 check reaches
			// the pipe before any fetch is tried.
			os.MkdirAll(filepath.Join(dir, "c", cifarFolder), 0o755)
			pipetest.Make(t, filepath.Join(dir, "c", cifarFolder, cifarFiles[0].Name))
			_, err := LoadCIFAR10(Options{Dir: filepath.Join(dir, "c"), Mirrors: []string{}, NoRegistry: true}, "train")
			return errors.Is(err, fsutil.ErrNotRegular)
		},
	})
}

// TestPipeInImageFolder: a named pipe called x.png among a folder's images
// is passed over like any file that is not an image (decoding it waited for
// a writer for ever), and the folder's images load.
func TestPipeInImageFolder(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	good := makeTestFolder(t, src, 6)
	pipetest.Make(t, filepath.Join(src, "a", "pipe.png"))
	pipetest.Refused(t, map[string]func() bool{
		"LoadFolder": func() bool {
			ds, _, err := LoadFolder(FolderOptions{Path: src, Size: 32, CacheDir: filepath.Join(dir, "cache")})
			return err == nil && ds.N == good
		},
	})
}
