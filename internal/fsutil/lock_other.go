//go:build !unix && !windows

package fsutil

import (
	"errors"
	"os"
)

// No file locking on this system: TryLock always succeeds.
var errWouldBlock = errors.New("would block")

func lockFile(*os.File) error   { return nil }
func unlockFile(*os.File) error { return nil }
