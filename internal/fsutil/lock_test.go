package fsutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary act as a second process that holds a lock
// until it is killed.
func TestMain(m *testing.M) {
	if p := os.Getenv("FSUTIL_HOLD_LOCK"); p != "" {
		if _, err := TryLock(p); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestLockTwoProcesses: while another process holds the lock, TryLock fails
// with ErrLocked naming that process; once it is killed with SIGKILL (no
// chance to clean up), the lock is free again.
func TestLockTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FSUTIL_HOLD_LOCK="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	if got := strings.TrimSpace(string(buf[:n])); got != "locked" {
		t.Fatalf("holder said %q", got)
	}
	_, err = TryLock(path)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	if want := fmt.Sprintf("pid %d (", cmd.Process.Pid); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name the holder (%s)", err, want)
	}
	cmd.Process.Kill() // SIGKILL
	cmd.Wait()
	l, err := TryLock(path)
	if err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestLockInProcess: a released lock can be taken again; the lock file
// stays and names its last holder.
func TestLockInProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	l, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), fmt.Sprintf("pid %d (fsutil.test) on ", os.Getpid())) {
		t.Fatalf("lock file says %q", b)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := TryLock(path)
	if err != nil {
		t.Fatalf("relock: %v", err)
	}
	l2.Unlock()
	if err := l2.Unlock(); err != nil {
		t.Fatalf("second unlock: %v", err)
	}
}

// TestLockNotOurs: a file of the lock's name that is not a lock (a user's
// notes) is refused, not truncated; an empty one is taken, and one a crash
// left zero-filled.
func TestLockNotOurs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	os.WriteFile(path, []byte("my notes\n"), 0o644)
	if l, err := TryLock(path); err == nil || !strings.Contains(err.Error(), `is not a lock file (it begins "my notes")`) {
		l.Unlock()
		t.Fatalf("a user's file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "my notes\n" {
		t.Fatalf("the user's file now holds %q", b)
	}
	for _, left := range []string{"", "\x00\x00\x00\x00\x00\x00\x00\x00", " \n"} { // empty; zero-filled by a crash
		os.WriteFile(path, []byte(left), 0o644)
		l, err := TryLock(path)
		if err != nil {
			t.Fatalf("a file of %q: %v", left, err)
		}
		l.Unlock()
	}
}

// TestWaitLock: WaitLock gives up with ErrLocked while the lock stays held,
// and takes it once the holder lets go.
func TestWaitLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	l, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WaitLock(path, 30*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("while held: %v, want ErrLocked", err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		l.Unlock()
	}()
	l2, err := WaitLock(path, 10*time.Second)
	if err != nil {
		t.Fatalf("after the holder let go: %v", err)
	}
	l2.Unlock()
}

// TestUnlockRemove: a lock of a moment removes its file (one per folder
// fetched into piled up in the temporary folder); a process that opened
// the old file before the removal does not take it for the lock once the
// path names another file (two would hold "the" lock).
func TestUnlockRemove(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.UnlockRemove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the lock file stayed: %v", err)
	}
	// Another's file made at the path after ours was removed stays.
	l, err = TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "windows" {
		l.UnlockRemove()
		return // no open file can be removed there: the rest cannot happen
	}
	os.Remove(p)
	os.WriteFile(p, []byte("pid 1 (other) on host since then\n"), 0o644)
	l.UnlockRemove()
	if b, err := os.ReadFile(p); err != nil || !strings.HasPrefix(string(b), "pid 1 (other)") {
		t.Fatalf("another's lock file was removed: %q, %v", b, err)
	}
	os.Remove(p)
	// Opened before its holder removed it, locked after: not the lock.
	old, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	os.Remove(p)
	l2, err := TryLock(p) // a third process: the new file at the path
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Unlock()
	if at, err := stillAt(old, p); at || err != nil {
		t.Fatalf("a removed file passed for the one at its path: %v", err)
	}
	if at, err := stillAt(l2.f, p); !at || err != nil {
		t.Fatalf("the file at the path did not pass: %v", err)
	}
	if _, err := tryLockOnce(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("a second lock while the third process holds it: %v", err)
	}
	l2.Unlock()
	// The file removed between TryLock's open and its lock: it takes the
	// file now at the path, and only that.
	q := filepath.Join(t.TempDir(), "y.lock")
	removed := 0
	afterOpen = func(path string) {
		if removed == 0 {
			os.Remove(path)
		}
		removed++
	}
	defer func() { afterOpen = func(string) {} }()
	l3, err := TryLock(q)
	at := false
	if err == nil {
		at, _ = stillAt(l3.f, q)
	}
	if err != nil || removed != 2 || !at {
		t.Fatalf("a lock file removed as it was locked: %v, %d opens", err, removed)
	}
	l3.Unlock()
}

// TestLockKey: two paths to one folder, through a link, are one key, also
// for a file not there yet.
func TestLockKey(t *testing.T) {
	dir := t.TempDir()
	folder := filepath.Join(dir, "data")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(folder, link); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	for _, name := range []string{"", "classifier-v1.gob"} {
		if a, b := LockKey(filepath.Join(folder, name)), LockKey(filepath.Join(link, name)); a != b {
			t.Errorf("%q: %s and %s", name, a, b)
		}
	}
}
