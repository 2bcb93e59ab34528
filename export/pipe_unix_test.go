//go:build unix

package export

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ncsn-go/ncsn/safetensors"
)

// TestPipesRefused: a named pipe given as -import or -config is refused at once, and safetensors.Looks
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
		"Import -config": func() bool {
			in := filepath.Join(dir, "ref.safetensors")
			f, err := os.Create(in)
			if err != nil {
				return false
			}
			err = safetensors.Encode(f, &safetensors.File{Tensors: []safetensors.Tensor{{Name: "x", Shape: []int{1}, Data: []float32{1}}}})
			f.Close()
			if err != nil {
				return false
			}
			_, err = Import(Config{Import: in, ModelConfig: pipe, OutDir: filepath.Join(dir, "out")})
			return err != nil && strings.Contains(err.Error(), "-config")
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
