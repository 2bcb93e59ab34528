package data

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
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

// TestDecodeBudget: decodes that together exceed the budget wait for one
// another (a folder of decompression bombs held one 2 GiB image per core);
// one larger than the whole budget takes all of it.
func TestDecodeBudget(t *testing.T) {
	b := newDecodeBudget(100)
	first := b.take(1 << 40)
	if first != 100 {
		t.Fatalf("took %d of 100", first)
	}
	got := make(chan int64)
	go func() { got <- b.take(10) }()
	select {
	case n := <-got:
		t.Fatalf("a second take of %d while the budget was spent", n)
	case <-time.After(50 * time.Millisecond):
	}
	b.give(first)
	if n := <-got; n != 10 {
		t.Fatalf("took %d", n)
	}
	if n := b.take(90); n != 90 {
		t.Fatalf("took %d", n)
	}
}
