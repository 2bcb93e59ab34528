package data

// Fuzz targets for every reader of the package. Each one checks that the
// reader returns an error (wrapping ErrFormat) or a result that re-encodes to
// its input, and that it allocated no more than a small multiple of the bytes
// it was given: a header cannot buy memory the data does not back.
//
//	go test -run '^$' -fuzz '^FuzzDecodeIDXImages$' -fuzztime 45s ./data
//	go test -run '^$' -fuzz '^FuzzDecodeIDXLabels$' -fuzztime 45s ./data
//	go test -run '^$' -fuzz '^FuzzDecodeCIFARBatch$' -fuzztime 45s ./data
//	go test -run '^$' -fuzz '^FuzzRebuildFromNPM$' -fuzztime 45s ./data
//	go test -run '^$' -fuzz '^FuzzPlanesFromPNGRows$' -fuzztime 45s ./data
//
// Seeds are the f.Add calls below and testdata/fuzz/<FuzzName>/ (regenerated
// with NCSN_WRITE_TESTDATA=1 go test -run TestWriteFuzzCorpus ./data).

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fuzzRows is the images per batch PNG in FuzzRebuildFromNPM's packages (the
// real package has 10000), so a valid package stays a few kilobytes.
const fuzzRows = 2

// allocated returns the bytes allocated while fn ran (a fuzz worker runs one
// input at a time, so they are fn's).
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// gunzipped returns b decompressed when it is gzip (at most max bytes, and
// what could be read of a broken stream), else b.
func gunzipped(b []byte, max int64) []byte {
	if !isGzip(b) {
		return b
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return b
	}
	out, _ := io.ReadAll(io.LimitReader(zr, max))
	return out
}

// allocLimit is what a reader may allocate for the input in: a fixed
// allowance for buffers and decompressors, plus a multiple of the bytes
// really there (decompressed, for gzip).
func allocLimit(in []byte, fixed uint64) uint64 {
	return fixed + 16*uint64(max(len(in), len(gunzipped(in, 64<<20))))
}

func checkAlloc(t *testing.T, got, limit uint64, in []byte) {
	t.Helper()
	if got > limit {
		t.Fatalf("allocated %d bytes for a %d-byte input (limit %d)", got, len(in), limit)
	}
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func idxImagesHeader(n, rows, cols uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(
		binary.BigEndian.AppendUint32(nil, idxImagesMagic), n), rows), cols)
}

func idxLabelsHeader(n uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, idxLabelsMagic), n)
}

func testdataFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// idxFiles are the hand-made files in testdata/, all of them seeds for both
// IDX readers.
var idxFiles = []string{
	"bad-label.idx", "corrupt-images.idx.gz", "empty.idx", "good-images.idx", "good-images.idx.gz",
	"good-labels.idx", "huge-count.idx", "labels-as-images.idx", "short-labels.idx", "trailing-images.idx",
	"truncated-header.idx", "truncated-images.gz", "truncated-images.idx", "wrong-magic.idx",
}

// hostileImagesHeader declares 2^14 images of 256×256 (1 GiB, the most a
// header may declare) and brings 8 bytes.
func hostileImagesHeader() []byte {
	return append(idxImagesHeader(1<<14, 256, 256), 1, 2, 3, 4, 5, 6, 7, 8)
}

func FuzzDecodeIDXImages(f *testing.F) {
	for _, name := range idxFiles {
		f.Add(testdataFile(f, name))
	}
	f.Add(hostileImagesHeader())
	f.Add(idxImagesHeader(1<<24, 4096, 4096))
	f.Add(gzipBytes(hostileImagesHeader()))
	f.Add(append(idxImagesHeader(2, 1, 3), 0, 1, 2, 253, 254, 255))
	f.Fuzz(func(t *testing.T, in []byte) {
		var (
			pix           []float32
			n, rows, cols int
			err           error
		)
		got := allocated(func() { pix, n, rows, cols, err = DecodeIDXImages(bytes.NewReader(in)) })
		checkAlloc(t, got, allocLimit(in, 2<<20), in)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error does not wrap ErrFormat: %v", err)
			}
			if pix != nil || n != 0 {
				t.Fatalf("error %v with %d images", err, n)
			}
			return
		}
		if n < 1 || rows < 1 || cols < 1 || len(pix) != n*rows*cols {
			t.Fatalf("%d images of %d×%d in %d values", n, rows, cols, len(pix))
		}
		raw := make([]byte, len(pix))
		for i, v := range pix {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("value %d is %g, outside [0,1]", i, v)
			}
			raw[i] = byte(math.Round(float64(v) * 255))
		}
		if !bytes.Equal(EncodeIDXImages(raw, n, rows, cols), gunzipped(in, math.MaxInt64)) {
			t.Fatal("the decoded images do not re-encode to the input")
		}
	})
}

func FuzzDecodeIDXLabels(f *testing.F) {
	for _, name := range idxFiles {
		f.Add(testdataFile(f, name))
	}
	f.Add(idxLabelsHeader(1 << 24))
	f.Add(append(idxLabelsHeader(1<<24), 1, 2, 3))
	f.Add(gzipBytes(EncodeIDXLabels([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})))
	f.Fuzz(func(t *testing.T, in []byte) {
		var (
			lab []uint8
			err error
		)
		got := allocated(func() { lab, err = DecodeIDXLabels(bytes.NewReader(in)) })
		checkAlloc(t, got, allocLimit(in, 2<<20), in)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error does not wrap ErrFormat: %v", err)
			}
			if lab != nil {
				t.Fatalf("error %v with %d labels", err, len(lab))
			}
			return
		}
		if len(lab) == 0 {
			t.Fatal("no labels and no error")
		}
		for i, l := range lab {
			if l > 9 {
				t.Fatalf("label %d is %d", i, l)
			}
		}
		if !bytes.Equal(EncodeIDXLabels(lab), gunzipped(in, math.MaxInt64)) {
			t.Fatal("the decoded labels do not re-encode to the input")
		}
	})
}

func FuzzDecodeCIFARBatch(f *testing.F) {
	one := batch(1, func(int) byte { return 3 })
	f.Add(one)
	f.Add(batch(2, func(i int) byte { return byte(9 * i) }))
	f.Add(one[:cifarRecord-1])
	f.Add(append(one, 0))
	f.Add(batch(1, func(int) byte { return 10 }))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		var (
			pix []float32
			lab []uint8
			err error
		)
		got := allocated(func() { pix, lab, err = DecodeCIFARBatch(bytes.NewReader(in)) })
		checkAlloc(t, got, allocLimit(in, 2<<20), in)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error does not wrap ErrFormat: %v", err)
			}
			return
		}
		if len(lab) == 0 || len(pix) != len(lab)*3072 {
			t.Fatalf("%d labels, %d values", len(lab), len(pix))
		}
		var re []byte
		for i, l := range lab {
			if l > 9 {
				t.Fatalf("label %d is %d", i, l)
			}
			re = append(re, l)
			for _, v := range pix[i*3072 : (i+1)*3072] {
				if !(v >= 0 && v <= 1) {
					t.Fatalf("value %g outside [0,1]", v)
				}
				re = append(re, byte(math.Round(float64(v)*255)))
			}
		}
		if !bytes.Equal(re, in) {
			t.Fatal("the decoded batch does not re-encode to the input")
		}
	})
}

// rowsPNG encodes a 1024×rows image of the given kind whose pixels are a
// function of their position.
func rowsPNG(tb testing.TB, w, rows int, kind string) []byte {
	tb.Helper()
	r := image.Rect(0, 0, w, rows)
	var img image.Image
	switch kind {
	case "nrgba":
		m := image.NewNRGBA(r)
		for y := 0; y < rows; y++ {
			for x := 0; x < w; x++ {
				m.SetNRGBA(x, y, color.NRGBA{byte(x), byte(x / 4), byte(y), byte(200 + x%56)})
			}
		}
		img = m
	case "rgb":
		m := image.NewRGBA(r)
		for y := 0; y < rows; y++ {
			for x := 0; x < w; x++ {
				m.SetRGBA(x, y, color.RGBA{byte(x), byte(x / 4), byte(y * 9), 255})
			}
		}
		img = m
	case "gray16":
		m := image.NewGray16(r)
		for y := 0; y < rows; y++ {
			for x := 0; x < w; x++ {
				m.SetGray16(x, y, color.Gray16{uint16(x * 64)})
			}
		}
		img = m
	case "paletted":
		m := image.NewPaletted(r, color.Palette{color.Black, color.White, color.RGBA{200, 10, 30, 255}})
		for y := 0; y < rows; y++ {
			for x := 0; x < w; x++ {
				m.SetColorIndex(x, y, uint8((x/7+y)%3))
			}
		}
		img = m
	default:
		tb.Fatalf("no PNG kind %q", kind)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// pngHeader is a PNG signature, an IHDR chunk declaring w×h 8-bit RGBA and an
// IEND chunk, with valid CRCs: no pixel data at all.
func pngHeader(w, h uint32) []byte {
	chunk := func(b []byte, typ string, data []byte) []byte {
		b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
		td := append([]byte(typ), data...)
		b = append(b, td...)
		return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(td))
	}
	ihdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, w), h)
	ihdr = append(ihdr, 8, 6, 0, 0, 0)
	b := chunk([]byte("\x89PNG\r\n\x1a\n"), "IHDR", ihdr)
	return chunk(b, "IEND", nil)
}

func FuzzPlanesFromPNGRows(f *testing.F) {
	for _, kind := range []string{"nrgba", "rgb", "gray16", "paletted"} {
		f.Add(rowsPNG(f, 1024, 2, kind))
	}
	f.Add(rowsPNG(f, 1000, 2, "rgb"))
	f.Add(rowsPNG(f, 1024, 17, "paletted"))
	f.Add(pngHeader(1024, 1<<31-1))
	f.Add(pngHeader(1<<31-1, 1<<31-1))
	f.Add(pngHeader(1024, 3))
	const maxRows = 16
	f.Fuzz(func(t *testing.T, in []byte) {
		var (
			img    image.Image
			planes []byte
			err    error
		)
		got := allocated(func() {
			img, err = decodeBatchPNG(bytes.NewReader(in), maxRows)
			if err == nil {
				planes, err = PlanesFromPNGRows(img)
			}
		})
		checkAlloc(t, got, allocLimit(in, 2<<20), in)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error does not wrap ErrFormat: %v", err)
			}
			return
		}
		b := img.Bounds()
		if b.Dx() != 1024 || b.Dy() < 1 || b.Dy() > maxRows || len(planes) != b.Dy()*3072 {
			t.Fatalf("%v image gave %d bytes of planes", b, len(planes))
		}
		for y := 0; y < b.Dy(); y++ {
			for k := 0; k < 1024; k++ {
				R, G, B, A := img.At(b.Min.X+k, b.Min.Y+y).RGBA()
				if A != 0xffff {
					continue // NRGBA keeps its unpremultiplied bytes; see PlanesFromPNGRows
				}
				p := planes[y*3072:]
				if p[k] != uint8(R>>8) || p[1024+k] != uint8(G>>8) || p[2048+k] != uint8(B>>8) {
					t.Fatalf("pixel %d of image %d: planes %d,%d,%d, image %d,%d,%d", k, y, p[k], p[1024+k], p[2048+k], R>>8, G>>8, B>>8)
				}
			}
		}
	})
}

// npmTar builds an uncompressed tarball in the npm package's layout with
// fuzzRows images per batch, passing each file through edit (nil to drop it).
func npmTar(tb testing.TB, edit func(name string, b []byte) []byte) []byte {
	tb.Helper()
	files := []struct {
		name string
		body []byte
	}{}
	img := rowsPNG(tb, 1024, fuzzRows, "rgb")
	for _, b := range []string{"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"} {
		files = append(files, struct {
			name string
			body []byte
		}{"package/" + b + ".png", img})
	}
	labels := func(n int) []byte {
		var s []string
		for i := 0; i < n; i++ {
			s = append(s, fmt.Sprint(i%10))
		}
		return []byte("[" + strings.Join(s, ",") + "]")
	}
	files = append(files, struct {
		name string
		body []byte
	}{"package/train_lables.json", labels(5 * fuzzRows)}, struct {
		name string
		body []byte
	}{"package/test_lables.json", labels(fuzzRows)})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		b := f.body
		if edit != nil {
			b = edit(f.name, b)
		}
		if b == nil {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)), Format: tar.FormatUSTAR}); err != nil {
			tb.Fatal(err)
		}
		tw.Write(b)
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// npmSeeds are valid and broken packages, uncompressed.
func npmSeeds(tb testing.TB) map[string][]byte {
	tb.Helper()
	narrow := rowsPNG(tb, 1000, fuzzRows, "rgb")
	return map[string][]byte{
		"valid": npmTar(tb, nil),
		"no-test-batch": npmTar(tb, func(name string, b []byte) []byte {
			if strings.HasSuffix(name, "test_batch.png") {
				return nil
			}
			return b
		}),
		"hostile-png-header": npmTar(tb, func(name string, b []byte) []byte {
			if strings.HasSuffix(name, "data_batch_3.png") {
				return pngHeader(1024, 1<<31-1)
			}
			return b
		}),
		"label-not-a-class": npmTar(tb, func(name string, b []byte) []byte {
			if strings.HasSuffix(name, "test_lables.json") {
				return []byte("[3,10]")
			}
			return b
		}),
		"long-labels": npmTar(tb, func(name string, b []byte) []byte {
			if strings.HasSuffix(name, "train_lables.json") {
				return []byte("[1" + strings.Repeat(" ", 4096) + "]")
			}
			return b
		}),
		"wrong-width": npmTar(tb, func(name string, b []byte) []byte {
			if strings.HasSuffix(name, ".png") {
				return narrow
			}
			return b
		}),
	}
}

func FuzzRebuildFromNPM(f *testing.F) {
	for _, b := range npmSeeds(f) {
		f.Add(b)
	}
	f.Add(gzipBytes(npmTar(f, nil)))
	f.Add([]byte{})
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, in []byte) {
		// Gzip inputs go through rebuildFromNPM's gunzip; others straight
		// to the tar walker, so that mutations reach the tar, PNG and JSON
		// readers instead of breaking a deflate stream.
		var (
			files map[string][]byte
			err   error
		)
		got := allocated(func() { files, err = collectNPM(in, fuzzRows) })
		checkAlloc(t, got, allocLimit(in, 4<<20), in)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error does not wrap ErrFormat: %v", err)
			}
			if len(files) != 0 {
				t.Fatalf("error %v after emitting %d files", err, len(files))
			}
			return
		}
		if len(files) != len(cifarFiles) {
			t.Fatalf("%d files, want %d", len(files), len(cifarFiles))
		}
		for _, cf := range cifarFiles {
			b, ok := files[cf.Name]
			if !ok {
				t.Fatalf("no %s", cf.Name)
			}
			if cf.Name == "batches.meta.txt" {
				if string(b) != cifarMetaTxt {
					t.Fatalf("meta %q", b)
				}
				continue
			}
			if _, lab, err := DecodeCIFARBatch(bytes.NewReader(b)); err != nil || len(lab) != fuzzRows {
				t.Fatalf("%s: %d labels, %v", cf.Name, len(lab), err)
			}
		}
	})
}

// collectNPM runs npmBatches on a tarball, gzipped or not, collecting what
// it emits.
func collectNPM(in []byte, rows int) (map[string][]byte, error) {
	files := map[string][]byte{}
	var r io.Reader = bytes.NewReader(in)
	if isGzip(in) {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return files, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		r = zr
	}
	err := npmBatches(r, rows, func(name string, b []byte) error {
		if _, dup := files[name]; dup {
			return fmt.Errorf("%s emitted twice", name)
		}
		files[name] = b
		return nil
	})
	return files, err
}
