package generate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Magic numbers of the files the commands write.
const (
	pngMagic = "\x89PNG\r\n\x1a\n"
	gifMagic = "GIF8"
)

// checkOutputs refuses, before anything is sampled, an output that could not
// be written (a folder that is not there or not writable, a name of another
// format) or that would replace what is not an earlier output of the same
// kind: -out and -gif may replace a PNG or a GIF, never a checkpoint or any
// other file, and -out-dir must not hold samples of an earlier run (its
// sample-NNNNN.png would mix with the new ones).
func (c Config) checkOutputs() error {
	if err := checkFileOut("-out", c.Out, ".png", pngMagic); err != nil {
		return err
	}
	if err := checkFileOut("-gif", c.GIF, ".gif", gifMagic); err != nil {
		return err
	}
	if c.OutDir == "" {
		return nil
	}
	fi, err := os.Stat(c.OutDir)
	switch {
	case os.IsNotExist(err):
		return writableDir("-out-dir", c.OutDir, nearestDir(c.OutDir))
	case err != nil:
		return fmt.Errorf("%w: -out-dir %s: %v", ErrConfig, c.OutDir, err)
	case !fi.IsDir():
		return fmt.Errorf("%w: -out-dir %s is a file, not a folder", ErrConfig, c.OutDir)
	}
	if old, _ := filepath.Glob(filepath.Join(c.OutDir, "sample-*.png")); len(old) > 0 {
		return fmt.Errorf("%w: -out-dir %s already holds %d samples (sample-*.png) of an earlier run, which would mix with these: give an empty or new folder", ErrConfig, c.OutDir, len(old))
	}
	return writableDir("-out-dir", c.OutDir, c.OutDir)
}

// checkFileOut checks the output file path of flag: its extension, that an
// existing file there is one of magic's format, and that its folder takes
// files.
func checkFileOut(flag, path, ext, magic string) error {
	if path == "" {
		return nil
	}
	if !strings.EqualFold(filepath.Ext(path), ext) {
		return fmt.Errorf("%w: %s %s: the file is written as %s; give a name ending in %s", ErrConfig, flag, path, strings.ToUpper(ext[1:]), ext)
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		if derr := writableDir(flag, path, filepath.Dir(path)); derr != nil || os.IsNotExist(err) {
			return derr
		}
		return fmt.Errorf("%w: %s %s: %v", ErrConfig, flag, path, err)
	case fi.IsDir():
		return fmt.Errorf("%w: %s %s is a folder", ErrConfig, flag, path)
	case !fi.Mode().IsRegular() || !hasMagic(path, magic):
		return fmt.Errorf("%w: %s %s exists and is not a %s written before: not replaced (remove it, or give another name)", ErrConfig, flag, path, strings.ToUpper(ext[1:]))
	}
	return writableDir(flag, path, filepath.Dir(path))
}

// hasMagic reports whether the file at path begins with magic.
func hasMagic(path, magic string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, len(magic))
	n, _ := f.Read(head)
	return bytes.Equal(head[:n], []byte(magic))
}

// nearestDir is the deepest existing ancestor of path (where MkdirAll
// would start).
func nearestDir(path string) string {
	d := filepath.Dir(filepath.Clean(path))
	for {
		if _, err := os.Stat(d); err == nil || d == filepath.Dir(d) {
			return d
		}
		d = filepath.Dir(d)
	}
}

// writableDir checks that a file can be created in dir (for flag's path).
func writableDir(flag, path, dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%w: %s %s: no folder %s", ErrConfig, flag, path, dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s %s: %s is a file, not a folder", ErrConfig, flag, path, dir)
	}
	f, err := os.CreateTemp(dir, ".ncsn-write-check-*")
	if err != nil {
		return fmt.Errorf("%w: %s %s: cannot write in %s: %v", ErrConfig, flag, path, dir, err)
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

// replacing is the note of a write over an earlier file at path.
func replacing(path string) string {
	if _, err := os.Stat(path); err == nil {
		return ", replacing the earlier one"
	}
	return ""
}
