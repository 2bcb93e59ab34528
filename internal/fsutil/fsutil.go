// Package fsutil writes files atomically: a temporary file in the same
// folder, synced, then renamed over the target, so a reader never sees half a
// file and a crash never destroys the previous version (WriteAtomic; Set for
// several files that appear together or not at all); it lists a folder's
// files by a pattern with the folder's name taken literally (Glob); it takes
// advisory locks that the operating system releases when their process dies;
// and it checks outputs before the work that makes them (CheckOutFile: an
// earlier output of the same kind may be replaced, nothing else); and it
// opens input files only where they are regular files (OpenRegular).
package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
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
	// NewDir: a folder made for a write that fails, or that a stop signal
	// cuts short (RemoveOwnTemps), goes again (an empty one was left); one
	// that holds the file stays.
	remove, err := NewDir(dir)
	if err != nil {
		return err
	}
	defer remove()
	tmp, err := writeTemp(dir, filepath.Base(path), fill)
	if err != nil {
		return err
	}
	ownTemps.Lock() // the rename is not cut short by RemoveOwnTemps
	err = os.Rename(tmp, path)
	if err != nil {
		os.Remove(tmp)
	}
	delete(ownTemps.m, tmp)
	ownTemps.Unlock()
	if err != nil {
		return fmt.Errorf("renaming %s: %w", tmp, err)
	}
	syncDir(dir)
	return nil
}

// ownTemps are the temporary files this process is writing (WriteAtomic's
// and the Sets' not yet renamed into place), for RemoveOwnTemps.
// dirs are the folders NewDir made, each with the names it spares; tempDirs
// the temporary folders of TempDir.
var ownTemps = struct {
	sync.Mutex
	m        map[string]bool
	dirs     map[string]ownDir
	tempDirs map[string]bool
}{m: map[string]bool{}, dirs: map[string]ownDir{}, tempDirs: map[string]bool{}}

// TempDir makes a new temporary folder in parent (os.MkdirTemp's pattern)
// and returns it with the function that removes it and all it holds;
// RemoveOwnTemps removes it too, for a process ended by a signal.
func TempDir(parent, pattern string) (string, func(), error) {
	ownTemps.Lock()
	defer ownTemps.Unlock()
	d, err := os.MkdirTemp(parent, pattern)
	if err != nil {
		return "", nil, err
	}
	ownTemps.tempDirs[d] = true
	return d, func() {
		ownTemps.Lock()
		defer ownTemps.Unlock()
		if ownTemps.tempDirs[d] {
			os.RemoveAll(d)
			delete(ownTemps.tempDirs, d)
		}
	}, nil
}

// RemoveStaleTemps deletes what the patterns (Glob's) match in dir and was
// last modified before age ago — temporary files and folders that a
// process killed part way left there — where other processes may be
// writing, without a lock: theirs are younger. It returns how many it
// removed.
func RemoveStaleTemps(dir string, age time.Duration, patterns ...string) int {
	n := 0
	for _, pat := range patterns {
		m, _ := Glob(dir, pat)
		for _, p := range m {
			if fi, err := os.Lstat(p); err == nil && time.Since(fi.ModTime()) > age && os.RemoveAll(p) == nil {
				n++
			}
		}
	}
	return n
}

// ownDir is a folder NewDir made: the files it may hold and still go, and
// the topmost of the folders made with it (its missing parents).
type ownDir struct {
	spare []string
	top   string
}

// NewDir makes the folder path (and its parents) for this process's
// outputs. Where it made path, the function it returns removes the folder
// again if it holds nothing but the files named in spare (a lock file),
// which it deletes first, and the parents it made with it: for a run that
// ends before it wrote anything there, which left an empty folder. RemoveOwnTemps does the same for a
// run stopped by a signal. Where path was there already, the function does
// nothing; a folder the run wrote into is kept.
func NewDir(path string, spare ...string) (remove func(), err error) {
	top := ""
	for p := filepath.Clean(path); ; {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		top = p
		up := filepath.Dir(p)
		if up == p {
			break
		}
		p = up
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, err
	}
	if top == "" {
		return func() {}, nil
	}
	ownTemps.Lock()
	ownTemps.dirs[path] = ownDir{spare, top}
	ownTemps.Unlock()
	return func() {
		ownTemps.Lock()
		defer ownTemps.Unlock()
		if d, ok := ownTemps.dirs[path]; ok {
			removeIfSpare(path, d)
			delete(ownTemps.dirs, path)
		}
	}, nil
}

// removeIfSpare removes the folder path where it holds only files named in
// d.spare (those first), then its parents up to d.top that are empty.
func removeIfSpare(path string, d ownDir) {
	entries, err := os.ReadDir(path)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !slices.Contains(d.spare, e.Name()) || !e.Type().IsRegular() {
			return
		}
	}
	for _, e := range entries {
		os.Remove(filepath.Join(path, e.Name()))
	}
	for p := filepath.Clean(path); os.Remove(p) == nil && p != d.top; p = filepath.Dir(p) {
	}
}

func untrackTemp(p string) {
	ownTemps.Lock()
	delete(ownTemps.m, p)
	ownTemps.Unlock()
}

// RemoveOwnTemps deletes the temporary files this process is writing now,
// for a process about to end by a signal part way through a write, which
// would leave them (cli.RemoveTempsOnStop), and returns how many it
// deleted. From then on no file of this process is made or renamed into
// place: its writes wait, until the process ends. It waits for a Set's
// Commit under way, so a set is in place whole or not at all; the files
// already in place are not touched. A folder of NewDir that holds nothing
// of the run's is removed.
func RemoveOwnTemps() int {
	ownTemps.Lock() // never unlocked: the process is ending
	n := 0
	for p := range ownTemps.m {
		if os.Remove(p) == nil {
			n++
		}
		delete(ownTemps.m, p)
	}
	for _, p := range deepestFirst(slices.Collect(maps.Keys(ownTemps.dirs))) {
		removeIfSpare(p, ownTemps.dirs[p]) // new/sub before new, which it empties
		delete(ownTemps.dirs, p)
	}
	for d := range ownTemps.tempDirs {
		os.RemoveAll(d)
		delete(ownTemps.tempDirs, d)
	}
	return n
}

// deepestFirst orders folders deepest first (by their absolute paths: a
// relative and an absolute name of folders one inside the other compare
// right), so that removing a folder made inside another leaves that one
// empty for its turn.
func deepestFirst(dirs []string) []string {
	depth := func(p string) int {
		if a, err := filepath.Abs(p); err == nil {
			p = a
		}
		return strings.Count(filepath.Clean(p), string(filepath.Separator))
	}
	slices.SortStableFunc(dirs, func(a, b string) int {
		if c := depth(b) - depth(a); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return dirs
}

// writeTemp writes the output of fill to a new temporary file for the
// target name in dir (synced, closed) and returns its path; on an error
// nothing is left.
func writeTemp(dir, name string, fill func(w io.Writer) error) (_ string, err error) {
	ownTemps.Lock() // made and tracked at once: RemoveOwnTemps sees it
	f, err := os.CreateTemp(dir, tempPattern(name))
	if err != nil {
		ownTemps.Unlock()
		// Named by its folder: the temporary's hidden name is nobody's.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("cannot create a file in %s: %w", dir, err)
	}
	tmp := f.Name()
	ownTemps.m[tmp] = true
	ownTemps.Unlock()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			untrackTemp(tmp)
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
// them into place. A failure — a full disk, an error of the work between
// two files, a rename that fails — leaves none of the new files and every
// earlier one as it was, and no temporary file once Abort has run. (A
// process killed while it writes leaves its temporaries, named as
// WriteAtomic's, which RemoveTemps removes where no other writer is at
// work, and RemoveOwnTemps where a signal stops it; killed (kill -9)
// inside Commit, it may leave part of the set renamed.) Not
// safe for concurrent use.
type Set struct {
	dir        string
	tmps, dsts []string
	made       map[string]func() // NewDir's, by folder: each goes again if the set never lands
	committed  bool
}

// NewSet starts a set of files in dir, which it creates (NewDir: where it
// made dir, Abort before a Commit removes it again, and so does a stopping
// signal's RemoveOwnTemps).
func NewSet(dir string) (*Set, error) {
	remove, err := NewDir(dir)
	if err != nil {
		return nil, err
	}
	return &Set{dir: dir, made: map[string]func(){dir: remove}}, nil
}

// NewFiles starts a set of files in any folders (WriteFile): a command's
// outputs, all or none.
func NewFiles() *Set { return &Set{made: map[string]func(){}} }

// Write writes the output of fill as the set's file name (a name of a
// file of dir, which Commit replaces: a folder or link there fails it).
func (s *Set) Write(name string, fill func(w io.Writer) error) error {
	return s.WriteFile(filepath.Join(s.dir, name), fill)
}

// WriteFile writes the output of fill as the set's file path, in any
// folder (its temporary beside it), which Commit replaces with the others.
// A folder that is not there is made (NewDir), and Abort before a Commit
// removes it again.
func (s *Set) WriteFile(path string, fill func(w io.Writer) error) error {
	dir := filepath.Dir(path)
	if _, seen := s.made[dir]; !seen {
		remove, err := NewDir(dir)
		if err != nil {
			return err
		}
		s.made[dir] = remove
	}
	tmp, err := writeTemp(dir, filepath.Base(path), fill)
	if err != nil {
		return err
	}
	s.tmps, s.dsts = append(s.tmps, tmp), append(s.dsts, path)
	return nil
}

// Commit renames every written file into place and returns their paths.
// An earlier file of a name is first kept as a hard link (.NAME.old-…;
// moved aside where the file system has none) and put back should a later
// rename fail; then the renames made are undone too, and the error names
// the file. Each rename replaces its name at once, so another process
// writing the same names never finds one missing, and an undo touches
// only this set's own files.
func (s *Set) Commit() ([]string, error) {
	// A stopping signal's RemoveOwnTemps waits for the renames: the set is
	// then in place whole or not at all, never in part.
	ownTemps.Lock()
	defer ownTemps.Unlock()
	// old: a link to the earlier dst ("": none), kept until the set is in;
	// ours: the file put there, to undo only our own (another process may
	// write the same names at once: moving the earlier file aside left a
	// moment without one, and undoing removed the other's new file).
	type moved struct {
		dst, old string
		ours     os.FileInfo
	}
	var done []moved
	fail := func(i int, err error) ([]string, error) {
		for k := len(done) - 1; k >= 0; k-- {
			d := done[k]
			if cur, err := os.Lstat(d.dst); err == nil && os.SameFile(cur, d.ours) {
				if d.old != "" {
					os.Rename(d.old, d.dst) // the earlier file back, at once
				} else {
					os.Remove(d.dst)
				}
			}
			if d.old != "" {
				os.Remove(d.old) // where another's file is there now, or the rename failed
			}
		}
		for _, tmp := range s.tmps[i:] {
			os.Remove(tmp)
			delete(ownTemps.m, tmp)
		}
		s.tmps = nil
		return nil, err
	}
	for i, tmp := range s.tmps {
		dst, old := s.dsts[i], ""
		if fi, err := os.Lstat(dst); err == nil {
			if !fi.Mode().IsRegular() {
				return fail(i, fmt.Errorf("%s is not a file: not replaced", dst))
			}
			old = filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".old-"+strings.TrimPrefix(filepath.Base(tmp), "."+filepath.Base(dst)+".tmp-"))
			switch err := os.Link(dst, old); {
			case errors.Is(err, fs.ErrNotExist):
				old = "" // gone since (another writer's undo): nothing to keep
			case err != nil:
				// No hard links here: moved aside, as the one way to keep it.
				if err := os.Rename(dst, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fail(i, fmt.Errorf("moving aside %s: %w", dst, err))
				} else if err != nil {
					old = ""
				}
			}
		}
		ours, err := os.Lstat(tmp)
		if err == nil {
			err = os.Rename(tmp, dst) // replaces dst at once: never a moment without one
		}
		if err != nil {
			if old != "" {
				if _, serr := os.Lstat(dst); errors.Is(serr, fs.ErrNotExist) {
					os.Rename(old, dst)
				}
				os.Remove(old)
			}
			return fail(i, fmt.Errorf("renaming %s: %w", tmp, err))
		}
		delete(ownTemps.m, tmp)
		done = append(done, moved{dst, old, ours})
	}
	for _, m := range done {
		if m.old != "" {
			os.Remove(m.old)
		}
	}
	synced := map[string]bool{}
	for _, dst := range s.dsts {
		if dir := filepath.Dir(dst); !synced[dir] {
			syncDir(dir)
			synced[dir] = true
		}
	}
	s.tmps = nil
	s.committed = true
	return s.dsts, nil
}

// Abort removes the set's temporary files, and the folders NewSet and
// WriteFile made where they hold nothing else; after Commit it does nothing.
func (s *Set) Abort() {
	for _, tmp := range s.tmps {
		os.Remove(tmp)
		untrackTemp(tmp)
	}
	s.tmps = nil
	if !s.committed {
		for _, d := range deepestFirst(slices.Collect(maps.Keys(s.made))) {
			s.made[d]() // a folder made inside another first, which empties it
		}
		s.made = nil
	}
}

// tempPattern is the name of WriteAtomic's temporary file for a target name.
func tempPattern(name string) string { return "." + name + ".tmp-*" }

// TempPattern is the Glob pattern of WriteAtomic's temporary
// files for a target name (for RemoveStaleTemps).
func TempPattern(name string) string { return tempPattern(name) }

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
