package data

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// MakeTestFolder writes a small folder of pictures: coloured discs and
// squares as RGB, grey and palette PNGs, JPEGs and GIFs of several sizes
// and aspect ratios in nested folders, plus a corrupt PNG, a text file, a
// hidden folder and a file with an image extension that is not an image.
// It returns the number of decodable images.
func makeTestFolder(t *testing.T, dir string, n int) int {
	t.Helper()
	colours := []color.RGBA{{220, 40, 40, 255}, {40, 200, 60, 255}, {40, 80, 230, 255}, {240, 220, 50, 255}}
	good := 0
	for i := 0; i < n; i++ {
		w, h := 40+7*(i%5), 40+5*(i%3) // not square: centre-cropped
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		c := colours[i%len(colours)]
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				dx, dy := float64(x-w/2), float64(y-h/2)
				inside := math.Hypot(dx, dy) < 12
				if i%2 == 1 {
					inside = math.Abs(dx) < 10 && math.Abs(dy) < 10
				}
				if inside {
					img.Set(x, y, c)
				} else {
					img.Set(x, y, color.RGBA{10, 10, 10, 255})
				}
			}
		}
		sub := filepath.Join(dir, []string{"a", "b/c", "."}[i%3])
		os.MkdirAll(sub, 0o755)
		var buf bytes.Buffer
		name := filepath.Join(sub, "img"+string(rune('A'+i%26))+string(rune('a'+i/26)))
		switch i % 5 {
		case 0, 1:
			png.Encode(&buf, img)
			name += ".png"
		case 2:
			jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
			name += ".JPG"
		case 3:
			gif.Encode(&buf, img, &gif.Options{NumColors: 16})
			name += ".gif"
		case 4: // palette PNG
			p := image.NewPaletted(img.Bounds(), palette.Plan9)
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					p.Set(x, y, img.At(x, y))
				}
			}
			png.Encode(&buf, p)
			name += ".png"
		}
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		good++
	}
	grey := image.NewGray(image.Rect(0, 0, 30, 30))
	for i := range grey.Pix {
		grey.Pix[i] = uint8(i)
	}
	var buf bytes.Buffer
	png.Encode(&buf, grey)
	os.WriteFile(filepath.Join(dir, "grey.png"), buf.Bytes(), 0o644)
	good++
	os.WriteFile(filepath.Join(dir, "corrupt.png"), buf.Bytes()[:len(buf.Bytes())/2], 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not an image"), 0o644)
	os.WriteFile(filepath.Join(dir, "fake.jpg"), []byte("<html>not a jpeg</html>"), 0o644)
	os.MkdirAll(filepath.Join(dir, ".thumbs"), 0o755)
	os.WriteFile(filepath.Join(dir, ".thumbs", "x.png"), buf.Bytes(), 0o644)
	return good
}

func TestLoadFolder(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "pics")
	want := makeTestFolder(t, src, 12)
	before := snapshot(t, src)
	cache := filepath.Join(dir, "cache")
	var log bytes.Buffer
	ds, info, err := LoadFolder(FolderOptions{Path: src, Size: 32, CacheDir: cache, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if ds.N != want || info.Skipped != 2 || info.Cached || ds.Channels != 3 || ds.Height != 32 || ds.Width != 32 {
		t.Fatalf("%d images (want %d), %d skipped, cached %v, %d×%d×%d\n%s", ds.N, want, info.Skipped, info.Cached, ds.Channels, ds.Height, ds.Width, log.String())
	}
	for _, w := range []string{"skipping " + filepath.Join(src, "corrupt.png"), "skipping " + filepath.Join(src, "fake.jpg"), "2 files skipped"} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, log.String())
		}
	}
	// The first image (a red disc on near-black, PNG): red centre, dark corner.
	im := ds.Image(0)
	hw := 32 * 32
	centre, corner := 16*32+16, 0
	if im[centre] < 0.8 || im[hw+centre] > 0.25 || im[corner] > 0.1 {
		t.Errorf("image 0: centre RGB %.2f %.2f %.2f, corner R %.2f", im[centre], im[hw+centre], im[2*hw+centre], im[corner])
	}
	for i, v := range ds.Images {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("value %d = %g outside [0, 1]", i, v)
		}
	}
	// Again: from the cache, the same values.
	ds2, info2, err := LoadFolder(FolderOptions{Path: src, Size: 32, CacheDir: cache})
	if err != nil || !info2.Cached || ds2.N != ds.N || info2.Digest != info.Digest {
		t.Fatalf("second load: %v, cached %v", err, info2.Cached)
	}
	for i := range ds.Images {
		if math.Abs(float64(ds.Images[i]-ds2.Images[i])) > 0.5/255 {
			t.Fatalf("cached value %d: %g, decoded %g", i, ds2.Images[i], ds.Images[i])
		}
	}
	// Grey and 64: other cache files; one channel.
	g, _, err := LoadFolder(FolderOptions{Path: src, Size: 64, Grey: true, CacheDir: cache})
	if err != nil || g.Channels != 1 || g.Height != 64 || g.N != want {
		t.Fatalf("grey 64: %v %+v", err, g)
	}
	// A changed file: rebuilt, new digest.
	later := time.Now().Add(time.Minute)
	os.Chtimes(filepath.Join(src, "grey.png"), later, later)
	_, info3, err := LoadFolder(FolderOptions{Path: src, Size: 32, CacheDir: cache})
	if err != nil || info3.Cached || info3.Digest == info.Digest {
		t.Fatalf("after a change: %v, cached %v", err, info3.Cached)
	}
	// A damaged cache is ignored with a warning and rebuilt.
	b, _ := os.ReadFile(info3.Cache)
	b[len(b)/2] ^= 0xff
	os.WriteFile(info3.Cache, b, 0o644)
	log.Reset()
	if _, info4, err := LoadFolder(FolderOptions{Path: src, Size: 32, CacheDir: cache, Log: &log}); err != nil || info4.Cached || !strings.Contains(log.String(), "checksum") {
		t.Fatalf("damaged cache: %v, cached %v, log %s", err, info4.Cached, log.String())
	}
	// Nothing in the user's folder was written.
	os.Chtimes(filepath.Join(src, "grey.png"), before["grey.png"], before["grey.png"])
	if after := snapshot(t, src); len(after) != len(before) {
		t.Fatalf("the folder changed: %d files before, %d after", len(before), len(after))
	}
}

func snapshot(t *testing.T, dir string) map[string]time.Time {
	m := map[string]time.Time{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			m[rel] = fi.ModTime()
		}
		return nil
	})
	return m
}

func TestLoadFolderErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(empty, 0o755)
	os.WriteFile(filepath.Join(empty, "a.txt"), []byte("x"), 0o644)
	bad := filepath.Join(dir, "bad")
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, "a.png"), []byte("nope"), 0o644)
	file := filepath.Join(dir, "f.png")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, c := range []struct {
		o    FolderOptions
		want string
	}{
		{FolderOptions{Path: filepath.Join(dir, "none"), Size: 32}, "no such file"},
		{FolderOptions{Path: file, Size: 32}, "is not a directory"},
		{FolderOptions{Path: empty, Size: 32}, "has no .png, .jpg, .jpeg or .gif files"},
		{FolderOptions{Path: bad, Size: 32, CacheDir: dir}, "none of its 1 image files could be decoded"},
		{FolderOptions{Path: empty, Size: 48}, "image size 48"},
		{FolderOptions{Path: "", Size: 32}, "no path after \"folder:\""},
		// The shell leaves a ~ after "folder:" as it is.
		{FolderOptions{Path: "~/ncsn-no-such-pictures", Size: 32}, "folder ~/ncsn-no-such-pictures is not there: the shell leaves a ~ after \"folder:\" as it is; give the path from / or $HOME (folder:$HOME/ncsn-no-such-pictures)"},
		{FolderOptions{Path: "~ncsn-no-such-user/pics", Size: 32}, "folder ~ncsn-no-such-user/pics is not there: the shell leaves a ~ after \"folder:\" as it is; give the path from /"},
	} {
		_, _, err := LoadFolder(c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "data: ") {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
}

// TestLoadFolderCacheOutside: the cache is never written inside the image
// folder — a -data-dir there (directly or through a link) is refused, and
// run from inside the folder the default moves to the user's cache folder.
func TestLoadFolderCacheOutside(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "pics")
	want := makeTestFolder(t, src, 4)
	before := snapshot(t, src)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(src, link); err != nil {
		t.Fatal(err)
	}
	for _, cache := range []string{src, filepath.Join(src, "cache"), filepath.Join(link, "new", "cache")} {
		_, _, err := LoadFolder(FolderOptions{Path: src, Size: 32, CacheDir: cache})
		if err == nil || !strings.Contains(err.Error(), "is inside the image folder") {
			t.Errorf("-data-dir %s: %v, want it refused", cache, err)
		}
	}
	xdg := filepath.Join(dir, "xdg")
	t.Setenv("XDG_CACHE_HOME", xdg)
	t.Setenv("HOME", filepath.Join(dir, "home"))
	t.Chdir(src)
	var log bytes.Buffer
	// The default as the commands fill it in counts as not given.
	ds, info, err := LoadFolder(FolderOptions{Path: ".", Size: 32, CacheDir: "data/folders", Log: &log})
	if err != nil || ds.N != want {
		t.Fatalf("from inside the folder: %v", err)
	}
	if !strings.HasPrefix(info.Cache, filepath.Join(xdg, "ncsn", "folders")) || !strings.Contains(log.String(), "would be inside the image folder") {
		t.Errorf("cache %s, log %q", info.Cache, log.String())
	}
	if after := snapshot(t, src); len(after) != len(before) {
		t.Errorf("the folder changed: %d files before, %d after", len(before), len(after))
	}
	// Outside the folder, a sibling whose name starts like it is not inside.
	if Within(src, src+"-cache") || !Within(src, src) || Within(src, dir) {
		t.Error("within: wrong on a sibling, the folder itself or its parent")
	}
}

// TestLoadFolderLinks: links to images are followed, as is a folder given
// as a link to one (both were skipped: "has no .png … files"); a link to
// a folder inside is not entered, and a broken link is passed over.
func TestLoadFolderLinks(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "pics")
	want := makeTestFolder(t, src, 6)
	links := filepath.Join(dir, "links")
	os.MkdirAll(links, 0o755)
	all, _ := filepath.Glob(filepath.Join(src, "*.png"))
	var imgs []string
	for _, p := range all {
		if filepath.Base(p) != "corrupt.png" {
			imgs = append(imgs, p)
		}
	}
	if len(imgs) == 0 {
		t.Fatal("no top-level PNG to link to")
	}
	for i, p := range imgs {
		if err := os.Symlink(p, filepath.Join(links, fmt.Sprintf("l%d.png", i))); err != nil {
			t.Skip("no symbolic links here:", err)
		}
	}
	os.Symlink(src, filepath.Join(links, "dir"))                                   // not entered
	os.Symlink(filepath.Join(dir, "gone.png"), filepath.Join(links, "broken.png")) // passed over
	var log bytes.Buffer
	ds, _, err := LoadFolder(FolderOptions{Path: links, Size: 32, CacheDir: filepath.Join(dir, "cache"), Log: &log})
	if err != nil || ds.N != len(imgs) {
		t.Fatalf("links to %d images: %v, %v\n%s", len(imgs), ds, err, log.String())
	}
	root := filepath.Join(dir, "root")
	os.Symlink(src, root)
	ds, _, err = LoadFolder(FolderOptions{Path: root, Size: 32, CacheDir: filepath.Join(dir, "cache"), Log: &log})
	if err != nil || ds.N != want {
		t.Fatalf("a folder given as a link: %v, %v (want %d images)", ds, err, want)
	}
}
