//go:build unix

package export

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/internal/pipetest"
	"github.com/ncsn-go/ncsn/safetensors"
)

// TestPipesRefused: a named pipe given as -import or -config is refused at
// once, and safetensors.Looks (which cmd/sample and cmd/eval ask of a
// -ckpt) does not take it for one: each opened it and waited for a writer
// for ever.
func TestPipesRefused(t *testing.T) {
	dir := t.TempDir()
	pipe := pipetest.Make(t, filepath.Join(dir, "x.safetensors"))
	pipetest.Refused(t, map[string]func() bool{
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
	})
}
