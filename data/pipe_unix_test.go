//go:build unix

package data

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ncsn-go/ncsn/internal/fsutil"
)

// TestPipeInDataFolder: a named pipe named as one of a dataset's files in
// its data folder is an error at once (its MD5 check read it, waiting for a
// writer for ever).
func TestPipeInDataFolder(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, mnistFiles["train"][0].Name)
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skip("no named pipes here:", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := LoadMNIST(Options{Dir: dir, Mirrors: []string{}, NoRegistry: true}, "train")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, fsutil.ErrNotRegular) {
			t.Fatalf("error %v, want one saying the file is not a regular one", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("still reading the pipe %s after 5 s", p)
	}
}
