package train

import (
	"bytes"
	"context"
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
