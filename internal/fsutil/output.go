package fsutil

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Magic numbers of the files the commands write.
const (
	PNGMagic = "\x89PNG\r\n\x1a\n"
	GIFMagic = "GIF8"
)

// CheckOutFile checks, before any work, the output file path that flag
// names: its name ends in ext (".png"), a file already there begins with
// magic (an earlier output of the same kind, which may be replaced; never
// a checkpoint, notes or anything else), and its folder, or the nearest
// one above it where the writer would make it, takes files.
func CheckOutFile(flag, path, ext, magic string) error {
	if path == "" {
		return nil
	}
	kind := strings.ToUpper(ext[1:])
	if !strings.EqualFold(filepath.Ext(path), ext) {
		return fmt.Errorf("%s %s: the file is written as %s; give a name ending in %s", flag, path, kind, ext)
	}
	if isLink(path) {
		// The writer replaces the name, so the link, not what it names (a
		// broken link too): refused now, as Set.Commit would after the work.
		return fmt.Errorf("%s %s is a symbolic link: not replaced (remove it, or give another name)", flag, path)
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		// Not there (its folder is made as it is written), or under a file.
		if derr := CheckOutDir(flag, filepath.Dir(path)); derr != nil || os.IsNotExist(err) {
			return derr
		}
		return fmt.Errorf("%s %s: %v", flag, path, err)
	case fi.IsDir():
		return fmt.Errorf("%s %s is a folder", flag, path)
	case !fi.Mode().IsRegular() || !HasMagic(path, magic):
		return fmt.Errorf("%s %s exists and is not a %s written before: not replaced (remove it, or give another name)", flag, path, kind)
	}
	return CheckWritableDir(flag, path, filepath.Dir(path))
}

func isLink(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode()&os.ModeSymlink != 0
}

// CheckOutDir checks that the folder flag names, or the nearest existing
// folder above it (where it would be made), takes files.
func CheckOutDir(flag, dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		if derr := CheckWritableDir(flag, dir, nearestDir(dir)); derr != nil || os.IsNotExist(err) {
			return derr
		}
		return fmt.Errorf("%s %s: %v", flag, dir, err)
	case !fi.IsDir():
		return fmt.Errorf("%s %s is a file, not a folder", flag, dir)
	}
	return CheckWritableDir(flag, dir, dir)
}

// HasMagic reports whether the file at path begins with magic.
func HasMagic(path, magic string) bool {
	f, err := OpenRegular(path)
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

// CheckWritableDir checks that a file can be created in dir (for flag's
// path).
func CheckWritableDir(flag, path, dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s %s: no folder %s", flag, path, dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s %s: %s is a file, not a folder", flag, path, dir)
	}
	f, err := os.CreateTemp(dir, writeCheck+"*")
	if err != nil {
		return fmt.Errorf("%s %s: cannot write in %s: %v", flag, path, dir, err)
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	// A process killed between the two left its check file: it goes now
	// (it holds nothing; one of a check under way elsewhere is only made
	// to be removed).
	if stale, err := Glob(dir, writeCheck+"*"); err == nil {
		for _, p := range stale {
			os.Remove(p)
		}
	}
	return nil
}

// writeCheck begins the names of CheckWritableDir's empty files.
const writeCheck = ".ncsn-write-check-"

// Replacing is the note of a write over an earlier file at path.
func Replacing(path string) string {
	if _, err := os.Stat(path); err == nil {
		return ", replacing the earlier one"
	}
	return ""
}
