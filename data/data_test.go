package data

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDecodeIDX(t *testing.T) {
	for _, name := range []string{"good-images.idx", "good-images.idx.gz"} {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			pix, n, rows, cols, err := DecodeIDXImages(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			if n != 3 || rows != 2 || cols != 2 || len(pix) != 12 {
				t.Fatalf("%d images %d×%d, %d values", n, rows, cols, len(pix))
			}
			if pix[0] != 0 || pix[1] != 1 || pix[2] != 128.0/255 || pix[11] != 40.0/255 {
				t.Fatalf("pixels %v", pix)
			}
		})
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
// not kept; a local file with the wrong checksum is moved aside, never used.
func TestEnsureSources(t *testing.T) {
	good, raw, spec := goodFile(t)
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

	// A damaged local file is moved aside, kept, and a good copy fetched.
	bad := filepath.Join(dir3, "x-images")
	os.WriteFile(bad, raw[:5], 0o644)
	serve = good
	p, err = ensure(Options{Dir: dir3, NoRegistry: true}, spec, sources{Mirrors: []string{srv.URL + "/ok"}})
	if err != nil || filepath.Base(p) != "x-images.gz" {
		t.Fatalf("damaged local file: %q %v", p, err)
	}
	if aside, _ := filepath.Glob(bad + ".corrupt-*"); len(aside) != 1 {
		t.Fatalf("damaged local file moved to %v", aside)
	} else if b, _ := os.ReadFile(aside[0]); !bytes.Equal(b, raw[:5]) {
		t.Fatal("the damaged file's bytes were not kept")
	}
	if _, err := os.Stat(bad); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("damaged local file still in place: %v", err)
	}

	// Another dataset's official file of the same name (MNIST's in a
	// Fashion-MNIST folder) is not damaged: refused, naming it, and left
	// where it is (it was moved aside as corrupt, and fetched over).
	other := []byte("another dataset's official file")
	sum := md5.Sum(other)
	mnistFiles["other"] = [2]fileSpec{{Name: "x-images.gz", GzMD5: hex.EncodeToString(sum[:])}}
	defer delete(mnistFiles, "other")
	dir4 := t.TempDir()
	theirs := filepath.Join(dir4, "x-images.gz")
	os.WriteFile(theirs, other, 0o644)
	_, err = ensure(Options{Dir: dir4, NoRegistry: true}, spec, sources{Mirrors: []string{srv.URL + "/ok"}})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "is MNIST's official x-images.gz, not the file wanted here") {
		t.Fatalf("another dataset's file: %v", err)
	}
	if b, _ := os.ReadFile(theirs); !bytes.Equal(b, other) {
		t.Fatal("another dataset's file was replaced")
	}
	if aside, _ := filepath.Glob(theirs + ".corrupt-*"); len(aside) != 0 {
		t.Fatalf("another dataset's file moved aside: %v", aside)
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
	got, gi, gj, err := MaxPairwiseDistance(context.Background(), ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want float64
	for i := 0; i < ds.N; i++ {
		for j := i + 1; j < ds.N; j++ {
			want = math.Max(want, math.Sqrt(exactD2(ds, i, j)))
		}
	}
	if got != want || math.Sqrt(exactD2(ds, gi, gj)) != want {
		t.Fatalf("max distance %g (pair %d,%d), brute force %g", got, gi, gj, want)
	}
	// Cancelled after the first block row: it stops there.
	ctx, cancel := context.WithCancel(context.Background())
	rows := 0
	_, _, _, err = MaxPairwiseDistance(ctx, ds, func(done, total int) { rows = done; cancel() })
	if !errors.Is(err, context.Canceled) || rows != 1 {
		t.Fatalf("cancelled after row 1 of 2: %v after %d rows", err, rows)
	}
}

// TestEnsureRefetch: a damaged file is never used. A truncated or bit-flipped
// download is refused and the next source tried, leaving nothing behind; a
// damaged file in the data directory is moved aside with its bytes kept, and
// a good copy fetched; when every source is bad, the error names the file
// and nothing lands at the target path.
func TestEnsureRefetch(t *testing.T) {
	pix := make([]byte, 4*5*6)
	for i := range pix {
		pix[i] = byte(i * 37)
	}
	imgRaw := EncodeIDXImages(pix, 4, 5, 6)
	labRaw := EncodeIDXLabels([]byte{3, 1, 4, 1})
	imgGz, labGz := gzipBytes(imgRaw), gzipBytes(labRaw)
	files := map[string][2]fileSpec{"test": {
		{"r-images.gz", md5hex(imgGz), md5hex(imgRaw)},
		{"r-labels.gz", md5hex(labGz), md5hex(labRaw)},
	}}
	good := map[string][]byte{"r-images.gz": imgGz, "r-labels.gz": labGz}
	half := func(b []byte) []byte { return b[:len(b)/2] }
	flip := func(b []byte) []byte {
		c := bytes.Clone(b)
		c[len(c)/2] ^= 0x10
		return c
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mode, name := path.Split(strings.TrimPrefix(r.URL.Path, "/"))
		b, ok := good[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		switch mode {
		case "good/":
			w.Write(b)
		case "short/": // a consistent but truncated file
			w.Write(half(b))
		case "cut/": // the connection drops halfway
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.Write(half(b))
		case "flipped/":
			w.Write(flip(b))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	mirrors := func(modes ...string) []string {
		var m []string
		for _, mode := range modes {
			m = append(m, srv.URL+"/"+mode)
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		local   map[string][]byte // in the data directory beforehand
		mirrors []string
		wantErr string // "" when the set must load
	}{
		{"truncated, cut, flipped, then good mirror", nil, mirrors("short", "cut", "flipped", "good"), ""},
		{"bit-flipped local .gz", map[string][]byte{"r-images.gz": flip(imgGz)}, mirrors("good"), ""},
		{"truncated local raw", map[string][]byte{"r-images": half(imgRaw)}, mirrors("missing", "good"), ""},
		{"damaged local .gz and raw", map[string][]byte{"r-images.gz": half(imgGz), "r-images": flip(imgRaw)}, mirrors("flipped", "good"), ""},
		{"every source bad", nil, mirrors("short", "cut", "flipped", "missing"), "r-images.gz"},
		{"damaged local, every source bad", map[string][]byte{"r-images.gz": flip(imgGz)}, mirrors("flipped"), "moved to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, b := range tc.local {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var log bytes.Buffer
			ds, err := loadIDX(Options{Dir: dir, Mirrors: tc.mirrors, NoRegistry: true, Log: &log}, "r", "test", files, sources{})

			for name, b := range tc.local {
				p := filepath.Join(dir, name)
				aside, _ := filepath.Glob(p + ".corrupt-*")
				if len(aside) != 1 {
					t.Fatalf("%s moved to %v", name, aside)
				}
				if got, _ := os.ReadFile(aside[0]); !bytes.Equal(got, b) {
					t.Fatalf("%s: the damaged bytes were not kept", aside[0])
				}
				logged := false
				for _, line := range strings.Split(log.String(), "\n") {
					logged = logged || strings.Contains(line, p+" ") && strings.Contains(line, aside[0])
				}
				if !logged {
					t.Fatalf("no log line names %s and %s:\n%s", p, aside[0], log.String())
				}
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.Contains(e.Name(), ".tmp-") {
					t.Fatalf("temporary file %s left behind", e.Name())
				}
			}
			if tc.wantErr != "" {
				if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				for _, m := range tc.mirrors {
					if !strings.Contains(err.Error(), m+"/r-images.gz") {
						t.Fatalf("error does not name %s: %v", m, err)
					}
				}
				for _, name := range []string{"r-images.gz", "r-images"} {
					if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
						t.Fatalf("%s exists after every source failed (%v)", name, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ds.N != 4 || ds.Height != 5 || ds.Width != 6 || !bytes.Equal(ds.Labels, []byte{3, 1, 4, 1}) || ds.Images[7] != float32(pix[7])/255 {
				t.Fatalf("dataset %d images %d×%d, labels %v", ds.N, ds.Height, ds.Width, ds.Labels)
			}
			if got, _ := os.ReadFile(filepath.Join(dir, "r-images.gz")); !bytes.Equal(got, imgGz) {
				t.Fatal("the landed file is not the good copy")
			}
		})
	}
}

// TestFashionHint: with no source reachable, the Fashion-MNIST error ends
// with how to install Debian's package; MNIST's with where its files can
// come from (it gave no hint).
func TestFashionHint(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	saved := fashionSystemDirs
	defer func() { fashionSystemDirs = saved }()
	sys := t.TempDir()
	fashionSystemDirs = []string{sys}
	for _, tc := range []struct {
		name     string
		load     func(Options, string) (*Dataset, error)
		mirrors  []string
		wantHint bool
	}{
		{"fashion, mirror answers 404", LoadFashion, []string{srv.URL}, true},
		{"fashion, no mirrors", LoadFashion, []string{}, true},
		{"mnist, no mirrors", LoadMNIST, []string{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.load(Options{Dir: t.TempDir(), Mirrors: tc.mirrors, NoRegistry: true}, "test")
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("error %v, want ErrUnavailable", err)
			}
			lines := strings.Split(err.Error(), "\n")
			last := lines[len(lines)-1]
			hasHint := strings.Contains(err.Error(), "apt-get")
			if hasHint != tc.wantHint {
				t.Fatalf("hint present %v, want %v:\n%v", hasHint, tc.wantHint, err)
			}
			if !tc.wantHint {
				if !strings.HasPrefix(strings.TrimSpace(last), "hint: copy the four official files") || !strings.Contains(last, "GOPROXY") {
					t.Fatalf("MNIST's last line %q", last)
				}
				return
			}
			for _, want := range []string{"apt-get install dataset-fashion-mnist", "(Debian/Ubuntu)", "/usr/share/datasets/fashion-mnist/"} {
				if !strings.Contains(last, want) {
					t.Fatalf("last line %q does not say %q", last, want)
				}
			}
			if !strings.Contains(err.Error(), filepath.Join(sys, "t10k-images-idx3-ubyte.gz")+": not there") {
				t.Fatalf("error does not list the system folder:\n%v", err)
			}
		})
	}
}

// TestHostileHeaderAlloc: a header declaring far more data than follows is
// an error at once, costing memory for the bytes present, not the declared.
func TestHostileHeaderAlloc(t *testing.T) {
	hostileGz := gzipBytes(hostileImagesHeader())
	for _, tc := range []struct {
		name     string
		read     func() error
		want     string
		maxAlloc uint64
	}{
		{"2^14 images of 256×256, 8 bytes", func() error {
			_, _, _, _, err := DecodeIDXImages(bytes.NewReader(hostileImagesHeader()))
			return err
		}, "truncated", 1 << 20},
		{"2^14 images of 256×256, gzipped", func() error {
			_, _, _, _, err := DecodeIDXImages(bytes.NewReader(hostileGz))
			return err
		}, "truncated", 1 << 20},
		{"2^24 images of 4096×4096", func() error {
			_, _, _, _, err := DecodeIDXImages(bytes.NewReader(idxImagesHeader(1<<24, 4096, 4096)))
			return err
		}, "implausible", 1 << 20},
		{"2^24 labels, 3 bytes", func() error {
			_, err := DecodeIDXLabels(bytes.NewReader(append(idxLabelsHeader(1<<24), 1, 2, 3)))
			return err
		}, "truncated", 1 << 20},
		{"PNG of 1024×(2^31-1), no pixels", func() error {
			_, err := decodeBatchPNG(bytes.NewReader(pngHeader(1024, 1<<31-1)), cifarBatch)
			return err
		}, "1 to 10000 rows", 1 << 20},
		{"endless JSON labels", func() error {
			_, err := decodeLabelsJSON(io.MultiReader(strings.NewReader("["), endless(' ')), 5*cifarBatch)
			return err
		}, "over", 16 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			var err error
			got := allocated(func() { err = tc.read() })
			if err == nil || !IsFormat(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a format error saying %q", err, tc.want)
			}
			if got > tc.maxAlloc {
				t.Fatalf("allocated %d bytes, limit %d", got, tc.maxAlloc)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}

// endless is a reader of the byte c, forever.
type endless byte

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

// TestDataDirAFile: a -data-dir that a file stands in for is one line
// before any source is tried.
func TestDataDirAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "afile")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, tc := range []struct{ dir, want string }{
		{file, "the data folder " + file + " (-data-dir) is a file, not a folder"},
		{filepath.Join(file, "sub", "mnist"), "cannot be made: " + file + " is a file, not a folder"},
	} {
		for _, name := range []string{"mnist", "fashion", "cifar10"} {
			_, err := Load(name, Options{Dir: tc.dir}, "train")
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s in %s: %v", name, tc.dir, err)
			}
		}
	}
}

// TestTempDirMissing: a TMPDIR that is not there is named, not met as
// "chdir …" from go mod download.
func TestTempDirMissing(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows takes TMP or TEMP")
	}
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "nowhere"))
	err := fromGoModule(*mnistModule, mnistFiles["train"][1], filepath.Join(t.TempDir(), "x"), Options{})
	if err == nil || !strings.Contains(err.Error(), "is not there (set TMPDIR to a folder)") {
		t.Fatalf("%v", err)
	}
}
