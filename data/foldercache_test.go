package data

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestFolderCacheCountOverflow: a cache whose image count, times the bytes
// of an image, wraps past 2⁶⁴ to the bytes it holds is refused (it was
// taken as 2⁵⁴+1 images, and the first use of the last one panicked).
func TestFolderCacheCountOverflow(t *testing.T) {
	h := folderHeader{Source: "/x", Size: 32, Images: 1<<54 + 1}
	js, _ := json.Marshal(h)
	var buf bytes.Buffer
	buf.WriteString(folderMagic)
	binary.Write(&buf, binary.LittleEndian, uint32(len(js)))
	buf.Write(js)
	buf.Write(make([]byte, 3*32*32))
	s := sha256.Sum256(buf.Bytes())
	buf.Write(s[:])
	path := filepath.Join(t.TempDir(), "x.cache")
	os.WriteFile(path, buf.Bytes(), 0o644)
	if ds, _, err := readFolderCache(path); err == nil {
		t.Fatalf("accepted: %d images in %d values", ds.N, len(ds.Images))
	}
}
