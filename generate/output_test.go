package generate

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/internal/fsutil"
)

// TestOutputs: outputs that cannot be written, or that would replace what
// is not an earlier output of the same kind (a checkpoint, a text file, a
// folder of samples of an earlier run), are one-line errors before any
// sampling, and the file stays as it was; an earlier PNG is replaced, and
// the log says so; -gif alone is something to write.
func TestOutputs(t *testing.T) {
	ck, _ := tinyRun(t, "ve")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ckpt := filepath.Join(ck, "ckpt-00000002.ckpt")
	ckptBytes, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	notes := write("notes.png", "my notes")
	oldSamples := filepath.Join(dir, "old")
	os.Mkdir(oldSamples, 0o755)
	write("old/sample-00000.png", fsutil.PNGMagic)
	write("old/sample-00001.png", fsutil.PNGMagic)
	file := write("file", "x")
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"a checkpoint", Config{Out: ckpt}, "the file is written as PNG"},
		{"a checkpoint named .png", Config{Out: write("run.png", string(ckptBytes[:64]))}, "exists and is not a PNG written before: not replaced"},
		{"a text file", Config{Out: notes}, "exists and is not a PNG"},
		{"jpg", Config{Out: filepath.Join(dir, "grid.jpg")}, "give a name ending in .png"},
		{"a folder", Config{Out: filepath.Join(dir, "old.png")}, ""},
		{"under a folder that is a file", Config{Out: filepath.Join(dir, "file", "sub", "x.png")}, "is a file, not a folder"},
		{"under a file", Config{Out: filepath.Join(file, "x.png")}, "is a file, not a folder"},
		{"gif as png", Config{Out: "", GIF: filepath.Join(dir, "film.png")}, "give a name ending in .gif"},
		{"gif over notes", Config{Out: "", GIF: write("film.gif", "notes")}, "-gif " + dir + "/film.gif exists and is not a GIF"},
		{"samples of an earlier run", Config{Out: "", OutDir: oldSamples}, "already holds 2 samples (sample-*.png) of an earlier run"},
		{"out-dir a file", Config{Out: "", OutDir: file}, "is a file, not a folder"},
		{"grid among the samples", Config{Out: filepath.Join(dir, "new", "sample-00000.png"), OutDir: filepath.Join(dir, "new")}, "where a sample would replace the grid"},
		{"grid among the samples, other case", Config{Out: filepath.Join(dir, "new", "Sample-00001.PNG"), OutDir: filepath.Join(dir, "new", ".")}, "where a sample would replace the grid"},
		// cmd/eval -samples of the folder then refused it: images of two sizes.
		{"grid in the samples' folder", Config{Out: filepath.Join(dir, "new", "grid.png"), OutDir: filepath.Join(dir, "new")}, "is in -out-dir " + filepath.Join(dir, "new") + ", among the samples"},
		{"nothing", Config{Out: ""}, "nothing to write"},
		// An output that is an input: the samples replaced the image.
		{"-out the -inpaint image", Config{Out: write("in.png", fsutil.PNGMagic), Inpaint: filepath.Join(dir, "in.png"), Mask: "bottom"}, "-out " + dir + "/in.png is the -inpaint image"},
		{"-out the -mask", Config{Out: write("m.png", fsutil.PNGMagic), Inpaint: "test:0", Mask: filepath.Join(dir, "m.png")}, "is the -mask image"},
		{"-gif the -colorize image", Config{Out: "", GIF: write("c.gif", fsutil.GIFMagic), Colorize: filepath.Join(dir, "c.gif")}, "-gif " + dir + "/c.gif is the -colorize image"},
		{"-out a hard link to the -inpaint image", Config{Out: filepath.Join(dir, "link.png"), Inpaint: filepath.Join(dir, "in.png"), Mask: "bottom"}, "is the -inpaint image"},
	} {
		if tc.name == "-out a hard link to the -inpaint image" {
			os.Link(filepath.Join(dir, "in.png"), tc.c.Out)
		}
		if tc.name == "a folder" {
			os.Mkdir(tc.c.Out, 0o755)
			tc.want = "is a folder"
		}
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Ckpt, tc.c.N, tc.c.Sampler, tc.c.Steps = ck, 2, "pc", 2
			var log bytes.Buffer
			tc.c.Log = &log
			_, err := Run(tc.c)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line saying %q", err, tc.want)
			}
			if strings.Contains(log.String(), "sampler") {
				t.Fatalf("sampled before refusing: %q", log.String())
			}
		})
	}
	if b, _ := os.ReadFile(ckpt); !bytes.Equal(b, ckptBytes) {
		t.Fatal("the checkpoint changed")
	}
	if b, _ := os.ReadFile(notes); string(b) != "my notes" {
		t.Fatal("the notes changed")
	}
	// An earlier grid is replaced, and the log says so; a GIF alone is written.
	grid := filepath.Join(dir, "grid.png")
	for i, want := range []string{"", ", replacing the earlier one"} {
		var log bytes.Buffer
		if _, err := Run(Config{Ckpt: ck, Out: grid, N: 2, Sampler: "pc", Steps: 2, Log: &log}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log.String(), "s"+want+")\n") {
			t.Fatalf("run %d: log %q", i, log.String())
		}
	}
	// A folder that is not there yet is made.
	if _, err := Run(Config{Ckpt: ck, Out: filepath.Join(dir, "new", "grid.png"), N: 2, Sampler: "pc", Steps: 2}); err != nil {
		t.Fatalf("-out in a new folder: %v", err)
	}
	film := filepath.Join(dir, "alone.gif")
	if _, err := Run(Config{Ckpt: ck, GIF: film, N: 2, Sampler: "pc", Steps: 2}); err != nil || !fsutil.HasMagic(film, fsutil.GIFMagic) {
		t.Fatalf("-gif alone: %v", err)
	}
}

// TestDivergedAndHuge: samples that are not finite (here from a NaN
// weight) are an error, not a black grid; a -n whose images would not fit
// in memory is an error before anything is allocated.
func TestDivergedAndHuge(t *testing.T) {
	ck, _ := tinyRun(t, "ve")
	st := loadLatest(t, ck)
	if _, err := Draw(st, Config{N: 1 << 40, Sampler: "pc", Steps: 2}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "GiB of memory") {
		t.Fatalf("huge -n: %v", err)
	}
	for i := range st.EMA {
		for j := range st.EMA[i].Data {
			st.EMA[i].Data[j] = float32(math.NaN())
		}
	}
	if _, err := Draw(st, Config{N: 2, Sampler: "pc", Steps: 2}); err == nil || !strings.Contains(err.Error(), "diverged") {
		t.Fatalf("NaN weights: %v", err)
	}
	// A run that diverges writes no film either: an earlier -gif stays, and
	// no folder is made for a new one (the film was written as it ended,
	// before the samples were checked).
	// (Here annealed Langevin with a step of 1e300.)
	ncsn, _ := tinyRun(t, "ncsn")
	dir := t.TempDir()
	film := filepath.Join(dir, "film.gif")
	if _, err := Run(Config{Ckpt: ncsn, GIF: film, N: 2, Sampler: "ald", StepsPerLevel: 2}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(film)
	for _, gif := range []string{film, filepath.Join(dir, "new", "film.gif")} {
		if _, err := Run(Config{Ckpt: ncsn, GIF: gif, N: 2, Sampler: "ald", StepsPerLevel: 2, Eps: 1e300}); err == nil || !strings.Contains(err.Error(), "diverged") {
			t.Fatalf("-eps 1e300, -gif %s: %v", gif, err)
		}
	}
	if after, _ := os.ReadFile(film); !bytes.Equal(before, after) {
		t.Fatal("a run that diverged replaced the earlier -gif")
	}
	// The progress bar is cleared before the error's line (it was left
	// on the line, the error glued to it).
	var log bytes.Buffer
	if _, err := Run(Config{Ckpt: ncsn, Out: filepath.Join(dir, "g.png"), N: 2, Sampler: "ald", StepsPerLevel: 2, Eps: 1e300, Bar: true, Log: &log}); err == nil {
		t.Fatal("no divergence")
	}
	if parts := strings.Split(log.String(), "\r"); strings.TrimSpace(parts[len(parts)-1]) != "" {
		t.Fatalf("the bar is left on the line: %q", parts[len(parts)-1])
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a run that diverged made the -gif's folder: %v", err)
	}
}

// TestDenoiseIgnored: -denoise=false given to a sampler whose last step
// lands on the clean image anyway is an error; given to pc it is taken,
// and to ode too, whose noise removal after the solve costs one evaluation
// (it was refused, as though the ODE left no noise).
func TestDenoiseIgnored(t *testing.T) {
	ck, _ := tinyRun(t, "ve")
	st := loadLatest(t, ck)
	if _, err := Draw(st, Config{N: 2, Sampler: "heun", Steps: 2, DenoiseSet: true}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "-denoise=false: heun") {
		t.Fatalf("heun: %v", err)
	}
	if _, err := Draw(st, Config{N: 2, Sampler: "pc", Steps: 2, DenoiseSet: true}); err != nil {
		t.Fatalf("pc: %v", err)
	}
	without, err := Draw(st, Config{N: 2, Sampler: "ode", Tol: 1e-2, DenoiseSet: true})
	if err != nil {
		t.Fatalf("ode: %v", err)
	}
	with, err := Draw(st, Config{N: 2, Sampler: "ode", Tol: 1e-2, Denoise: true})
	if err != nil || with.Evals != without.Evals+1 {
		t.Fatalf("ode: %d evaluations with the noise removal, %d without; %v", with.Evals, without.Evals, err)
	}
}

// TestNewOutDirGoesOnError: a run that fails after it made its -out-dir
// leaves no empty folder behind (it left one with its lock file); a
// folder that was there stays.
func TestNewOutDirGoesOnError(t *testing.T) {
	ck, _ := tinyRun(t, "ve")
	defer func(f func(string, io.Writer) (*cuda.Device, error)) { openDevice = f }(openDevice)
	openDevice = func(string, io.Writer) (*cuda.Device, error) { return nil, errors.New("no device today") }
	root := t.TempDir()
	made := filepath.Join(root, "new", "samples")
	if _, err := Run(Config{Ckpt: ck, OutDir: made, N: 3, Sampler: "pc", Steps: 2}); err == nil || !strings.Contains(err.Error(), "no device today") {
		t.Fatalf("the run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "new")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the failed run's -out-dir (or the parent it made) is still there: %v", err)
	}
	there := filepath.Join(root, "there")
	os.Mkdir(there, 0o755)
	if _, err := Run(Config{Ckpt: ck, OutDir: there, N: 3, Sampler: "pc", Steps: 2}); err == nil {
		t.Fatal("the run did not fail")
	}
	if _, err := os.Stat(there); err != nil {
		t.Fatalf("a folder that was there before the run: %v", err)
	}
}

// TestOutDirClaimed: a second sampler into an -out-dir that another one is
// writing is refused before it draws (once the checkpoint is read), naming
// the holder; samples that appeared after the early check are found again
// under the lock; the temporary files of a killed run are removed; a run
// writes its whole set and nothing else.
func TestOutDirClaimed(t *testing.T) {
	ck, _ := tinyRun(t, "ve")
	dir := filepath.Join(t.TempDir(), "run[1]")
	os.MkdirAll(dir, 0o755)
	held, err := fsutil.TryLock(filepath.Join(dir, outDirLock))
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	_, err = Run(Config{Ckpt: ck, OutDir: dir, N: 3, Sampler: "pc", Steps: 2, Log: &log})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "is being written by another sampler (pid ") || strings.Contains(log.String(), "sampler pc") {
		t.Fatalf("a held -out-dir: %v; log %q", err, log.String())
	}
	held.Unlock()
	// Samples written between the early check and the claim.
	os.WriteFile(filepath.Join(dir, "sample-00000.png"), []byte(fsutil.PNGMagic), 0o644)
	if _, err := claimOutDir(Config{OutDir: dir}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "already holds 1 samples") {
		t.Fatalf("samples found under the lock: %v", err)
	}
	os.Remove(filepath.Join(dir, "sample-00000.png"))
	stale := filepath.Join(dir, ".sample-00002.png.tmp-123")
	os.WriteFile(stale, []byte("half"), 0o644)
	// A second sampler that comes while this one writes is refused too:
	// the lock is held from before the drawing until the files are there.
	var second error
	defer func(f func(Config)) { beforeWrite = f }(beforeWrite)
	beforeWrite = func(c Config) { _, second = claimOutDir(c) }
	if _, err := Run(Config{Ckpt: ck, OutDir: dir, N: 3, Sampler: "pc", Steps: 2}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(second, ErrConfig) || !strings.Contains(second.Error(), "is being written by another sampler") {
		t.Fatalf("a second sampler while the first writes: %v", second)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != ".lock sample-00000.png sample-00001.png sample-00002.png" {
		t.Fatalf("-out-dir holds %v", names)
	}
	for _, n := range names[1:] {
		if !fsutil.HasMagic(filepath.Join(dir, n), fsutil.PNGMagic) {
			t.Fatalf("%s is not a PNG", n)
		}
	}
}

// TestOutputsAllOrNone: a run whose writing fails half-way (here a folder
// put where a sample goes, after the checks; a full disk did the same)
// leaves the earlier -gif and -out as they were: they were replaced first,
// then the run failed (exit 1). A run that writes them all says so after.
func TestOutputsAllOrNone(t *testing.T) {
	ck, _ := tinyRun(t, "ve")
	dir := t.TempDir()
	grid, film, samples := filepath.Join(dir, "grid.png"), filepath.Join(dir, "film.gif"), filepath.Join(dir, "samples")
	var log bytes.Buffer
	c := Config{Ckpt: ck, Out: grid, GIF: film, N: 3, Sampler: "em", Steps: 2, Log: &log, Device: "cpu"}
	if _, err := Run(c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "wrote "+film) || !strings.Contains(log.String(), "wrote "+grid) {
		t.Fatalf("the first run's log: %s", log.String())
	}
	before := map[string][]byte{}
	for _, p := range []string{grid, film} {
		before[p], _ = os.ReadFile(p)
	}
	defer func(f func(Config)) { beforeWrite = f }(beforeWrite)
	beforeWrite = func(c Config) { os.Mkdir(filepath.Join(c.OutDir, "sample-00001.png"), 0o755) }
	log.Reset()
	c.OutDir, c.Seed = samples, 7 // other samples: a replaced file would differ
	if _, err := Run(c); err == nil || !strings.Contains(err.Error(), "none of the outputs written, the earlier ones kept") {
		t.Fatalf("the failing run: %v", err)
	}
	for p, b := range before {
		if now, _ := os.ReadFile(p); !bytes.Equal(now, b) {
			t.Errorf("%s was replaced by a run that failed", p)
		}
	}
	if strings.Contains(log.String(), "wrote ") {
		t.Errorf("the failed run said it wrote: %s", log.String())
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*")); len(m) > 0 {
		t.Errorf("temporaries left: %v", m)
	}
}
