package data

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // registered decoders
	_ "image/jpeg"
	_ "image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/image/draw"
)

// FolderPrefix starts the dataset name of a folder of the user's images:
// "folder:PATH".
const FolderPrefix = "folder:"

// FolderSizes are the image sizes a folder can be trained at.
var FolderSizes = []int{32, 64}

// FolderOptions says which folder to read and how.
type FolderOptions struct {
	// Path is the folder; every .png, .jpg, .jpeg and .gif under it
	// (recursively, hidden entries excepted) is read.
	Path string
	// Size is the side of the square images (32 or 64); Grey keeps one
	// luminance channel instead of RGB.
	Size int
	Grey bool
	// CacheDir holds the decoded set (default data/folders, or the user's
	// cache folder's ncsn/folders where that would be inside Path); nothing
	// is ever written inside Path, and a CacheDir inside it is an error.
	CacheDir string
	// Log receives warnings and progress; Bar draws a progress bar on it.
	Log io.Writer
	Bar bool
}

// FolderInfo describes the set LoadFolder returned.
type FolderInfo struct {
	Path    string // absolute
	Images  int
	Skipped int // files with an image extension that could not be decoded
	// Digest identifies the source files (names, sizes, modification
	// times): it changes when the folder does.
	Digest string
	Cache  string // the cache file
	Cached bool   // read from the cache rather than decoded
}

// IsFolder reports whether a dataset name is a folder's, and its path.
func IsFolder(name string) (string, bool) {
	p, ok := strings.CutPrefix(name, FolderPrefix)
	return p, ok
}

type sourceFile struct {
	Path    string `json:"path"` // relative to the folder, slash-separated
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
}

type folderHeader struct {
	// Decoder is folderDecoder when the cache was made: a cache of
	// another decoder's pixels is made again.
	Decoder int          `json:"decoder"`
	Source  string       `json:"source"`
	Size    int          `json:"size"`
	Grey    bool         `json:"grey"`
	Files   []sourceFile `json:"files"`   // every candidate file, in walk order
	Skipped []string     `json:"skipped"` // those that did not decode
	Images  int          `json:"images"`
}

const folderMagic = "NCSNIMG1"

// folderDecoder numbers what decodeOne makes of a file: raise it whenever
// that changes (which files it refuses, how it crops, resizes or blends), so
// that caches of the earlier pixels are not served (they were, with no
// version to tell them apart). 2: a GIF's first frame on its screen.
const folderDecoder = 2

// DefaultCacheDir is where LoadFolder caches a folder's decoded images
// unless told otherwise (relative to the working folder).
var DefaultCacheDir = filepath.Join("data", "folders")

// Within reports whether path is dir or lies inside it, symbolic links
// resolved (path need not exist yet: its nearest existing folder is).
func Within(dir, path string) bool {
	resolve := func(p string) string {
		p, err := filepath.Abs(p)
		if err != nil {
			return p
		}
		var rest []string
		for {
			if r, err := filepath.EvalSymlinks(p); err == nil {
				return filepath.Join(append([]string{r}, rest...)...)
			}
			parent := filepath.Dir(p)
			if parent == p {
				return filepath.Join(append([]string{p}, rest...)...)
			}
			rest = append([]string{filepath.Base(p)}, rest...)
			p = parent
		}
	}
	rel, err := filepath.Rel(resolve(dir), resolve(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// LoadFolder returns the images of a folder, centre-cropped to squares and
// resized to Size×Size with a Catmull-Rom filter (transparent pixels over
// black), decoding them on every core, or reads them from the cache when the
// folder's files (names, sizes, modification times) are those it was built
// from.
func LoadFolder(o FolderOptions) (*Dataset, *FolderInfo, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if !slices.Contains(FolderSizes, o.Size) {
		return nil, nil, fmt.Errorf("data: image size %d: folders train at 32 or 64", o.Size)
	}
	if o.Path == "" {
		return nil, nil, fmt.Errorf("data: folder: no path after %q (give %sPATH; . for the working folder)", FolderPrefix, FolderPrefix)
	}
	abs, err := filepath.Abs(o.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("data: folder %s: %w", o.Path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		if strings.HasPrefix(o.Path, "~") && errors.Is(err, fs.ErrNotExist) {
			// The shell expands ~ only at a word's start, not after "folder:".
			hint := "give the path from /"
			if o.Path == "~" || strings.HasPrefix(o.Path, "~/") {
				hint += fmt.Sprintf(" or $HOME (%s$HOME%s)", FolderPrefix, strings.TrimPrefix(o.Path, "~"))
			}
			return nil, nil, fmt.Errorf("data: folder %s is not there: the shell leaves a ~ after %q as it is; %s", o.Path, FolderPrefix, hint)
		}
		return nil, nil, fmt.Errorf("data: folder: %w", err)
	}
	if !fi.IsDir() {
		return nil, nil, fmt.Errorf("data: folder %s is not a directory", o.Path)
	}
	files, unread, err := listImages(abs)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range unread {
		fmt.Fprintf(o.Log, "warning: skipping the folder %s: %v\n", d.path, d.err)
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("data: folder %s has no .png, .jpg, .jpeg or .gif files", o.Path)
	}
	hdr := folderHeader{Decoder: folderDecoder, Source: abs, Size: o.Size, Grey: o.Grey, Files: files}
	digest := fileDigest(files)
	// The commands fill in the default themselves: it counts as not given.
	given := o.CacheDir != "" && filepath.Clean(o.CacheDir) != DefaultCacheDir
	if !given {
		o.CacheDir = DefaultCacheDir
	}
	if Within(abs, o.CacheDir) {
		if given {
			return nil, nil, fmt.Errorf("data: the cache folder %s (-data-dir) is inside the image folder %s, where nothing is written; give one outside it", o.CacheDir, o.Path)
		}
		// Run from inside the image folder: the default would write there.
		ucd, err := os.UserCacheDir()
		if err != nil || Within(abs, filepath.Join(ucd, "ncsn", "folders")) {
			return nil, nil, fmt.Errorf("data: the default cache folder %s is inside the image folder %s, where nothing is written; give -data-dir outside it", o.CacheDir, o.Path)
		}
		o.CacheDir = filepath.Join(ucd, "ncsn", "folders")
		fmt.Fprintf(o.Log, "the decoded images are cached in %s (./data/folders would be inside the image folder)\n", o.CacheDir)
	}
	mode := "rgb"
	if o.Grey {
		mode = "grey"
	}
	cache := filepath.Join(o.CacheDir, fmt.Sprintf("%s-%s-%d-%s.cache", safeName(filepath.Base(abs)), digestOf(abs)[:8], o.Size, mode))
	info := &FolderInfo{Path: abs, Digest: digest, Cache: cache}
	if ds, h, err := readFolderCache(cache); err == nil && sameSource(h, &hdr) {
		info.Images, info.Skipped, info.Cached = ds.N, len(h.Skipped), true
		skipped := ""
		if len(h.Skipped) > 0 { // said only when the cache was made, before
			skipped = fmt.Sprintf("; %d of its files did not decode when the cache was made (%s first)", len(h.Skipped), h.Skipped[0])
		}
		fmt.Fprintf(o.Log, "folder %s: %d images from the cache %s%s\n", abs, ds.N, cache, skipped)
		return ds, info, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(o.Log, "warning: ignoring the cache %s (%v); decoding the folder again\n", cache, err)
	}
	ds, skipped, unreadable, err := decodeFolder(abs, files, o)
	if err != nil {
		return nil, nil, err
	}
	hdr.Skipped, hdr.Images = skipped, ds.N
	if unreadable > 0 {
		// A file that could not be read (its permissions, the disk) may be
		// readable next time, with the same size and time: cached as
		// skipped, it stayed out of every later run without a word.
		fmt.Fprintf(o.Log, "note: the decoded folder is not cached: %d of its files could not be read (they are tried again next time)\n", unreadable)
	} else if err := writeFolderCache(cache, &hdr, ds); err != nil {
		fmt.Fprintf(o.Log, "warning: could not cache the decoded folder: %v\n", err)
	}
	info.Images, info.Skipped = ds.N, len(skipped)
	return ds, info, nil
}

// listImages lists the images under root: its files named .png, .jpg,
// .jpeg or .gif, in any subfolder but hidden ones, following symbolic links
// to files (and a root that is a link), not links to folders (which could
// loop).
func listImages(root string) ([]sourceFile, []unreadDir, error) {
	var files []sourceFile
	var unread []unreadDir
	given := root // named in errors
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil && d != nil && d.IsDir() && p != root {
			// A subfolder that cannot be read (a drive's lost+found) is
			// passed over with a warning: it stopped the whole load.
			unread = append(unread, unreadDir{p, err})
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".png", ".jpg", ".jpeg", ".gif":
		default:
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if fi, err = os.Stat(p); err != nil {
				return nil // a broken link
			}
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		files = append(files, sourceFile{Path: filepath.ToSlash(rel), Size: fi.Size(), ModTime: fi.ModTime().UnixNano()})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("data: folder %s: %w", given, err)
	}
	return files, unread, nil
}

// unreadDir is a subfolder listImages could not read, and why.
type unreadDir struct {
	path string
	err  error
}

func fileDigest(files []sourceFile) string {
	js, _ := json.Marshal(files)
	return digestOf(string(js))
}

func digestOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return fmt.Sprintf("%x", h[:])
}

func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}

// sameSource reports whether a cache's header is of the folder b lists.
// The files' names are compared as JSON keeps them: a name that is not
// UTF-8 comes back from the cache with U+FFFD in it, and never matched, so
// the folder was decoded again on every run.
func sameSource(a, b *folderHeader) bool {
	return a.Decoder == b.Decoder && a.Source == b.Source && a.Size == b.Size && a.Grey == b.Grey &&
		slices.EqualFunc(a.Files, b.Files, func(x, y sourceFile) bool {
			x.Path, y.Path = asJSONKeeps(x.Path), asJSONKeeps(y.Path)
			return x == y
		})
}

// asJSONKeeps is s with each byte that is not UTF-8 replaced by U+FFFD, as
// encoding/json writes it (strings.ToValidUTF8 replaces a run of them by one).
func asJSONKeeps(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// decodeFolder decodes, crops and resizes every file on all cores, in the
// files' order; files that fail are skipped with a warning each, and
// unreadable counts those that failed in the file system (not in their
// bytes).
func decodeFolder(root string, files []sourceFile, o FolderOptions) (ds *Dataset, skipped []string, unreadable int, err error) {
	c := 3
	if o.Grey {
		c = 1
	}
	s := o.Size
	dim := c * s * s
	pix := make([]uint8, len(files)*dim)
	ok := make([]bool, len(files))
	errs := make([]error, len(files))
	var bar *progressbar.ProgressBar
	if o.Bar {
		bar = progressbar.NewOptions(len(files), progressbar.OptionSetWriter(o.Log), progressbar.OptionSetDescription("decoding"),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
	}
	next := make(chan int)
	budget := newDecodeBudget(decodeBytes)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = decodeOne(filepath.Join(root, filepath.FromSlash(files[i].Path)), s, o.Grey, pix[i*dim:(i+1)*dim], budget)
				ok[i] = errs[i] == nil
				if bar != nil {
					bar.Add(1)
				}
			}
		}()
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	n := 0
	for i := range files {
		if !ok[i] {
			skipped = append(skipped, files[i].Path)
			if pe := (*fs.PathError)(nil); errors.As(errs[i], &pe) {
				unreadable++
			}
			fmt.Fprintf(o.Log, "warning: skipping %s: %v\n", filepath.Join(root, files[i].Path), errs[i])
			continue
		}
		copy(pix[n*dim:(n+1)*dim], pix[i*dim:(i+1)*dim])
		n++
	}
	if len(skipped) > 0 {
		files := "files"
		if len(skipped) == 1 {
			files = "file"
		}
		fmt.Fprintf(o.Log, "folder %s: %d images decoded, %d %s skipped\n", root, n, len(skipped), files)
	} else {
		fmt.Fprintf(o.Log, "folder %s: %d images decoded\n", root, n)
	}
	if n == 0 {
		return nil, skipped, unreadable, fmt.Errorf("data: folder %s: none of its %d image files could be decoded", root, len(files))
	}
	return fromBytes(FolderPrefix+root, pix[:n*dim], n, c, s), skipped, unreadable, nil
}

// decodeOne writes the image at path, centre-cropped and resized, into dst
// as 8-bit planes (C, S, S).
func decodeOne(path string, s int, grey bool, dst []uint8, budget *decodeBudget) (err error) {
	defer func() { // the standard decoders should not panic; a bad file must not stop the run if one does
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder failed: %v", r)
		}
	}()
	file, err := fsutil.OpenRegular(path)
	if err != nil {
		return err
	}
	defer file.Close()
	// The decoders lose a read error's kind ("image: unknown format" for an
	// EIO on the first read): it is kept here, and returned for theirs, so
	// that a file the disk could not read is not cached as undecodable.
	f := &readErrors{File: file}
	defer func() {
		if err != nil && f.err != nil {
			err = f.err
		}
	}()
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		return err
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > 1<<14 || cfg.Height > 1<<14 {
		return fmt.Errorf("%d×%d pixels is outside 1 to 16384 on a side", cfg.Width, cfg.Height)
	}
	if fi, err := f.Stat(); err == nil && fi.Size() < leastEncodedBytes(format, cfg.Width, cfg.Height) {
		// A 65-byte PNG declaring 16384² 16-bit pixels made the decoder
		// allocate 2 GiB before it found the data missing; four such files
		// took 4 GB.
		return fmt.Errorf("declares %d×%d pixels, more than its %d bytes of %s can hold (damaged or cut short)", cfg.Width, cfg.Height, fi.Size(), format)
	}
	bpp := int64(4)
	switch cfg.ColorModel {
	case color.RGBA64Model, color.NRGBA64Model:
		bpp = 8
	}
	took := budget.take(int64(cfg.Width) * int64(cfg.Height) * bpp)
	defer func() {
		if took >= 256<<20 {
			runtime.GC() // the large decode's garbage goes before the next one's takes its place
		}
		budget.give(took)
	}()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return err
	}
	if format == "gif" {
		// The frame alone was cropped and stretched to the whole image. The
		// budget counted the screen's pixels.
		img = OnScreen(img, cfg.Width, cfg.Height)
	}
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	x0, y0 := b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2
	out := image.NewRGBA(image.Rect(0, 0, s, s))
	draw.Draw(out, out.Bounds(), image.NewUniform(color.Black), image.Point{}, draw.Src)
	draw.CatmullRom.Scale(out, out.Bounds(), img, image.Rect(x0, y0, x0+side, y0+side), draw.Over, nil)
	hw := s * s
	for i := 0; i < hw; i++ {
		r, g, bl := out.Pix[4*i], out.Pix[4*i+1], out.Pix[4*i+2]
		if grey {
			dst[i] = uint8((299*int(r) + 587*int(g) + 114*int(bl) + 500) / 1000)
		} else {
			dst[i], dst[hw+i], dst[2*hw+i] = r, g, bl
		}
	}
	return nil
}

// OnScreen places a GIF's first frame, as image.Decode returns it, on the
// file's logical screen of w×h pixels (image.DecodeConfig's size): a frame
// may cover part of the screen only, the rest being transparent. Other
// images are returned as they are.
func OnScreen(img image.Image, w, h int) image.Image {
	screen := image.Rect(0, 0, w, h)
	if img.Bounds() == screen {
		return img
	}
	canvas := image.NewNRGBA(screen)
	draw.Draw(canvas, img.Bounds().Intersect(screen), img, img.Bounds().Intersect(screen).Min, draw.Src)
	return canvas
}

// leastEncodedBytes is a lower bound on the size of a file of format holding
// w×h pixels, from its compression's largest ratio: deflate's 1032:1 on PNG
// rows of at least one bit a pixel, taken at half; at least one bit for
// every 8×8 JPEG block (a progressive grey JPEG's DC scan; its AC scans can
// cost next to nothing), taken at a quarter. A file smaller than that
// declares pixels it does not hold. GIF is not bounded: its declared size
// is the logical screen's, which a legal file's frames need not fill.
func leastEncodedBytes(format string, w, h int) int64 {
	px := int64(w) * int64(h)
	switch format {
	case "png":
		return px / 8 / 1032 / 2
	case "jpeg":
		return px / 64 / 8 / 4
	}
	return 0
}

// decodeBytes bounds the decoded pixels the folder's workers hold at once.
const decodeBytes = 1 << 30

// decodeBudget is a number of bytes that decodes take before they decode
// and give back after: a PNG of 2 MB can declare 16384² 16-bit pixels, 2 GiB
// decoded, and with one worker per core a 16-core machine held 34 GB. A
// decode larger than the whole budget takes all of it (one at a time).
type decodeBudget struct {
	mu          sync.Mutex
	cond        sync.Cond
	free, total int64
}

func newDecodeBudget(total int64) *decodeBudget {
	b := &decodeBudget{free: total, total: total}
	b.cond.L = &b.mu
	return b
}

// take waits until n bytes (at most the whole budget) are free, takes them
// and returns how many it took.
func (b *decodeBudget) take(n int64) int64 {
	n = min(max(n, 0), b.total)
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.free < n {
		b.cond.Wait()
	}
	b.free -= n
	return n
}

// give returns n bytes that take took.
func (b *decodeBudget) give(n int64) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

func fromBytes(name string, pix []uint8, n, c, s int) *Dataset {
	img := make([]float32, len(pix))
	for i, v := range pix {
		img[i] = float32(v) / 255
	}
	return &Dataset{Name: name, Images: img, N: n, Channels: c, Height: s, Width: s}
}

// The cache file: magic, header length (uint32), JSON header, the 8-bit
// pixels, and the SHA-256 of everything before it.
func writeFolderCache(path string, h *folderHeader, ds *Dataset) error {
	// A process killed mid-write (kill -9) left its temporary, as large as
	// the cache, for good; an hour on, its writer is surely gone. (The
	// folder is made by WriteAtomic, and goes again if the write fails.)
	fsutil.RemoveStaleTemps(filepath.Dir(path), time.Hour, fsutil.TempPattern(filepath.Base(path)))
	js, err := json.Marshal(h)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString(folderMagic)
	binary.Write(&buf, binary.LittleEndian, uint32(len(js)))
	buf.Write(js)
	for _, v := range ds.Images {
		buf.WriteByte(uint8(v*255 + 0.5))
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	return fsutil.WriteFileAtomic(path, buf.Bytes())
}

func readFolderCache(path string) (*Dataset, *folderHeader, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if len(b) < len(folderMagic)+4+32 || string(b[:len(folderMagic)]) != folderMagic {
		return nil, nil, fmt.Errorf("%w: not a folder cache", ErrFormat)
	}
	body, sum := b[:len(b)-32], b[len(b)-32:]
	if s := sha256.Sum256(body); !bytes.Equal(s[:], sum) {
		return nil, nil, fmt.Errorf("%w: checksum mismatch", ErrFormat)
	}
	hl := int(binary.LittleEndian.Uint32(body[len(folderMagic):]))
	rest := body[len(folderMagic)+4:]
	if hl > len(rest) {
		return nil, nil, fmt.Errorf("%w: header beyond the file", ErrFormat)
	}
	var h folderHeader
	if err := json.Unmarshal(rest[:hl], &h); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	c := 3
	if h.Grey {
		c = 1
	}
	pix := rest[hl:]
	per := c * h.Size * h.Size // a count that wrapped past 2⁶⁴ in the product once passed
	if !slices.Contains(FolderSizes, h.Size) || h.Images < 1 || h.Images > len(pix) || len(pix)%per != 0 || len(pix)/per != h.Images {
		return nil, nil, fmt.Errorf("%w: %d pixel bytes for %d images of %d×%d×%d", ErrFormat, len(pix), h.Images, c, h.Size, h.Size)
	}
	return fromBytes(FolderPrefix+h.Source, pix, h.Images, c, h.Size), &h, nil
}

// readErrors is a file that keeps its first read error other than EOF.
type readErrors struct {
	*os.File
	err error
}

func (r *readErrors) Read(p []byte) (int, error) {
	n, err := r.File.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}
