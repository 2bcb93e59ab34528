//go:build linux

package cuda

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLibraryDirsRelative: a library in the folder NCSN_CUDA_LIBS names as
// "." (or another relative path) is loaded from there. "." joined with
// the library's name was the bare name, which the dynamic loader looked up
// on its own path: the library was found, then not loaded.
func TestLibraryDirsRelative(t *testing.T) {
	var lib string
	for _, pat := range []string{"/lib/*/libm.so.6", "/usr/lib/*/libm.so.6", "/lib64/libm.so.6", "/usr/lib64/libm.so.6"} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			lib = m[0]
			break
		}
	}
	if lib == "" {
		t.Skip("no libm.so.6 found to copy as a library")
	}
	b, err := os.ReadFile(lib)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const name = "libncsn-libdirs-test.so.1" // on no loader path
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "sub")} {
		if err := os.WriteFile(filepath.Join(d, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	for _, env := range []string{".", "sub", "./sub"} {
		t.Setenv(LibraryDirsEnv, env)
		_, got, err := dlopenAny("a test library", []string{name})
		if err != nil {
			t.Fatalf("%s=%s: %v", LibraryDirsEnv, env, err)
		}
		if want, _ := filepath.Abs(filepath.Join(env, name)); got != want {
			t.Errorf("%s=%s: loaded %s, want %s", LibraryDirsEnv, env, got, want)
		}
	}
}
