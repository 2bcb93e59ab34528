package data

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
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

// TestDeclaredPixelsBeyondTheFile: an image file that declares more pixels
// than its bytes can hold (a 65-byte PNG of 16384² 16-bit pixels) is
// skipped before it is decoded (the decoder allocated 2 GiB for each, and
// four such files took 4 GB); a real image of the same format is not.
func TestDeclaredPixelsBeyondTheFile(t *testing.T) {
	dir := t.TempDir()
	// Signature, then an IHDR chunk: 16384 × 16384, 16-bit RGBA.
	ihdr := binary.BigEndian.AppendUint32(nil, 16384)
	ihdr = binary.BigEndian.AppendUint32(ihdr, 16384)
	ihdr = append(ihdr, 16, 6, 0, 0, 0)
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(ihdr)))
	chunk = append(chunk, "IHDR"...)
	chunk = append(chunk, ihdr...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	bomb := filepath.Join(dir, "bomb.png")
	os.WriteFile(bomb, append([]byte("\x89PNG\r\n\x1a\n"), chunk...), 0o644)
	err := decodeOne(bomb, 8, false, make([]uint8, 3*64), newDecodeBudget(decodeBytes))
	if err == nil || !strings.Contains(err.Error(), "declares 16384×16384 pixels, more than its") {
		t.Fatalf("got %v", err)
	}
	for _, format := range []string{"png", "jpeg"} {
		// The smallest real files of a large side: far above the bound.
		if least := leastEncodedBytes(format, 4000, 3000); least > 12e6/100 {
			t.Errorf("%s: %d bytes asked of 4000×3000 pixels", format, least)
		}
	}
	var b bytes.Buffer
	png.Encode(&b, image.NewGray(image.Rect(0, 0, 4000, 3000))) // all black: deflate's best case
	real := filepath.Join(dir, "black.png")
	os.WriteFile(real, b.Bytes(), 0o644)
	if err := decodeOne(real, 8, true, make([]uint8, 64), newDecodeBudget(decodeBytes)); err != nil {
		t.Fatalf("a black 4000×3000 PNG of %d bytes: %v", b.Len(), err)
	}
}
