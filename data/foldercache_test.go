package data

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
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

// TestFolderCacheKeys: a GIF whose first frame covers part of its screen is
// that frame on a transparent screen (the frame alone was cropped and
// stretched over the whole image); a cache of another decoder's pixels is
// made again (there was no version to tell); a file name that is not UTF-8
// does not keep the cache from being used (it never matched); a cached
// folder with skipped files says so on every run (only the first did).
func TestFolderCacheKeys(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	orange := color.RGBA{250, 120, 0, 255}
	frame := image.NewPaletted(image.Rect(30, 30, 40, 40), color.Palette{color.Transparent, orange})
	for i := range frame.Pix {
		frame.Pix[i] = 1
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, &gif.GIF{Image: []*image.Paletted{frame}, Delay: []int{0}, Config: image.Config{ColorModel: frame.Palette, Width: 40, Height: 40}}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "corner.gif"), buf.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "caf\xe9.png"), []byte("not a png"), 0o644)
	os.WriteFile(filepath.Join(dir, "Gr\xf6\xdfe.png"), []byte("not a png"), 0o644) // two bad bytes in a row
	load := func() (*Dataset, *FolderInfo, string) {
		var log bytes.Buffer
		ds, info, err := LoadFolder(FolderOptions{Path: dir, Size: 32, CacheDir: cache, Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		return ds, info, log.String()
	}
	ds, info, _ := load()
	img := ds.Image(0) // (3, 32, 32): the top left black, the bottom right orange
	if ds.N != 1 || info.Cached || img[0] > 0.01 || img[31*32+31] < 0.9 || img[2*1024+31*32+31] > 0.1 {
		t.Fatalf("%d images (cached %v); top left R %.2f, bottom right R %.2f B %.2f", ds.N, info.Cached, img[0], img[31*32+31], img[2*1024+31*32+31])
	}
	_, info, log := load()
	if !info.Cached || !strings.Contains(log, "2 of its files did not decode when the cache was made (Gr") {
		t.Fatalf("the second load: cached %v\n%s", info.Cached, log)
	}
	// The cache as an earlier decoder made it.
	p := info.Cache
	old, h, err := readFolderCache(p)
	if err != nil {
		t.Fatal(err)
	}
	h.Decoder = 1
	if err := writeFolderCache(p, h, old); err != nil {
		t.Fatal(err)
	}
	if _, info, _ := load(); info.Cached {
		t.Fatal("a cache of another decoder's pixels was used")
	}
}
