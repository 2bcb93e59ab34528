//go:build unix

package data

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// asNobody runs this test binary's test named run with env added, as the
// user nobody where the tests run as root (root reads what a chmod 000
// refuses), and returns its output; it skips where no other user can run it.
func asNobody(t *testing.T, run string, env ...string) string {
	t.Helper()
	self := os.Args[0]
	cmd := exec.Command(self, "-test.run=^"+run+"$", "-test.v")
	if os.Geteuid() == 0 {
		bin, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		os.Chmod(dir, 0o755)
		self = filepath.Join(dir, "data.test")
		if err := os.WriteFile(self, bin, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(self, "-test.run=^"+run+"$", "-test.v")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Skipf("cannot run the test as another user here: %v", err)
	}
	if err != nil {
		t.Fatalf("%s as nobody: %v\n%s", run, err, out)
	}
	return string(out)
}

// TestUnreadableInFolder: a subfolder that cannot be read is passed over
// with a warning (it stopped the whole load: a drive's lost+found); a file
// that cannot be read is skipped and the folder not cached, so that it is
// read once it can be (it was cached as skipped, and stayed out of every
// later run without a word).
func TestUnreadableInFolder(t *testing.T) {
	if dir := os.Getenv("NCSN_TEST_FOLDER"); dir != "" { // the child
		var log bytes.Buffer
		ds, info, err := LoadFolder(FolderOptions{Path: dir, Size: 32, CacheDir: os.Getenv("NCSN_TEST_CACHE"), Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("LOADED %d images, cached %v\n%s", ds.N, info.Cached, log.String())
		return
	}
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		os.Chmod(d, 0o755) // the child may be another user
	}
	dir, cache := filepath.Join(base, "pics"), filepath.Join(base, "cache")
	good := makeTestFolder(t, dir, 6)
	os.MkdirAll(cache, 0o777)
	os.Chmod(cache, 0o777)
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	locked := filepath.Join(dir, "locked")
	os.MkdirAll(locked, 0o755)
	b, _ := os.ReadFile(filepath.Join(dir, "grey.png"))
	os.WriteFile(filepath.Join(locked, "hidden.png"), b, 0o644)
	os.Chmod(locked, 0o000)
	defer os.Chmod(locked, 0o755)
	shut := filepath.Join(dir, "shut.png")
	os.WriteFile(shut, b, 0o644)
	os.Chmod(shut, 0o000)
	env := []string{"NCSN_TEST_FOLDER=" + dir, "NCSN_TEST_CACHE=" + cache}
	out := asNobody(t, "TestUnreadableInFolder", env...)
	if !strings.Contains(out, "warning: skipping the folder "+locked) || !strings.Contains(out, "LOADED "+itoa(good)+" images, cached false") ||
		!strings.Contains(out, "not cached: 1 of its files could not be read") {
		t.Fatalf("an unreadable subfolder and file:\n%s", out)
	}
	os.Chmod(shut, 0o644)
	if out = asNobody(t, "TestUnreadableInFolder", env...); !strings.Contains(out, "LOADED "+itoa(good+1)+" images, cached false") {
		t.Fatalf("the file once readable:\n%s", out)
	}
	if out = asNobody(t, "TestUnreadableInFolder", env...); !strings.Contains(out, "LOADED "+itoa(good+1)+" images, cached true") {
		t.Fatalf("the next run, from the cache:\n%s", out)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
