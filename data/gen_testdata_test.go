package data

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteTestdata regenerates testdata/ when NCSN_WRITE_TESTDATA=1; the
// files are committed, and TestCorruptIDX reads them.
func TestWriteTestdata(t *testing.T) {
	if os.Getenv("NCSN_WRITE_TESTDATA") != "1" {
		t.Skip("set NCSN_WRITE_TESTDATA=1 to regenerate testdata/")
	}
	pix := []byte{0, 255, 128, 64, 1, 2, 3, 4, 10, 20, 30, 40}
	good := EncodeIDXImages(pix, 3, 2, 2)
	labels := EncodeIDXLabels([]byte{7, 0, 9})
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	badMagic := append([]byte(nil), good...)
	badMagic[3] = 0x01
	huge := EncodeIDXImages(nil, 1<<30, 28, 28)
	corruptGz := gz(good)
	corruptGz[len(corruptGz)-6] ^= 0xff // break the CRC
	files := map[string][]byte{
		"good-images.idx":       good,
		"good-images.idx.gz":    gz(good),
		"good-labels.idx":       labels,
		"truncated-images.idx":  good[:len(good)-3],
		"truncated-header.idx":  good[:10],
		"wrong-magic.idx":       badMagic,
		"trailing-images.idx":   append(append([]byte(nil), good...), 0),
		"huge-count.idx":        huge,
		"corrupt-images.idx.gz": corruptGz,
		"truncated-images.gz":   gz(good)[:20],
		"empty.idx":             {},
		"labels-as-images.idx":  labels,
		"bad-label.idx":         EncodeIDXLabels([]byte{1, 12}),
		"short-labels.idx":      EncodeIDXLabels([]byte{1, 2}),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
