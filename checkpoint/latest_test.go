package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLatestNamesACheckpointFile: a `latest` that names a folder, the lock,
// the training log, itself, a name with NUL or one too long is a corrupt
// latest, said in one line (a folder gave "read …: is a directory", the
// lock "move lock out", the log "move train.csv out").
func TestLatestNamesACheckpointFile(t *testing.T) {
	for _, name := range []string{".", "..", "sub", LockName, LogName, latestName, "a\x00b", strings.Repeat("x", 300)} {
		dir := t.TempDir()
		os.Mkdir(filepath.Join(dir, "sub"), 0o755)
		os.WriteFile(filepath.Join(dir, LockName), nil, 0o644)
		os.WriteFile(filepath.Join(dir, LogName), []byte("step,loss\n"), 0o644)
		os.WriteFile(filepath.Join(dir, latestName), []byte(name+"\n"), 0o644)
		if _, err := Latest(dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "checkpoint file") {
			t.Errorf("latest naming %.20q: %v", name, err)
		}
	}
}
