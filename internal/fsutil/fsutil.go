// Package fsutil writes files atomically: a temporary file in the same
// folder, synced, then renamed over the target, so a reader never sees half a
// file and a crash never destroys the previous version; and it takes advisory
// locks that the operating system releases when their process dies; and it
// checks outputs before the work that makes them (CheckOutFile: an earlier
// output of the same kind may be replaced, nothing else).
package fsutil

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteAtomic writes the output of fill to path atomically.
func WriteAtomic(path string, fill func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tempPattern(filepath.Base(path)))
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming %s: %w", tmp, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync() // make the rename itself durable; best effort
		d.Close()
	}
	return nil
}

// tempPattern is the name of WriteAtomic's temporary file for a target name.
func tempPattern(name string) string { return "." + name + ".tmp-*" }

// RemoveTemps deletes the temporary files that writes of the named targets in
// dir left behind when their process died mid-write, and returns how many it
// removed. Call it only while no other process writes there (under a Lock).
func RemoveTemps(dir string, names ...string) (int, error) {
	n := 0
	for _, name := range names {
		m, err := filepath.Glob(filepath.Join(dir, tempPattern(name)))
		if err != nil {
			return n, err
		}
		for _, p := range m {
			if err := os.Remove(p); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// WriteFileAtomic writes data to path atomically.
func WriteFileAtomic(path string, data []byte) error {
	return WriteAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
