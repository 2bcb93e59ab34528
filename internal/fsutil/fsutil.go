// Package fsutil writes files atomically: a temporary file in the same
// folder, synced, then renamed over the target, so a reader never sees half a
// file and a crash never destroys the previous version (WriteAtomic; Set for
// several files that appear together or not at all); it lists a folder's
// files by a pattern with the folder's name taken literally (Glob); it takes
// advisory locks that the operating system releases when their process dies;
// and it checks outputs before the work that makes them (CheckOutFile: an
// earlier output of the same kind may be replaced, nothing else).
package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Glob returns the entries of the folder dir whose names match pattern
// (filepath.Match's syntax), sorted by name. Unlike filepath.Glob of a
// joined path, dir is taken literally: a folder named "run[1]" or "a*b"
// lists its own files, never another folder's. A missing dir, or a file
// in its place, has none; another error reading it is returned.
func Glob(dir, pattern string) ([]string, error) {
	if _, err := filepath.Match(pattern, ""); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m []string
	for _, e := range entries {
		if ok, _ := filepath.Match(pattern, e.Name()); ok {
			m = append(m, filepath.Join(dir, e.Name()))
		}
	}
	return m, nil
}

// WriteAtomic writes the output of fill to path atomically.
func WriteAtomic(path string, fill func(w io.Writer) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := writeTemp(dir, filepath.Base(path), fill)
	if err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("renaming %s: %w", tmp, err)
	}
	syncDir(dir)
	return nil
}

// writeTemp writes the output of fill to a new temporary file for the
// target name in dir (synced, closed) and returns its path; on an error
// nothing is left.
func writeTemp(dir, name string, fill func(w io.Writer) error) (_ string, err error) {
	f, err := os.CreateTemp(dir, tempPattern(name))
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o644); err != nil {
		return "", err
	}
	if err = fill(f); err != nil {
		return "", err
	}
	if err = f.Sync(); err != nil {
		return "", err
	}
	return tmp, f.Close()
}

// syncDir makes the renames in dir durable; best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Set writes several files of one folder as a set: each first to a
// temporary file beside it; only once all are written does Commit rename
// them into place, one after the other. A failure before that (a full
// disk, an error of the work between two files) leaves none of the new
// files, every earlier one as it was, and no temporary file once Abort
// has run (RemoveTemps finds those a killed process left). Not safe for
// concurrent use.
type Set struct {
	dir        string
	tmps, dsts []string
}

// NewSet starts a set of files in dir, which it creates.
func NewSet(dir string) (*Set, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &Set{dir: dir}, nil
}

// Write writes the output of fill as the set's file name.
func (s *Set) Write(name string, fill func(w io.Writer) error) error {
	tmp, err := writeTemp(s.dir, name, fill)
	if err != nil {
		return err
	}
	s.tmps, s.dsts = append(s.tmps, tmp), append(s.dsts, filepath.Join(s.dir, name))
	return nil
}

// WritePath is Write for a writer that takes a path: write (which must
// write its path atomically, or leave it as it was) is given a temporary
// path of the set, renamed to name by Commit.
func (s *Set) WritePath(name string, write func(path string) error) error {
	tmp, err := writeTemp(s.dir, name, func(io.Writer) error { return nil })
	if err != nil {
		return err
	}
	if err := write(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	s.tmps, s.dsts = append(s.tmps, tmp), append(s.dsts, filepath.Join(s.dir, name))
	return nil
}

// Commit renames every written file into place and returns their paths.
// A rename that fails stops it: the files renamed before stay, the rest
// are removed, and the error names the file.
func (s *Set) Commit() ([]string, error) {
	for i, tmp := range s.tmps {
		if err := os.Rename(tmp, s.dsts[i]); err != nil {
			s.tmps = s.tmps[i:]
			s.Abort()
			return s.dsts[:i], fmt.Errorf("renaming %s: %w", tmp, err)
		}
	}
	syncDir(s.dir)
	s.tmps = nil
	return s.dsts, nil
}

// Abort removes the set's temporary files; after Commit it does nothing.
func (s *Set) Abort() {
	for _, tmp := range s.tmps {
		os.Remove(tmp)
	}
	s.tmps = nil
}

// tempPattern is the name of WriteAtomic's temporary file for a target name.
func tempPattern(name string) string { return "." + name + ".tmp-*" }

// RemoveTemps deletes the temporary files that writes of the named targets in
// dir left behind when their process died mid-write, and returns how many it
// removed. Call it only while no other process writes there (under a Lock).
func RemoveTemps(dir string, names ...string) (int, error) {
	n := 0
	for _, name := range names {
		m, err := Glob(dir, tempPattern(name))
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
