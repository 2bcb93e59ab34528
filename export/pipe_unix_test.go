//go:build unix

package export

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ncsn-go/ncsn/safetensors"
)

// TestPipesRefused: a named pipe given as -import is refused at once, and safetensors.Looks
// (which cmd/sample and cmd/eval ask of a -ckpt) does not take it for one:
// each opened it and waited for a writer for ever.
func TestPipesRefused(t *testing.T) {
	dir := t.TempDir()
	pipe := filepath.Join(dir, "x.safetensors")
	if err := syscall.Mkfifo(pipe, 0o644); err != nil {
		t.Skip("no named pipes here:", err)
	}
	for name, read := range map[string]func() bool{
		"safetensors.Looks": func() bool { return !safetensors.Looks(pipe) },
		"Import": func() bool {
			_, err := Import(Config{Import: pipe, OutDir: filepath.Join(dir, "out")})
			return err != nil
		},
	} {
		done := make(chan bool, 1)
		go func() { done <- read() }()
		select {
		case ok := <-done:
			if !ok {
				t.Errorf("%s: the pipe was taken for a file", name)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: still reading the pipe after 5 s", name)
		}
	}
}
