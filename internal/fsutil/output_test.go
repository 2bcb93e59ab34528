package fsutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckOutFile: an output may replace an earlier file of its kind and
// be made in a new folder; anything else is refused with the flag and the
// path named.
func TestCheckOutFile(t *testing.T) {
	dir := t.TempDir()
	put := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	png, notes, file := put("old.png", PNGMagic+"rest"), put("notes.png", "my notes"), put("file", "x")
	os.Mkdir(filepath.Join(dir, "folder.png"), 0o755)
	link := filepath.Join(dir, "link.png") // to an earlier PNG: the writer would replace the link
	os.Symlink(png, link)
	broken := filepath.Join(dir, "broken.png")
	os.Symlink(filepath.Join(dir, "gone.png"), broken)
	for _, tc := range []struct {
		path, want string // want "": accepted
	}{
		{png, ""},
		{filepath.Join(dir, "new.png"), ""},
		{filepath.Join(dir, "a", "b", "new.png"), ""},
		{notes, "exists and is not a PNG written before"},
		{filepath.Join(dir, "x.jpg"), "give a name ending in .png"},
		{filepath.Join(dir, "folder.png"), "is a folder"},
		{link, "is a symbolic link: not replaced"},
		{broken, "is a symbolic link: not replaced"},
		{filepath.Join(file, "x.png"), "is a file, not a folder"},
		{filepath.Join(file, "sub", "x.png"), "is a file, not a folder"},
	} {
		err := CheckOutFile("-out", tc.path, ".png", PNGMagic)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "-out ")) {
			t.Errorf("%s: %v, want %q", tc.path, err, tc.want)
		}
	}
	if b, _ := os.ReadFile(notes); string(b) != "my notes" {
		t.Fatal("the notes changed")
	}
	if Replacing(png) == "" || Replacing(filepath.Join(dir, "new.png")) != "" {
		t.Fatal("Replacing")
	}
}

// TestWriteCheckLeavesNoFile: CheckWritableDir leaves no file behind, and
// takes away one a killed process left (a trainer killed during its check
// left .ncsn-write-check-… in its folder for good).
func TestWriteCheckLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, writeCheck+"123"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "keep"), nil, 0o644)
	if err := CheckWritableDir("-out", dir, dir); err != nil {
		t.Fatal(err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 || es[0].Name() != "keep" {
		t.Fatalf("the folder holds %v", es)
	}
}
