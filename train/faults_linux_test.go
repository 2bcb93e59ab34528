package train

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ncsn-go/ncsn/checkpoint"
)

// setFileSizeLimit makes every write that would grow a file past n bytes
// fail (EFBIG), as a full disk makes it fail: the fault is in the writes the
// program really does.
func setFileSizeLimit(n int) error {
	lim := syscall.Rlimit{Cur: uint64(n), Max: uint64(n)}
	return syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim)
}

// TestFullDiskDuringSave: a trainer whose checkpoint write fails part way
// exits with a one-line error naming the file; `latest` still names the
// previous, valid checkpoint, no partial file is left, and a resume once
// there is room ends with the bits of an uninterrupted run.
func TestFullDiskDuringSave(t *testing.T) {
	want, dir := t.TempDir(), t.TempDir()
	c := faultConfig(want)
	c.Steps = 20
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	c = faultConfig(dir)
	c.Steps = 7
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	before := final(t, dir)

	// Room for train.csv, not for a checkpoint (~100 kB).
	cmd := child(t, dir, 20, "TRAIN_CHILD_FILE_LIMIT=16384")
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	msg := lines[len(lines)-1] // the error, one line, after the child's log
	if err == nil || !strings.HasPrefix(msg, "checkpoint: writing ") || !strings.Contains(msg, checkpoint.FileName(14)) || !strings.Contains(msg, "file too large") {
		t.Fatalf("exit %v, said %q", err, out.String())
	}
	p, err := checkpoint.Latest(dir)
	if err != nil || filepath.Base(p) != checkpoint.FileName(7) {
		t.Fatalf("latest is %q (%v)", p, err)
	}
	sameState(t, before, final(t, dir))
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
	if all, _ := checkpoint.List(dir); len(all) != 1 {
		t.Fatalf("checkpoints %v", all)
	}
	c.Steps = 20
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	sameState(t, final(t, want), final(t, dir))
}

// TestReadOnlyFolderFailsFirst: a -ckpt-dir that takes no new files (its
// lock file writable, as in a folder made read-only after a run) fails
// before the first step, not after -save-every steps of work at the first
// save. Root writes anywhere, so as root the trainer runs as nobody.
func TestReadOnlyFolderFailsFirst(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "run")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, checkpoint.LockName)
	if err := os.WriteFile(lock, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(lock, 0o666)
	for _, d := range []string{filepath.Dir(base), base} {
		os.Chmod(d, 0o755) // the trainer below may be another user
	}
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	cmd := child(t, dir, 20)
	if os.Geteuid() == 0 {
		// This binary, where nobody may run it.
		bin, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		self := filepath.Join(base, "train.test")
		if err := os.WriteFile(self, bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, a := range cmd.Args { // after NCSN_TEST_EXEC's emulator, if any
			if a == os.Args[0] {
				cmd.Args[i] = self
				if i == 0 {
					cmd.Path = self
				}
			}
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		// Root in a user namespace without uid 65534, or a temporary folder
		// nobody may enter: the trainer cannot be started as another user.
		t.Skipf("cannot run the trainer as nobody here: %v", err)
	}
	if err == nil || !strings.Contains(string(out), "-ckpt-dir "+dir+": cannot write in") {
		t.Fatalf("trainer in a read-only folder: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "starting a fresh run") {
		t.Errorf("the run started before the folder was found read-only:\n%s", out)
	}
}
