//go:build unix

package train

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/internal/pipetest"
)

// TestPipesInRunFolder: a named pipe as the run folder's train.csv — in a
// fresh folder and on resume — or as its latest is an error at once (the
// trainer waited for a writer for ever, deaf to SIGINT and SIGTERM).
func TestPipesInRunFolder(t *testing.T) {
	dir := t.TempDir()
	resumed := tinyConfig(filepath.Join(dir, "resumed"))
	resumed.Steps = 2
	if _, err := Run(context.Background(), resumed); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(resumed.CkptDir, csvName))
	resumed.Steps = 3
	fresh := tinyConfig(filepath.Join(dir, "fresh"))
	os.MkdirAll(fresh.CkptDir, 0o755)
	latest := tinyConfig(filepath.Join(dir, "latest"))
	os.MkdirAll(latest.CkptDir, 0o755)
	pipetest.Make(t, filepath.Join(resumed.CkptDir, csvName))
	pipetest.Make(t, filepath.Join(fresh.CkptDir, csvName))
	pipetest.Make(t, filepath.Join(latest.CkptDir, "latest"))
	run := func(c Config) func() bool {
		return func() bool {
			_, err := Run(context.Background(), c)
			return errors.Is(err, fsutil.ErrNotRegular)
		}
	}
	pipetest.Refused(t, map[string]func() bool{
		"train.csv on resume":       run(resumed),
		"train.csv in a new folder": run(fresh),
		"latest":                    run(latest),
	})
}
