//go:build unix

package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestLatestNamesAPipe: a `latest` naming a pipe is refused without
// opening it (the reader hung there).
func TestLatestNamesAPipe(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "ckpt-00000001.ckpt"), 0o644); err != nil {
		t.Skip(err)
	}
	os.WriteFile(filepath.Join(dir, latestName), []byte("ckpt-00000001.ckpt\n"), 0o644)
	if _, err := Latest(dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a pipe: %v", err)
	}
}
