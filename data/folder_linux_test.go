package data

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadErrorNotCachedAsUndecodable: a file whose reading fails in the
// system (EIO: a link to /proc/self/mem, which reads as an I/O error) is
// not cached as undecodable — the decoders turned the error into "image:
// unknown format", and the file stayed out of every later run.
func TestReadErrorNotCachedAsUndecodable(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	makeTestFolder(t, dir, 3)
	if err := os.Symlink("/proc/self/mem", filepath.Join(dir, "eio.png")); err != nil {
		t.Skip(err)
	}
	var log bytes.Buffer
	_, info, err := LoadFolder(FolderOptions{Path: dir, Size: 32, CacheDir: cache, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "input/output error") || !strings.Contains(log.String(), "not cached: 1 of its files could not be read") {
		t.Fatalf("a file that reads as EIO:\n%s", log.String())
	}
	if _, err := os.Stat(info.Cache); err == nil {
		t.Fatal("the folder was cached with a file that could not be read")
	}
}
