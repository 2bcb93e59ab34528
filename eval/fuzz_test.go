package eval

import (
	"bytes"
	"compress/zlib"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"reflect"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/sample"
)

// zeroClassifier is a valid classifier for c×h×w images with all weights 0:
// it predicts 0.1 for every class.
func zeroClassifier(c, h, w int) *Classifier {
	clf := &Classifier{Dataset: "zero", Channels: c, Height: h, Width: w, Accuracy: 0.5}
	clf.Names, clf.Shapes = layout(c, h, w)
	for _, s := range clf.Shapes {
		size := 1
		for _, d := range s {
			size *= d
		}
		clf.Weights = append(clf.Weights, make([]float32, size))
	}
	return clf
}

// classifierBody is the gob stream of the cache format without the
// checksum: version v, then x (a *Classifier or anything else).
func classifierBody(tb testing.TB, v int, x any) []byte {
	tb.Helper()
	var b bytes.Buffer
	enc := gob.NewEncoder(&b)
	if err := enc.Encode(v); err != nil {
		tb.Fatal(err)
	}
	if err := enc.Encode(x); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// withSum appends the SHA-256 trailer to body.
func withSum(body []byte) []byte {
	sum := sha256.Sum256(body)
	return append(body[:len(body):len(body)], sum[:]...)
}

// classifierSeeds are small bodies (no checksum) that reach the checks after
// the checksum: bad shapes, a bad version, other types, truncated gob.
func classifierSeeds(tb testing.TB) map[string][]byte {
	small := classifierBody(tb, cacheVersion, &Classifier{Dataset: "mnist", Channels: 1, Height: 28, Width: 28})
	return map[string][]byte{
		"no-weights":     small,
		"two-channels":   classifierBody(tb, cacheVersion, &Classifier{Channels: 2, Height: 8, Width: 8}),
		"huge":           classifierBody(tb, cacheVersion, &Classifier{Channels: 3, Height: 1 << 40, Width: 1 << 40}),
		"negative":       classifierBody(tb, cacheVersion, &Classifier{Channels: 1, Height: -8, Width: 8}),
		"odd-side":       classifierBody(tb, cacheVersion, &Classifier{Channels: 1, Height: 30, Width: 30}),
		"bad-shapes":     classifierBody(tb, cacheVersion, &Classifier{Channels: 1, Height: 4, Width: 4, Names: []string{"c1.w"}, Shapes: [][]int{{-1, 1 << 62}}, Weights: [][]float32{{1}}}),
		"version-2":      classifierBody(tb, 2, &Classifier{Channels: 1, Height: 8, Width: 8}),
		"not-classifier": classifierBody(tb, cacheVersion, map[string][]int{"x": {1, 2}}),
		"truncated-gob":  small[:len(small)/2],
		"empty":          {},
	}
}

// FuzzDecodeClassifier feeds each input twice: raw (it mostly fails the
// checksum) and with a correct SHA-256 appended, so that the gob decoding
// and the checks after it see hostile bodies. A decoded classifier must be
// usable (check passes) and survive an Encode round trip.
func FuzzDecodeClassifier(f *testing.F) {
	for _, b := range classifierSeeds(f) {
		f.Add(b)
	}
	valid := classifierBody(f, cacheVersion, zeroClassifier(1, 4, 4))
	f.Add(valid)
	f.Add(withSum(valid))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, in := range [][]byte{body, withSum(body)} {
			c, err := DecodeClassifier(bytes.NewReader(in))
			if err != nil {
				if !errors.Is(err, ErrCache) || !strings.HasPrefix(err.Error(), "eval: ") {
					t.Fatalf("error %q does not wrap ErrCache", err)
				}
				continue
			}
			if err := c.check(); err != nil {
				t.Fatalf("decoded a classifier that fails its check: %v", err)
			}
			var b bytes.Buffer
			if err := c.Encode(&b); err != nil {
				t.Fatal(err)
			}
			d, err := DecodeClassifier(&b)
			if err != nil {
				t.Fatalf("round trip: %v", err)
			}
			if !reflect.DeepEqual(c, d) {
				t.Fatal("round trip changed the classifier")
			}
		}
	})
}

// Shapes of the real datasets, without data: what gridTiles needs.
var (
	mnistShape = &data.Dataset{Name: "mnist", Channels: 1, Height: 28, Width: 28}
	cifarShape = &data.Dataset{Name: "cifar10", Channels: 3, Height: 32, Width: 32}
)

// encodePNG is img as a PNG file.
func encodePNG(tb testing.TB, img image.Image) []byte {
	tb.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// rawPNG builds a PNG file by hand, for what image/png does not write
// (grey+alpha, 1-bit grey) and what it would refuse to (huge sizes):
// an IHDR, one IDAT of the zlib-compressed rows (each given with its filter
// byte) and an IEND.
func rawPNG(w, h uint32, depth, colorType byte, rows []byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, body []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(body)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(body)
		b.WriteString(typ)
		b.Write(body)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	chunk("IHDR", append(ihdr, depth, colorType, 0, 0, 0))
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(rows)
	zw.Close()
	chunk("IDAT", z.Bytes())
	chunk("IEND", nil)
	return b.Bytes()
}

// greyAlphaRows are the rows of a w×h 8-bit grey+alpha image: grey v,
// opaque, each row with filter byte 0.
func greyAlphaRows(w, h int, v byte) []byte {
	var rows []byte
	for y := 0; y < h; y++ {
		rows = append(rows, 0)
		for x := 0; x < w; x++ {
			rows = append(rows, v, 255)
		}
	}
	return rows
}

// gridPNG is a grid of n constant images of the shape, as cmd/sample writes
// it (sample.Grid).
func gridPNG(tb testing.TB, shape *data.Dataset, n int) []byte {
	tb.Helper()
	vals := make([]float64, n*shape.Dim())
	for i := range vals {
		vals[i] = float64(1+i/shape.Dim()) / float64(n+1)
	}
	img, err := sample.Grid(vals, n, shape.Channels, shape.Height, shape.Width)
	if err != nil {
		tb.Fatal(err)
	}
	return encodePNG(tb, img)
}

// gridSize is the side of a cols-wide grid of side-pixel tiles.
func gridSize(cols, side int) int { return cols*(side+2) + 2 }

// samplePNGSeeds are valid grids of both shapes in several encodings and
// corrupt PNGs.
func samplePNGSeeds(tb testing.TB) map[string][]byte {
	mn := gridSize(2, 28) // a 2×2 grid of MNIST tiles
	pal := image.NewPaletted(image.Rect(0, 0, mn, mn), color.Palette{color.Black, color.Gray{Y: 128}, color.White})
	g16 := image.NewGray16(image.Rect(0, 0, mn, mn))
	// Tiles of MNIST's grid inside black 2-pixel borders, as sample.Grid
	// draws them.
	inTile := func(x, y int) bool { return x%30 >= 2 && y%30 >= 2 }
	for i := range pal.Pix {
		if inTile(i%mn, i/mn) {
			pal.Pix[i] = uint8(1 + i%2)
		}
	}
	for i := 0; i < len(g16.Pix); i += 2 {
		if inTile(i/2%mn, i/2/mn) {
			g16.Pix[i], g16.Pix[i+1] = 0x80, 0x80
		}
	}
	var greyAlpha []byte // its rows: grey 200 in the tiles, opaque
	for y := 0; y < mn; y++ {
		greyAlpha = append(greyAlpha, 0)
		for x := 0; x < mn; x++ {
			v := byte(0)
			if inTile(x, y) {
				v = 200
			}
			greyAlpha = append(greyAlpha, v, 255)
		}
	}
	grid := gridPNG(tb, mnistShape, 4)
	return map[string][]byte{
		"mnist-grid":      grid,
		"cifar10-grid":    gridPNG(tb, cifarShape, 3),
		"paletted":        encodePNG(tb, pal),
		"gray16":          encodePNG(tb, g16),
		"grey-alpha":      rawPNG(uint32(mn), uint32(mn), 8, 4, greyAlpha),
		"one-pixel":       encodePNG(tb, image.NewGray(image.Rect(0, 0, 1, 1))),
		"not-a-multiple":  encodePNG(tb, image.NewGray(image.Rect(0, 0, mn+1, mn-3))),
		"bomb":            rawPNG(100000, 100000, 8, 0, []byte{0, 0}),
		"bomb-pixels":     rawPNG(maxPNGSide, maxPNGSide, 8, 0, []byte{0, 0}),
		"truncated":       grid[:len(grid)/2],
		"header-only":     grid[:8],
		"short-rows":      rawPNG(64, 64, 8, 0, greyAlphaRows(4, 4, 1)),
		"bad-color-depth": rawPNG(64, 64, 3, 2, nil),
	}
}

// FuzzSamplePNG decodes a sample PNG and cuts it into MNIST and CIFAR-10
// tiles, and reads it as one sample of each: no panic, errors name the
// file, and what is read has the right length and values in [0,1].
func FuzzSamplePNG(f *testing.F) {
	for _, b := range samplePNGSeeds(f) {
		f.Add(b)
	}
	const name = "fuzz.png"
	f.Fuzz(func(t *testing.T, in []byte) {
		img, err := decodeSamplePNG(bytes.NewReader(in), name)
		if err != nil {
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if s := img.Bounds().Size(); s.X < 1 || s.Y < 1 || s.X > maxPNGSide || s.Y > maxPNGSide || s.X*s.Y > maxPNGPixels {
			t.Fatalf("decoded a %v image", s)
		}
		for _, shape := range []*data.Dataset{mnistShape, cifarShape} {
			out, n, err := gridTiles(img, name, shape)
			if err != nil {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), name) {
					t.Fatalf("%s: error %q", shape.Name, err)
				}
			} else {
				if n < 2 || len(out) != n*shape.Dim() {
					t.Fatalf("%s: %d values for %d tiles", shape.Name, len(out), n)
				}
				inUnit(t, out)
			}
			p, err := imagePixels(img, name, shape)
			if err != nil {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), name) {
					t.Fatalf("%s: error %q", shape.Name, err)
				}
				continue
			}
			if len(p) != shape.Dim() {
				t.Fatalf("%s: %d values for one image", shape.Name, len(p))
			}
			inUnit(t, p)
		}
	})
}

// inUnit fails unless every value is in [0,1].
func inUnit(t *testing.T, vals []float32) {
	t.Helper()
	for i, v := range vals {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("value %d is %g", i, v)
		}
	}
}
