package generate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/gif"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/sample"
	"github.com/ncsn-go/ncsn/train"
)

// TestSmokeEndToEnd trains a tiny network a few steps, resumes it, and
// samples a PNG grid and per-sample PNGs from the checkpoint folder.
func TestSmokeEndToEnd(t *testing.T) {
	dir, cfg := tinyRun(t, "ncsn")
	cfg.Steps = 4
	if res, err := train.Run(context.Background(), cfg); err != nil || res.Step != 4 {
		t.Fatalf("resume: %v", err)
	}
	sample := func(seed uint64, out, outDir string) []byte {
		c := Config{Ckpt: dir, Out: out, OutDir: outDir, N: 5, Seed: seed, StepsPerLevel: 3, Eps: 1e-3, Denoise: true}
		res, err := Run(c)
		if err != nil {
			t.Fatal(err)
		}
		if res.Step != 4 {
			t.Fatalf("sampled step %d", res.Step)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	outDir := filepath.Join(dir, "samples")
	a := sample(7, filepath.Join(dir, "a.png"), outDir)
	b := sample(7, filepath.Join(dir, "b.png"), "")
	c := sample(8, filepath.Join(dir, "c.png"), "")
	// The annealing film: x₀, one frame per level (3), the denoised end.
	gifPath := filepath.Join(dir, "anneal.gif")
	if _, err := Run(Config{Ckpt: dir, Out: filepath.Join(dir, "d.png"), GIF: gifPath, N: 5, Seed: 7, StepsPerLevel: 3, Eps: 1e-3, Denoise: true}); err != nil {
		t.Fatal(err)
	}
	if n := gifFrames(t, gifPath); n != 5 {
		t.Fatalf("film: %d frames", n)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("same seed, same checkpoint, different PNG bytes")
	}
	if bytes.Equal(a, c) {
		t.Fatal("different seeds gave the same PNG")
	}
	img, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	// 5 samples: a 3×2 grid of 8×8 tiles with 2-pixel borders.
	if sz := img.Bounds().Size(); sz.X != 3*10+2 || sz.Y != 2*10+2 {
		t.Fatalf("grid %v", sz)
	}
	files, _ := filepath.Glob(filepath.Join(outDir, "sample-*.png"))
	if len(files) != 5 {
		t.Fatalf("%d sample files", len(files))
	}
	f, _ := os.Open(files[0])
	one, err := png.Decode(f)
	f.Close()
	if err != nil || one.Bounds().Dx() != 8 || one.Bounds().Dy() != 8 {
		t.Fatalf("single sample: %v %v", err, one.Bounds())
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.ckpt")
	os.WriteFile(bad, []byte("not a checkpoint"), 0o644)
	for name, c := range map[string]Config{
		"missing":  {Ckpt: filepath.Join(dir, "none"), Out: "x.png", N: 1, StepsPerLevel: 1, Eps: 1},
		"corrupt":  {Ckpt: bad, Out: "x.png", N: 1, StepsPerLevel: 1, Eps: 1},
		"empty":    {Ckpt: dir, Out: "x.png", N: 1, StepsPerLevel: 1, Eps: 1},
		"n":        {Ckpt: dir, Out: "x.png", N: 0, StepsPerLevel: 1, Eps: 1},
		"eps":      {Ckpt: dir, Out: "x.png", N: 1, StepsPerLevel: 1, Eps: -1},
		"no-write": {Ckpt: dir, N: 1, StepsPerLevel: 1, Eps: 1},
	} {
		if _, err := Run(c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// tinyRun trains a tiny 8×8 grey network two steps on the named process
// and returns its folder and configuration.
func tinyRun(t *testing.T, process string) (string, train.Config) {
	return tinyRunOf(t, process, "mnist", 1)
}

// tinyRunOf is tinyRun for a dataset name and channel count.
func tinyRunOf(t *testing.T, process, dataset string, channels int) (string, train.Config) {
	t.Helper()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(uint64(channels), 1))
	d := channels * 64
	ds := &data.Dataset{Name: dataset, N: 16, Channels: channels, Height: 8, Width: 8, Images: make([]float32, 16*d)}
	for i := range ds.Images {
		ds.Images[i] = float32(r.Float64())
	}
	cfg := train.Config{
		Dataset: dataset, Preset: "test",
		Model: model.Config{Channels: channels, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4},
		Steps: 2, Batch: 4, LR: 1e-3, EMADecay: 0.9, SigmaMax: 1, SigmaMin: 0.05, Levels: 3, SaveEvery: 1,
		CkptDir: dir, Data: ds,
	}
	if err := cfg.UseSDE(process); err != nil {
		t.Fatal(err)
	}
	if _, err := train.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

// TestSamplersByName: every sampler that fits a process draws from its
// checkpoint, counts its network evaluations, and gives the same bytes for
// the same seed; the pairings that do not fit are one-line errors.
func TestSamplersByName(t *testing.T) {
	dirs := map[string]string{}
	for _, p := range []string{"ncsn", "ve", "vp"} {
		dirs[p], _ = tinyRun(t, p)
	}
	for _, tc := range []struct {
		process, sampler string
		steps, evals     int // evals 0: adaptive, at least 2
		want             string
		churn            float64
	}{
		{"ncsn", "", 0, 3*3 + 1, "", 0},
		{"ve", "", 4, 8, "", 0},
		{"ve", "em", 5, 5, "", 0},
		{"ve", "ode", 0, 0, "", 0},
		{"vp", "pc", 30, 60, "", 0},
		{"vp", "ddpm", 30, 30, "", 0},
		{"vp", "ddim", 7, 7, "", 0},
		{"vp", "ald", 0, 0, "-sampler ald runs NCSN's ladder", 0},
		{"ncsn", "pc", 0, 0, "needs a model trained in continuous time", 0},
		{"ve", "ddim", 0, 0, "is for VP models", 0},
		{"ve", "ddpm", 0, 0, "is for VP models", 0},
		{"ve", "heun", 6, 11, "", 0},
		{"ve", "heun", 6, 11, "", 20},
		{"vp", "heun", 0, 0, "integrates the VE process in σ", 0},
		{"ncsn", "heun", 0, 0, "needs a model trained in continuous time", 0},
		{"ve", "pc", 4, 0, "-churn-noise are heun's", 5},
		{"ve", "heun", 4, 0, "-churn -1 must be", -1},
	} {
		t.Run(fmt.Sprintf("%s-%s-churn%g", tc.process, tc.sampler, tc.churn), func(t *testing.T) {
			dir := dirs[tc.process]
			c := onlyItsFlags(tc.process, Config{Ckpt: dir, Out: filepath.Join(t.TempDir(), "g.png"), N: 3, Seed: 5, StepsPerLevel: 3, Eps: 1e-3,
				Denoise: true, Sampler: tc.sampler, Steps: tc.steps, Tol: 1e-3, Churn: tc.churn})
			res, err := Run(c)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("got %v, want an error saying %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.evals > 0 && res.Evals != tc.evals || res.Evals < 2 {
				t.Fatalf("%s: %d evaluations, want %d", res.Sampler, res.Evals, tc.evals)
			}
			for _, v := range res.Images {
				if !(v >= 0 && v <= 1) {
					t.Fatalf("pixel %g", v)
				}
			}
			first, _ := os.ReadFile(c.Out)
			if _, err := Run(c); err != nil {
				t.Fatal(err)
			}
			again, _ := os.ReadFile(c.Out)
			if !bytes.Equal(first, again) {
				t.Fatal("the same seed gave other bytes")
			}
		})
	}
}

// onlyItsFlags keeps the settings of c that its sampler (on a model of the
// process) uses: Draw refuses the others.
func onlyItsFlags(process string, c Config) Config {
	sampler := c.Sampler
	if sampler == "" {
		sampler = "pc"
		if process == "ncsn" {
			sampler = "ald"
		}
	}
	if sampler == "ald" {
		c.Steps = 0
	} else {
		c.StepsPerLevel, c.Eps = 0, 0
	}
	if sampler != "pc" {
		c.SNR = 0
	}
	if sampler != "ode" {
		c.Tol = 0
	}
	return c
}

// TestTooManySteps: a -steps or -steps-per-level beyond MaxSteps is a
// one-line error before any work (10¹¹ steps ran out of memory making
// the schedule: a crash with a stack trace), also for eval's draws.
func TestTooManySteps(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Steps: 100_000_000_000}, "-steps 100000000000 must be from 1 to 1000000"},
		{Config{Steps: -1}, "-steps -1 must be from 1 to 1000000"},
		{Config{StepsPerLevel: MaxSteps + 1}, "-steps-per-level 1000001 must be from 1 to 1000000"},
	} {
		c.cfg.Ckpt, c.cfg.Out, c.cfg.N = "nowhere", "g.png", 1
		for what, err := range map[string]error{"Validate": c.cfg.Validate(), "validateDraw": c.cfg.validateDraw()} {
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s %+v: %v, want %q", what, c.cfg, err, c.want)
			}
		}
	}
}

// TestOtherSamplersFlags: settings the run's sampler would ignore are
// one-line errors naming the flag and the sampler, not silently dropped.
func TestOtherSamplersFlags(t *testing.T) {
	dirs := map[string]string{}
	for _, p := range []string{"ncsn", "ve"} {
		dirs[p], _ = tinyRun(t, p)
	}
	for _, tc := range []struct {
		process string
		cfg     Config
		want    string
	}{
		{"ve", Config{Sampler: "heun", StepsPerLevel: 3}, "-steps-per-level and -eps are ald's (annealed Langevin dynamics); this run samples with heun"},
		{"ve", Config{Eps: 1e-3}, "this run samples with pc"},
		{"ncsn", Config{Steps: 30}, "-steps is for the continuous-time samplers; ald takes -steps-per-level"},
		{"ncsn", Config{SNR: 0.2}, "-snr is pc's"},
		{"ve", Config{Sampler: "em", SNR: 0.2}, "-snr is pc's (its corrector's signal-to-noise ratio); this run samples with em"},
		{"ve", Config{Sampler: "pc", Tol: 1e-3}, "-tol is ode's (its solver's tolerance); this run samples with pc"},
		{"ve", Config{Sampler: "ode", Tol: math.Inf(1)}, "-tol +Inf must be from 1e-10 to below 1"},
		{"ve", Config{Sampler: "ode", Tol: 1e-300}, "-tol 1e-300 must be from 1e-10 to below 1"}, // ran for hours
		{"ncsn", Config{Eps: math.Inf(1)}, "-eps +Inf must be a positive finite number"},         // "ε = +Inf" of sample
		{"ve", Config{Sampler: "pc", SNR: math.Inf(1)}, "-snr +Inf must be a positive finite number"},
	} {
		tc.cfg.Ckpt, tc.cfg.Out, tc.cfg.N = dirs[tc.process], filepath.Join(t.TempDir(), "g.png"), 2
		_, err := Run(tc.cfg)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s %+v: got %v, want one line with %q", tc.process, tc.cfg, err, tc.want)
		}
		if _, serr := os.Stat(tc.cfg.Out); serr == nil {
			t.Errorf("%s %+v: refused, but wrote %s", tc.process, tc.cfg, tc.cfg.Out)
		}
	}
}

// TestCheckpointSampler: a checkpoint that recommends heun (the edm preset's)
// is drawn by heun with its steps and churn unless told otherwise: -churn 0
// (ChurnSet) gives the deterministic sampler, -steps its own count, and
// another -sampler ignores the recommendation.
func TestCheckpointSampler(t *testing.T) {
	dir, _ := tinyRun(t, "ve")
	st := loadLatest(t, dir)
	st.SampleSampler, st.SampleSteps, st.SampleChurn = "heun", 5, 20
	draw := func(c Config) *Result {
		t.Helper()
		c.N, c.Seed = 2, 3
		res, err := Draw(st, c)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	def := draw(Config{})
	if def.Sampler != "heun" || def.Evals != 9 {
		t.Fatalf("default: %s, %d evaluations; want heun, 9", def.Sampler, def.Evals)
	}
	same := draw(Config{Churn: 20})
	det := draw(Config{ChurnSet: true})
	if !reflect.DeepEqual(def.Images, same.Images) || reflect.DeepEqual(def.Images, det.Images) {
		t.Error("the checkpoint's churn is not the one used, or -churn 0 did not turn it off")
	}
	if r := draw(Config{Steps: 3}); r.Evals != 5 {
		t.Errorf("-steps 3: %d evaluations", r.Evals)
	}
	if r := draw(Config{Sampler: "em", Steps: 4}); r.Sampler != "em" || r.Evals != 4 {
		t.Errorf("-sampler em: %s, %d evaluations", r.Sampler, r.Evals)
	}
	// The continuous samplers' steps come from the checkpoint only for its
	// own sampler: an ALD-only T (the MNIST preset's 50) does not make pc's.
	st.SampleSampler, st.SampleChurn = "", 0
	if r := draw(Config{Sampler: "pc"}); r.Evals != 2*DefaultSteps["pc"] {
		t.Errorf("pc without a recommendation: %d evaluations", r.Evals)
	}
}

// The film of a continuous sampler: the prior, about filmFrames frames on the
// way and the last step, without changing the samples.
func TestContinuousFilm(t *testing.T) {
	dir, _ := tinyRun(t, "ve")
	st := loadLatest(t, dir)
	for _, tc := range []struct {
		sampler      string
		steps, churn int
		want         int
	}{
		{"heun", 5, 20, 1 + 5},   // every step
		{"pc", 30, 0, 1 + 10},    // every third step, the last among them
		{"em", 13, 0, 1 + 6 + 1}, // every second step, then the last
		{"heun", 24, 0, 1 + 12},  // every second step
	} {
		c := Config{N: 2, Seed: 3, Sampler: tc.sampler, Steps: tc.steps, Churn: float64(tc.churn), ChurnSet: true}
		plain, err := Draw(st, c)
		if err != nil {
			t.Fatal(err)
		}
		c.GIF = filepath.Join(dir, fmt.Sprintf("%s-%d.gif", tc.sampler, tc.steps))
		filmed, err := Draw(st, c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(c.GIF); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Draw wrote %s: %v", c.GIF, err)
		}
		if err := filmed.WriteFilm(c.GIF); err != nil { // Draw writes nothing: the film is in its Result
			t.Fatal(err)
		}
		if err := plain.WriteFilm(c.GIF); !errors.Is(err, ErrConfig) {
			t.Fatalf("a Result without a film: %v", err)
		}
		if !reflect.DeepEqual(plain.Images, filmed.Images) {
			t.Errorf("%s: filming changed the samples", tc.sampler)
		}
		if n := gifFrames(t, c.GIF); n != tc.want {
			t.Errorf("%s, %d steps: %d frames, want %d", tc.sampler, tc.steps, n, tc.want)
		}
	}
	_, err := Draw(st, Config{N: 2, Sampler: "ode", GIF: filepath.Join(dir, "ode.gif")})
	if !errors.Is(err, ErrConfig) {
		t.Errorf("ode with -gif: %v, want ErrConfig", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ode.gif")); !os.IsNotExist(err) {
		t.Error("a refused film left a file")
	}
}

// gifFrames is the number of frames of the animated GIF at path.
func gifFrames(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := gif.DecodeAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return len(g.Image)
}

// TestChurnShapeWithoutChurn: -churn-min, -churn-max and -churn-noise with
// heun at -churn 0 (given, or the checkpoint's) are an error: they shape a
// churn there is none of, and were ignored (the same samples, byte for
// byte).
func TestChurnShapeWithoutChurn(t *testing.T) {
	ck, _ := tinyRun(t, "ve")
	for name, c := range map[string]Config{
		"-churn-noise": {ChurnNoise: 0.5},
		"-churn-min":   {ChurnMin: 0.5},
		"-churn-max":   {ChurnMax: 0.1},
	} {
		c.Ckpt, c.Out, c.N, c.Sampler, c.Steps, c.ChurnSet = ck, filepath.Join(t.TempDir(), "g.png"), 2, "heun", 3, true
		if _, err := Run(c); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "this run has none (-churn 0)") {
			t.Errorf("%s at -churn 0: %v", name, err)
		}
	}
}

// TestUnknownRecommendedSampler: a checkpoint recommending a sampler this
// build does not have (a Go caller's name) draws with the process's default,
// saying so (the name was taken for the sampler asked for, and refused with
// a message about heun's flags).
func TestUnknownRecommendedSampler(t *testing.T) {
	ck, _ := tinyRun(t, "ncsn")
	st := loadLatest(t, ck)
	st.SampleSampler = "ALD"
	var log bytes.Buffer
	res, err := Draw(st, Config{N: 2, Seed: 1, StepsPerLevel: 1, Log: &log})
	if err != nil || res == nil || !strings.Contains(log.String(), `the checkpoint recommends a sampler this build does not have ("ALD")`) {
		t.Fatalf("%v\n%s", err, log.String())
	}
}

// TestFilmKeepsClassRows: with -class the film's frames have one class a
// row, as the grid does (they wrapped the classes across a square grid).
func TestFilmKeepsClassRows(t *testing.T) {
	x := make([]float64, 15*16)
	f := newFilm(1, 4, 4, 5) // 3 classes of 5
	f.add(x, 15, 10)
	want, _ := sample.GridCols(x, 15, 5, 1, 4, 4)
	if got := f.g.Image[0].Bounds(); got != want.Bounds() {
		t.Fatalf("frame %v, the grid %v", got, want.Bounds())
	}
	square := newFilm(1, 4, 4, 0)
	square.add(x, 15, 10)
	if sq, _ := sample.Grid(x, 15, 1, 4, 4); square.g.Image[0].Bounds() != sq.Bounds() {
		t.Fatalf("a film without classes: %v, the grid %v", square.g.Image[0].Bounds(), sq.Bounds())
	}
}
