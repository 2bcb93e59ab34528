//go:build unix

package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/internal/pipetest"
)

// TestLatestNotAFile: a folder's latest that is a named pipe is refused at
// once (cmd/sample, cmd/eval, cmd/export and the trainer waited for a
// writer for ever), as is one that links to an endless device (read to the
// end, it ran out of memory) or one too long to name a file.
func TestLatestNotAFile(t *testing.T) {
	dir := t.TempDir()
	pipetest.Make(t, filepath.Join(dir, latestName))
	pipetest.Refused(t, map[string]func() bool{
		"Latest": func() bool {
			_, err := Latest(dir)
			return errors.Is(err, fsutil.ErrNotRegular)
		},
	})
	os.Remove(filepath.Join(dir, latestName))
	if err := os.Symlink("/dev/zero", filepath.Join(dir, latestName)); err != nil {
		t.Fatal(err)
	}
	if _, err := Latest(dir); !errors.Is(err, fsutil.ErrNotRegular) {
		t.Fatalf("latest → /dev/zero: %v", err)
	}
	os.Remove(filepath.Join(dir, latestName))
	os.WriteFile(filepath.Join(dir, latestName), []byte(strings.Repeat("x", 5000)), 0o644)
	if _, err := Latest(dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "is over 4096 bytes: not a pointer") || strings.Count(err.Error(), "checkpoint:") != 1 {
		t.Fatalf("a latest of 5000 bytes: %v", err)
	}
	// Given as a checkpoint file, latest is said to be the pointer.
	os.WriteFile(filepath.Join(dir, latestName), []byte("ckpt-00000001.ckpt\n"), 0o644)
	if _, err := Load(filepath.Join(dir, latestName)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "pointer to the newest checkpoint") {
		t.Fatalf("Load(latest): %v", err)
	}
}
