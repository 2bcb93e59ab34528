package data

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecodeIDX(t *testing.T) {
	for _, name := range []string{"good-images.idx", "good-images.idx.gz"} {
		f, err := os.Open(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		pix, n, rows, cols, err := DecodeIDXImages(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n != 3 || rows != 2 || cols != 2 || len(pix) != 12 {
			t.Fatalf("%s: %d images %d×%d, %d values", name, n, rows, cols, len(pix))
		}
		if pix[0] != 0 || pix[1] != 1 || pix[2] != 128.0/255 || pix[11] != 40.0/255 {
			t.Fatalf("%s: pixels %v", name, pix)
		}
	}
	ds, err := ReadIDXPair("t", "testdata/good-images.idx.gz", "testdata/good-labels.idx")
	if err != nil {
		t.Fatal(err)
	}
	if ds.N != 3 || ds.Labels[0] != 7 || ds.Labels[2] != 9 || ds.Dim() != 4 || ds.Image(2)[3] != 40.0/255 {
		t.Fatalf("dataset %+v", ds)
	}
}

// TestCorruptIDX: every malformed file is an error that names the file and
// says what is wrong; none panics or yields a short dataset.
func TestCorruptIDX(t *testing.T) {
	for _, tc := range []struct {
		images, labels, want string
	}{
		{"truncated-images.idx", "good-labels.idx", "truncated"},
		{"truncated-header.idx", "good-labels.idx", "short header"},
		{"wrong-magic.idx", "good-labels.idx", "magic"},
		{"trailing-images.idx", "good-labels.idx", "after the declared end"},
		{"huge-count.idx", "good-labels.idx", "implausible"},
		{"corrupt-images.idx.gz", "good-labels.idx", "checksum"},
		{"truncated-images.gz", "good-labels.idx", "truncated"},
		{"empty.idx", "good-labels.idx", "short header"},
		{"labels-as-images.idx", "good-labels.idx", "magic"},
		{"good-images.idx", "bad-label.idx", "not a digit class"},
		{"good-images.idx", "short-labels.idx", "2 labels for the 3 images"},
		{"good-images.idx", "good-images.idx", "magic"},
		{"missing.idx", "good-labels.idx", "no such file"},
	} {
		t.Run(tc.images+"+"+tc.labels, func(t *testing.T) {
			img, lab := filepath.Join("testdata", tc.images), filepath.Join("testdata", tc.labels)
			_, err := ReadIDXPair("t", img, lab)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not say %q", msg, tc.want)
			}
			if !strings.Contains(msg, "testdata/") {
				t.Fatalf("error %q names no file", msg)
			}
		})
	}
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// TestEnsureSources walks the source chain: a verified local file is used as
// it is; a missing one is downloaded, checked and landed; a bad download is
// not kept; a local file with the wrong checksum is reported, never replaced.
func TestEnsureSources(t *testing.T) {
	good, err := os.ReadFile("testdata/good-images.idx.gz")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile("testdata/good-images.idx")
	spec := fileSpec{Name: "x-images.gz", GzMD5: md5hex(good), RawMD5: md5hex(raw)}
	serve := good
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/x-images.gz") {
			http.NotFound(w, r)
			return
		}
		w.Write(serve)
	}))
	defer srv.Close()

	dir := t.TempDir()
	o := Options{Dir: dir, NoRegistry: true}
	p, err := ensure(o, spec, sources{Mirrors: []string{srv.URL + "/missing", srv.URL + "/ok"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); md5hex(got) != spec.GzMD5 {
		t.Fatal("landed file differs")
	}
	// Present and verified: no download needed even with no mirror.
	if _, err := ensure(Options{Dir: dir, Mirrors: []string{}, NoRegistry: true}, spec, sources{}); err != nil {
		t.Fatal(err)
	}

	// A download with the wrong bytes is refused and leaves nothing behind.
	dir2 := t.TempDir()
	serve = append([]byte(nil), good...)
	serve[len(serve)-1] ^= 1
	_, err = ensure(Options{Dir: dir2, NoRegistry: true}, spec, sources{Mirrors: []string{srv.URL + "/ok"}})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "MD5") {
		t.Fatalf("bad download: %v", err)
	}
	if left, _ := os.ReadDir(dir2); len(left) != 0 {
		t.Fatalf("bad download left %d files", len(left))
	}

	// A raw local copy is accepted on its raw checksum.
	dir3 := t.TempDir()
	os.WriteFile(filepath.Join(dir3, "x-images"), raw, 0o644)
	if p, err := ensure(Options{Dir: dir3, Mirrors: []string{}, NoRegistry: true}, spec, sources{}); err != nil || filepath.Base(p) != "x-images" {
		t.Fatalf("raw local copy: %q %v", p, err)
	}

	// A damaged local file is an error naming it, and it is left untouched.
	bad := filepath.Join(dir3, "x-images")
	os.WriteFile(bad, raw[:5], 0o644)
	_, err = ensure(Options{Dir: dir3, NoRegistry: true}, spec, sources{Mirrors: []string{srv.URL + "/ok"}})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("damaged local file: %v", err)
	}
	if b, _ := os.ReadFile(bad); len(b) != 5 {
		t.Fatal("damaged local file was replaced")
	}

	// Nothing reachable: one error listing every source tried.
	_, err = ensure(Options{Dir: t.TempDir(), NoRegistry: true}, spec, sources{Mirrors: []string{"http://127.0.0.1:1"}})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "not there") {
		t.Fatalf("unreachable: %v", err)
	}
}

// TestSystemCopy: a .gz copy with a rewritten header is accepted on its
// decompressed bytes and lands decompressed; a damaged one is refused.
func TestSystemCopy(t *testing.T) {
	raw, _ := os.ReadFile("testdata/good-images.idx")
	sys := t.TempDir()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Name = "rewritten-by-a-packager"
	zw.Write(raw)
	zw.Close()
	os.WriteFile(filepath.Join(sys, "x-images.gz"), buf.Bytes(), 0o644)
	spec := fileSpec{Name: "x-images.gz", GzMD5: "00000000000000000000000000000000", RawMD5: md5hex(raw)}
	dir := t.TempDir()
	p, err := ensure(Options{Dir: dir, Mirrors: []string{}}, spec, sources{SystemDirs: []string{sys}})
	if err != nil || filepath.Base(p) != "x-images" {
		t.Fatalf("%q %v", p, err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, raw) {
		t.Fatal("landed bytes differ")
	}
	spec.RawMD5 = md5hex([]byte("other"))
	if _, err := ensure(Options{Dir: t.TempDir(), Mirrors: []string{}}, spec, sources{SystemDirs: []string{sys}}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("wrong content accepted: %v", err)
	}
}

// TestRealFashion reads Debian's Fashion-MNIST package files when installed
// (CI installs them); it checks the real verification path end to end.
func TestRealFashion(t *testing.T) {
	if _, err := os.Stat(filepath.Join(FashionSystemDir, "t10k-images-idx3-ubyte.gz")); err != nil {
		t.Skip("dataset-fashion-mnist is not installed")
	}
	ds, err := LoadFashion(Options{Dir: t.TempDir(), Mirrors: []string{}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if ds.N != 10000 || ds.Height != 28 || ds.Width != 28 || ds.Labels[0] != 9 {
		t.Fatalf("Fashion test set: %d images %d×%d, first label %d", ds.N, ds.Height, ds.Width, ds.Labels[0])
	}
}

// TestMaxPairwiseDistance against brute force, with blocks of uneven size.
func TestMaxPairwiseDistance(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ds := &Dataset{N: 1500, Channels: 1, Height: 2, Width: 3}
	ds.Images = make([]float32, ds.N*6)
	for i := range ds.Images {
		ds.Images[i] = float32(r.Float64())
	}
	got, gi, gj := MaxPairwiseDistance(ds, nil)
	var want float64
	for i := 0; i < ds.N; i++ {
		for j := i + 1; j < ds.N; j++ {
			want = math.Max(want, math.Sqrt(exactD2(ds, i, j)))
		}
	}
	if got != want || math.Sqrt(exactD2(ds, gi, gj)) != want {
		t.Fatalf("max distance %g (pair %d,%d), brute force %g", got, gi, gj, want)
	}
}
