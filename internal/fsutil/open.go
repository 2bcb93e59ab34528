package fsutil

import (
	"errors"
	"io"
	"os"
)

// ErrNotRegular is wrapped by OpenRegular's error for a path that is not a
// regular file: a folder, a named pipe, a device.
var ErrNotRegular = errors.New("not a regular file")

// OpenRegular opens the regular file at path (through symbolic links) for
// reading. Anything else is refused before it is opened, so that a named
// pipe given as an input file is an error and not a read that waits for a
// writer for ever; the error is an *os.PathError naming path.
func OpenRegular(path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &os.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	return os.Open(path)
}

// ReadRegular reads the whole regular file at path (os.ReadFile, which
// would wait on a named pipe for ever).
func ReadRegular(path string) ([]byte, error) {
	f, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
