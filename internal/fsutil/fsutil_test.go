package fsutil

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestGlobTakesTheFolderLiterally: the folder's name is never a pattern.
func TestGlobTakesTheFolderLiterally(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"run1", "run[1]", "a*b", "axb", "q?"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
		os.WriteFile(filepath.Join(root, d, "x-"+strings.Map(func(r rune) rune {
			if strings.ContainsRune("[]*?", r) {
				return '_'
			}
			return r
		}, d)+".png"), nil, 0o644)
		os.WriteFile(filepath.Join(root, d, "y.txt"), nil, 0o644)
	}
	for _, c := range []struct{ dir, want string }{
		{"run1", "x-run1.png"}, {"run[1]", "x-run_1_.png"}, {"a*b", "x-a_b.png"}, {"axb", "x-axb.png"}, {"q?", "x-q_.png"},
	} {
		m, err := Glob(filepath.Join(root, c.dir), "*.png")
		if err != nil || len(m) != 1 || m[0] != filepath.Join(root, c.dir, c.want) {
			t.Errorf("Glob(%s) = %v, %v; want only %s", c.dir, m, err, c.want)
		}
	}
	if m, err := Glob(filepath.Join(root, "missing"), "*"); err != nil || m != nil {
		t.Errorf("a missing folder: %v, %v", m, err)
	}
	if m, err := Glob(filepath.Join(root, "run1", "y.txt"), "*"); err != nil || m != nil {
		t.Errorf("a file for a folder: %v, %v", m, err)
	}
	if _, err := Glob(root, "[x"); err == nil {
		t.Error("a bad pattern was accepted")
	}
}

// TestSet: nothing of a set appears before Commit; a failed write leaves
// nothing after Abort; a Commit that fails half-way (here at a folder in
// a file's place) undoes its renames and puts back the earlier files; one
// that succeeds replaces them and leaves nothing else.
func TestSet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	list := func() string {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return strings.Join(names, " ")
	}
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return string(b)
	}
	put := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	s, err := NewSet(dir)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "b"), []byte("old b"), 0o644)
	for _, n := range []string{"a", "b"} {
		if err := s.Write(n, put("new "+n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Write("c", func(io.Writer) error { return errors.New("disk full") }); err == nil {
		t.Fatal("a failed write was not reported")
	}
	if got := list(); !strings.HasPrefix(got, ".a.tmp-") || strings.Count(got, ".tmp-") != 2 || !strings.HasSuffix(got, " b") {
		t.Fatalf("before Commit: %q", got)
	}
	s.Abort()
	if got := list(); got != "b" || read("b") != "old b" {
		t.Fatalf("after Abort: %q, b %q", got, read("b"))
	}
	// c's place is taken by a folder: the Commit fails after a and b.
	os.MkdirAll(filepath.Join(dir, "c", "x"), 0o755)
	s, _ = NewSet(dir)
	for _, n := range []string{"a", "b", "c", "d"} {
		if err := s.Write(n, put("new "+n)); err != nil {
			t.Fatal(err)
		}
	}
	done, err := s.Commit()
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "c")+" is not a file") || done != nil {
		t.Fatalf("Commit: %v, %v", done, err)
	}
	if got := list(); got != "b c" || read("b") != "old b" {
		t.Fatalf("after a failed Commit: %q, b %q", got, read("b"))
	}
	os.RemoveAll(filepath.Join(dir, "c"))
	s, _ = NewSet(dir)
	for _, n := range []string{"a", "b", "d"} {
		s.Write(n, put("new "+n))
	}
	if done, err := s.Commit(); err != nil || len(done) != 3 {
		t.Fatalf("Commit: %v, %v", done, err)
	}
	if got := list(); got != "a b d" || read("a") != "new a" || read("b") != "new b" || read("d") != "new d" {
		t.Fatalf("after Commit: %q", got)
	}
}

// TestSetAbortRemovesNewDir: a set aborted before its Commit (a failed or
// interrupted run) removes the folder NewSet made for it, and the parents
// made with it, where once it left them empty; a committed set's folder,
// and a folder that was there before, stay.
func TestSetAbortRemovesNewDir(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b")
	s, err := NewSet(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write("x.png", func(w io.Writer) error { _, err := w.Write([]byte("x")); return err }); err != nil {
		t.Fatal(err)
	}
	s.Abort()
	if _, err := os.Stat(filepath.Join(root, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the aborted set's new folders are still there: %v", err)
	}
	s, _ = NewSet(dir)
	if err := s.Write("x.png", func(w io.Writer) error { _, err := w.Write([]byte("x")); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	s.Abort()
	if _, err := os.Stat(filepath.Join(dir, "x.png")); err != nil {
		t.Fatalf("the committed set: %v", err)
	}
	s, _ = NewSet(root) // there before
	s.Abort()
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("a folder that was there: %v", err)
	}
}

// TestWriteAtomicNamesTheFolder: where no file can be made in the folder
// (here Linux's /proc, which takes none even from root), the error names
// the folder, not the hidden temporary file that was never made.
func TestWriteAtomicNamesTheFolder(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux's /proc for a folder that takes no files")
	}
	err := WriteAtomic("/proc/z.safetensors", func(io.Writer) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "cannot create a file in /proc") || strings.Contains(err.Error(), ".tmp") {
		t.Fatalf("%v", err)
	}
}

// TestFilesInFolders: a set over several folders (cmd/sample's -gif, -out
// and -out-dir) lands whole or not at all, and the folders it made go again.
func TestFilesInFolders(t *testing.T) {
	root := t.TempDir()
	put := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	a, b := filepath.Join(root, "a.gif"), filepath.Join(root, "new", "deeper", "b.png")
	os.WriteFile(a, []byte("old a"), 0o644)
	s := NewFiles()
	if err := s.WriteFile(a, put("new a")); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteFile(b, put("new b")); err != nil {
		t.Fatal(err)
	}
	// The third's place is a folder: the Commit fails after a and b.
	c := filepath.Join(root, "c.png")
	os.Mkdir(c, 0o755)
	if err := s.WriteFile(c, put("new c")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(); err == nil {
		t.Fatal("the commit over a folder succeeded")
	}
	s.Abort()
	if got, _ := os.ReadFile(a); string(got) != "old a" {
		t.Errorf("a after the failed commit: %q, want the earlier file", got)
	}
	if _, err := os.Stat(filepath.Join(root, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the folders the failed set made are still there: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(root, ".*")); len(m) > 0 {
		t.Errorf("left behind: %v", m)
	}
	os.Remove(c)
	s = NewFiles()
	for _, p := range []string{a, b, c} {
		if err := s.WriteFile(p, put("new "+filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	s.Abort()
	for _, p := range []string{a, b, c} {
		if got, _ := os.ReadFile(p); string(got) != "new "+filepath.Base(p) {
			t.Errorf("%s: %q", p, got)
		}
	}
}

// TestNestedNewFoldersGo: a set that made new/ and new/sub/ (named one
// relatively, one absolutely) removes both when aborted, and so does a
// stopping signal's RemoveOwnTemps (it walked them in map order, and new/
// was left, empty, in 7 of 8 runs).
func TestNestedNewFoldersGo(t *testing.T) {
	t.Chdir(t.TempDir())
	abs, _ := filepath.Abs(filepath.Join("new", "sub", "grid.png"))
	put := func(w io.Writer) error { _, err := io.WriteString(w, "x"); return err }
	for _, how := range []string{"Abort", "RemoveOwnTemps"} {
		for range 8 {
			s := NewFiles()
			if err := s.WriteFile(filepath.Join("new", "film.gif"), put); err != nil {
				t.Fatal(err)
			}
			if err := s.WriteFile(abs, put); err != nil {
				t.Fatal(err)
			}
			if how == "Abort" {
				s.Abort()
			} else {
				RemoveOwnTemps()
				ownTemps.Unlock() // RemoveOwnTemps keeps it: the process was ending
			}
			if _, err := os.Stat("new"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s: the folders the set made are still there: %v", how, err)
			}
		}
	}
}

// TestTwoProcessesCommitOneSet: two processes writing sets of the same
// names into one folder (two cmd/plot -out DIR at once) never leave a name
// without its file, nor fail: the earlier file was moved aside for a
// moment, and a failed commit's undo removed the other's new file (a lost
// picture after both said they wrote it).
func TestTwoProcessesCommitOneSet(t *testing.T) {
	names := []string{"loss.png", "loss_per_level.png", "speed.png"}
	if dir := os.Getenv("FSUTIL_COMMIT_CHILD"); dir != "" {
		for i := range 300 {
			s, err := NewSet(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				s.Write(n, func(w io.Writer) error { _, err := io.WriteString(w, os.Getenv("FSUTIL_COMMIT_ID")); return err })
			}
			if _, err := s.Commit(); err != nil {
				t.Fatalf("commit %d: %v", i, err)
			}
			for _, n := range names {
				if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
					t.Fatalf("after commit %d: %v", i, err)
				}
			}
		}
		return
	}
	if runtime.GOOS == "windows" {
		t.Skip("POSIX renames")
	}
	dir := t.TempDir()
	var cmds []*exec.Cmd
	for _, id := range []string{"a", "b"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTwoProcessesCommitOneSet$")
		cmd.Env = append(os.Environ(), "FSUTIL_COMMIT_CHILD="+dir, "FSUTIL_COMMIT_ID="+id)
		cmds = append(cmds, cmd)
	}
	outs := make([][]byte, len(cmds))
	errs := make(chan error, len(cmds))
	for i, cmd := range cmds {
		go func() {
			var err error
			outs[i], err = cmd.CombinedOutput()
			errs <- err
		}()
	}
	for range cmds {
		if err := <-errs; err != nil {
			t.Errorf("a writer failed: %v", err)
		}
	}
	for i, o := range outs {
		if strings.Contains(string(o), "FAIL") {
			t.Errorf("writer %d:\n%s", i, o)
		}
	}
	for _, n := range names {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err != nil || (string(b) != "a" && string(b) != "b") {
			t.Errorf("%s: %q, %v", n, b, err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestWriteAtomicLeavesNoFolderOnFailure: the folders a failed write made
// go again (cmd/export -out a/b.safetensors stopped mid-write left an empty
// a/); those of a write that landed stay.
func TestWriteAtomicLeavesNoFolderOnFailure(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "a", "b", "x.bin")
	if err := WriteAtomic(p, func(io.Writer) error { return errors.New("disk full") }); err == nil {
		t.Fatal("the failed write said nothing")
	}
	if _, err := os.Stat(filepath.Join(root, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the failed write's folders are there: %v", err)
	}
	if err := WriteFileAtomic(p, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "x" {
		t.Fatalf("%q, %v", b, err)
	}
}
