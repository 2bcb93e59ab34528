package fsutil

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrLocked is matched (errors.Is) by TryLock's error when another process
// holds the lock.
var ErrLocked = errors.New("locked by another process")

// LockedError says who holds a lock that TryLock could not take.
type LockedError struct {
	Path   string
	Holder string // as the holder wrote it: "pid N (PROGRAM) on HOST since TIME"
}

func (e *LockedError) Error() string { return e.Path + " is locked by " + e.Holder }

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Lock is an advisory exclusive lock on a file, held by this process until
// Unlock or until the process ends: the operating system releases it when
// the process dies, however it dies (kill -9 included), so a stale lock file
// never blocks anyone. Readers that do not lock are not affected.
type Lock struct {
	f    *os.File
	path string
}

// TryLock takes the lock on path (creating the file) without waiting. The
// file then names the holder (process id, host, start time), which is what
// the *LockedError of a second process reports.
func TryLock(path string) (*Lock, error) {
	for try := 0; ; try++ {
		l, err := tryLockOnce(path)
		if !errors.Is(err, errRemoved) {
			return l, err
		}
		if try == 100 {
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
	}
}

// errRemoved: the file locked was removed (UnlockRemove) since it was
// opened; the file now at the path is the lock.
var errRemoved = errors.New("lock file removed while it was being locked")

// afterOpen runs between tryLockOnce's open and lock (a test stands a
// holder's UnlockRemove in there).
var afterOpen = func(path string) {}

func tryLockOnce(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	afterOpen(path)
	if err := lockFile(f); err != nil {
		f.Close()
		if !errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		// The holder writes its name just after locking: give it a moment.
		holder := "another process"
		for try := 0; try < 20; try++ {
			if b, rerr := ReadRegular(path); rerr == nil && len(strings.TrimSpace(string(b))) > 0 {
				holder = strings.TrimSpace(string(b))
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		return nil, &LockedError{Path: path, Holder: holder}
	}
	if at, err := stillAt(f, path); !at {
		// Its holder removed it between our open and our lock: a third
		// process may hold a new file of that name by now.
		unlockFile(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		return nil, errRemoved
	}
	// A file of that name that is not a lock's (a user's notes named lock)
	// is not ours to overwrite.
	// One of only NUL bytes or spaces is a lock's whose rewrite a crash cut
	// short (a file system can leave it zero-filled).
	head := make([]byte, 64)
	if n, _ := f.ReadAt(head, 0); n > 0 && !strings.HasPrefix(string(head[:n]), "pid ") && strings.Trim(string(head[:n]), "\x00 \t\r\n") != "" {
		unlockFile(f)
		f.Close()
		return nil, fmt.Errorf("%s exists and is not a lock file (it begins %q): not overwritten; move it away", path, strings.TrimSpace(string(head[:min(n, 24)])))
	}
	host, _ := os.Hostname()
	// The program too: a trainer's folder may be held by an import.
	info := fmt.Sprintf("pid %d (%s) on %s since %s\n", os.Getpid(), filepath.Base(os.Args[0]), host, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(info), 0) // best effort: only error messages read it
	}
	return &Lock{f: f, path: path}, nil
}

// stillAt reports whether the open file f is the file at path: false and
// no error where none is there now, or another; an error where it cannot
// tell.
func stillAt(f *os.File, path string) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	pi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(fi, pi), nil
}

// WaitLock takes the lock on path as TryLock does, waiting up to wait while
// another process holds it (for locks held only for a moment, around a
// read and a write of one file); after that it returns TryLock's error.
func WaitLock(path string, wait time.Duration) (*Lock, error) {
	deadline := time.Now().Add(wait)
	for {
		l, err := TryLock(path)
		if err == nil || !errors.Is(err, ErrLocked) || time.Now().After(deadline) {
			return l, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// UnlockRemove removes the lock file and releases the lock, for locks of a
// moment whose files would pile up (one per folder fetched into, in the
// temporary folder). A process that opened the file before the removal
// finds, once it has the lock, that the file is gone, and takes the one
// now at the path instead (TryLock).
//
// Windows removes no file that is open: there the file goes once unlocked
// and closed, where no other process has it open, and stays otherwise.
func (l *Lock) UnlockRemove() error {
	if l == nil || l.f == nil {
		return nil
	}
	ours, _ := stillAt(l.f, l.path) // not another's, made after ours was removed
	removed := ours && os.Remove(l.path) == nil
	if err := l.Unlock(); err != nil {
		return err
	}
	if ours && !removed {
		// Open, it could not be removed (Windows); closed now, it can,
		// unless a waiter has it open: then it stays, as Unlock leaves it.
		os.Remove(l.path)
	}
	return nil
}

// Unlock releases the lock. The file stays (a run folder's lock names its
// last holder); UnlockRemove removes it.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unlockFile(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// TurnLock takes a lock of a moment on the work named by key (a folder's or
// a file's absolute path: one fetch into a folder, one training of a cached
// classifier), as a file of the temporary folder — none in the user's
// folders — that its unlock removes. While another process holds it, it
// waits, calling waiting once with the holder; only ctx's end is an error.
// The caller looks again, under the lock, for what another process made
// (one that finished just before the lock was taken made it too). Where
// no lock can be had (a temporary folder that takes no files) the work goes
// on without one.
//
// Only processes that share one temporary folder (TMPDIR) see each other's
// locks: a batch system's per-job TMPDIR, or two machines sharing a data
// folder, still do the work twice.
func TurnLock(ctx context.Context, key string, waiting func(holder string)) (unlock func(), err error) {
	sum := sha256.Sum256([]byte(key))
	path := filepath.Join(os.TempDir(), "ncsn-lock-"+hex.EncodeToString(sum[:8])+".lock")
	for said := false; ; {
		l, err := TryLock(path)
		if err == nil {
			return func() { l.UnlockRemove() }, nil
		}
		var held *LockedError
		if !errors.As(err, &held) {
			return func() {}, nil
		}
		if !said {
			waiting(held.Holder)
			said = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// LockKey is TurnLock's key for the file or folder path: its absolute path
// with the links in it followed (two paths to one folder are one key).
func LockKey(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	// The folder's links, where the file itself is not there yet.
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(dir, filepath.Base(abs))
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	return abs
}
