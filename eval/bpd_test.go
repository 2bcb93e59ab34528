package eval

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/train"
)

// TestBitsPerDimRefusals: -bpd is a clear error for a discrete NCSN model,
// a checkpoint of another dataset, a missing checkpoint, a bad -n or -tol,
// and -device cuda in a build without the GPU; none of them reaches the
// data.
func TestBitsPerDimRefusals(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(1, 1))
	ds := &data.Dataset{Name: "mnist", N: 8, Channels: 1, Height: 8, Width: 8, Images: make([]float32, 8*64)}
	for i := range ds.Images {
		ds.Images[i] = float32(r.Float64())
	}
	cfg := train.Config{Dataset: "mnist", Preset: "test",
		Model: model.Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4},
		Steps: 1, Batch: 2, LR: 1e-3, EMADecay: 0.9, SigmaMax: 1, SigmaMin: 0.05, Levels: 3, SaveEvery: 1, CkptDir: dir, Data: ds}
	if _, err := train.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	ve := t.TempDir() // a continuous-time checkpoint
	cfg.CkptDir = ve
	if err := cfg.UseSDE("ve"); err != nil {
		t.Fatal(err)
	}
	if _, err := train.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	noData := t.TempDir() // an empty data folder: any attempt to load would fail differently
	grid := filepath.Join(t.TempDir(), "grid.png")
	var gb bytes.Buffer
	png.Encode(&gb, image.NewGray(image.Rect(0, 0, 8, 8)))
	os.WriteFile(grid, gb.Bytes(), 0o644)
	// cmd/eval takes the dataset from the checkpoint (a CIFAR-10 model's
	// -bpd was refused as "trained on cifar10, not mnist" without -dataset).
	if name, ok := CheckpointDataset(ve); !ok || name != "mnist" {
		t.Errorf("CheckpointDataset of a run: %q %v", name, ok)
	}
	if _, ok := CheckpointDataset(grid); ok {
		t.Error("CheckpointDataset of a PNG: ok")
	}
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"ncsn", Config{Dataset: "mnist", Samples: dir, N: 4, DataDir: noData}, "needs a model trained in continuous time"},
		{"dataset", Config{Dataset: "fashion", Samples: dir, N: 4, DataDir: noData}, "trained on mnist, not fashion"},
		{"missing", Config{Dataset: "mnist", Samples: dir + "/none", N: 4, DataDir: noData}, "needs a checkpoint"},
		{"png", Config{Dataset: "mnist", Samples: grid, N: 4, DataDir: noData}, "-bpd needs a checkpoint of a continuous-time model as -samples, and " + grid + " is a PNG"},
		{"n", Config{Dataset: "mnist", Samples: dir, N: 0, DataDir: noData}, "-n 0"},
		{"tol", Config{Dataset: "mnist", Samples: dir, N: 4, Tol: -1, DataDir: noData}, "-tol -1 must be from 1e-10 to below 1"},
		{"tol tiny", Config{Dataset: "mnist", Samples: dir, N: 4, Tol: 1e-300, DataDir: noData}, "-tol 1e-300 must be from 1e-10"},
		{"folder", Config{Dataset: "folder:" + dir, Samples: dir, N: 4, DataDir: noData}, "-bpd scores a dataset's test images, and -dataset folder:"},
		{"tol inf", Config{Dataset: "mnist", Samples: dir, N: 4, Tol: math.Inf(1), DataDir: noData}, "-tol +Inf must be from 1e-10 to below 1"},
		{"tol 1e12", Config{Dataset: "mnist", Samples: dir, N: 4, Tol: 1e12, DataDir: noData}, "-tol 1e+12 must be from 1e-10 to below 1"},
		// Without the GPU build -device cuda is an error before the test set
		// is read (as is a device that does not exist).
		{"device", Config{Dataset: "mnist", Samples: ve, N: 4, Device: "cuda", DataDir: noData}, "-device cuda: built without GPU support; build with -tags gpu"},
		{"unknown device", Config{Dataset: "mnist", Samples: ve, N: 4, Device: "tpu", DataDir: noData}, `-device "tpu": unknown device`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "device" && cuda.Built {
				t.Skip("the GPU build opens a GPU where there is one: see model's TestDeviceLikelihoodMatchesCPU")
			}
			_, err := BitsPerDim(tc.c)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line saying %q", err, tc.want)
			}
		})
	}
	// Scoring samples drawn from a checkpoint of another dataset is refused
	// before the test set or the classifier is loaded (noData holds neither).
	if _, err := Run(Config{Dataset: "fashion", Samples: dir, N: 4, DataDir: noData}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "trained on mnist, not fashion") {
		t.Fatalf("samples of another dataset: %v", err)
	}
	if err := (Config{Samples: dir, NSet: true}).onlyDrawing("", true); err != nil {
		t.Fatalf("-n with a checkpoint: %v", err)
	}
	// So is what the drawing would refuse, and sample files that are not
	// PNGs: before minutes of downloads and classifier training. The data
	// folder here is a file: a load would fail at once, saying something
	// else.
	dataFile := filepath.Join(t.TempDir(), "data")
	os.WriteFile(dataFile, nil, 0o644)
	notPNG := filepath.Join(t.TempDir(), "notes.png")
	os.WriteFile(notPNG, []byte("not a picture\n"), 0o644)
	emptyFile := filepath.Join(t.TempDir(), "empty.png")
	os.WriteFile(emptyFile, nil, 0o644)
	mixed := t.TempDir()
	for i, side := range []int{8, 9} {
		var b bytes.Buffer
		png.Encode(&b, image.NewGray(image.Rect(0, 0, side, side)))
		os.WriteFile(filepath.Join(mixed, fmt.Sprintf("s%d.png", i)), b.Bytes(), 0o644)
	}
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Samples: dir, N: 4, Sampler: "foo"}, `unknown -sampler "foo"`},
		{Config{Samples: dir, N: 4, Sampler: "ddim"}, "needs a model trained in continuous time"},
		{Config{Samples: dir, N: 0}, "-n 0: need at least 2 samples"},
		{Config{Samples: ve, N: 1, Class: "7", Classifier: filepath.Join(dir, "none")}, "-n 1: need at least 2 samples in all"},          // refused only once drawn
		{Config{Samples: ve, N: 1, Class: "3,7", Classifier: filepath.Join(dir, "none")}, "-class needs a noise-conditional classifier"}, // 2 in all: on to the next check
		{Config{Samples: ve, N: 4, Sampler: "pc", Churn: 2, ChurnSet: true}, "-churn, -churn-min, -churn-max and -churn-noise are heun's"},
		{Config{Samples: ve, N: 4, Class: "3", Classifier: filepath.Join(dir, "none")}, "-class needs a noise-conditional classifier"},
		{Config{Samples: ve, N: 4, Class: "3", Classifier: dir}, "is a score model, not a classifier"},
		{Config{Samples: ve, N: 4, Autoguide: "self"}, "the checkpoint keeps no guide of its own"},
		{Config{Samples: ve, N: 4, Autoguide: filepath.Join(dir, "none")}, "-autoguide"},
		{Config{Samples: notPNG}, "notes.png"},
		{Config{Samples: emptyFile}, "is an empty file"},
		{Config{Samples: t.TempDir()}, "holds 0 PNGs; need at least 2"},
		{Config{Samples: onePNG(t)}, "holds 1 PNG; need at least 2"},
		{Config{Samples: runBeforeItsFirstSave(t)}, "holds 0 PNGs; need at least 2 (it holds a train.csv but no checkpoint yet"},
		{Config{Samples: mixed}, "samples are images of one size"},
	} {
		tc.c.Dataset, tc.c.DataDir = "mnist", dataFile
		if _, err := Run(tc.c); err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: got %v, want one line saying %q", tc.c, err, tc.want)
		}
	}
}

// TestDrawingFlagsRefused: a flag that only drawing from a checkpoint uses
// is a one-line error naming it where nothing is drawn — samples that are
// PNGs (a grid, a folder; a folder dataset too), -bpd (but its -tol and
// -device), a
// classifier's evaluation — before any data is loaded; -device cpu is
// never refused.
func TestDrawingFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	grid := filepath.Join(dir, "grid.png")
	if err := os.WriteFile(grid, []byte("not read"), 0o644); err != nil {
		t.Fatal(err)
	}
	noData := t.TempDir()
	for _, tc := range []struct {
		name string
		run  func(Config) error
		c    Config
		want string
	}{
		{"grid, sampler", func(c Config) error { _, err := Run(c); return err },
			Config{Dataset: "mnist", Samples: grid, Sampler: "heun", Steps: 10}, "-sampler, -steps are for drawing samples from a checkpoint, and -samples " + grid + " is not one (nor a folder of them)"},
		{"PNG folder, autoguide", func(c Config) error { _, err := Run(c); return err },
			Config{Dataset: "mnist", Samples: dir, Autoguide: "self"}, "-autoguide is for drawing"},
		{"-n given", func(c Config) error { _, err := Run(c); return err },
			Config{Dataset: "mnist", Samples: dir, NSet: true}, "-n is for drawing"},
		{"churn 0 given", func(c Config) error { _, err := Run(c); return err },
			Config{Dataset: "mnist", Samples: dir, ChurnSet: true}, "-churn is for drawing"},
		{"device cuda", func(c Config) error { _, err := Run(c); return err },
			Config{Dataset: "mnist", Samples: grid, Device: "cuda", Class: "all"}, "-class, -device are for"},
		{"folder dataset", func(c Config) error { _, err := Folder(c); return err },
			Config{Dataset: "folder:" + dir, Samples: grid, AutoguideWeight: 2}, "-autoguide-weight is for"},
		{"bpd", func(c Config) error { _, err := BitsPerDim(c); return err },
			Config{Dataset: "mnist", Samples: dir, N: 4, Tol: 1e-3, Sampler: "ode", Eps: 0.1}, "-eps, -sampler are for drawing samples from a score model's checkpoint, and -bpd draws none"},
		{"classifier", func(c Config) error { _, err := NoisyAccuracy(c); return err },
			Config{Dataset: "mnist", Samples: dir, N: 4, Autoguide: "none"}, "-autoguide is for drawing samples from a score model's checkpoint, and a classifier's evaluation draws none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.DataDir = noData
			err := tc.run(tc.c)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line saying %q", err, tc.want)
			}
		})
	}
	empty := filepath.Join(dir, "empty.ckpt")
	os.WriteFile(empty, nil, 0o644)
	if _, _, _, err := drawOrRead(Config{Samples: empty}, nil); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "is an empty file") {
		t.Fatalf("an empty file: %v", err)
	}
	// -device cpu anywhere, and -bpd's -tol, pass the check.
	if err := (Config{Samples: grid, Device: "cpu"}).onlyDrawing("", false); err != nil {
		t.Fatal(err)
	}
	if err := (Config{Samples: dir, Tol: 1e-3, Device: "cpu"}).onlyDrawing("-bpd", false, "-tol"); err != nil {
		t.Fatal(err)
	}
	if err := (Config{Samples: dir, Tol: 1e-3, Device: "cuda"}).onlyDrawing("-bpd", false, "-tol", "-device"); err != nil {
		t.Fatal(err)
	}
	if err := (Config{Samples: dir, Sampler: "pc", Autoguide: "self"}).onlyDrawing("", true); err != nil {
		t.Fatal(err)
	}
}

// TestBitsPerDimArithmetic: the uniform density on [0, 1)^D (log p = 0)
// is 8 bits a dimension — each pixel one of 256 equally likely values — and
// the uniform density on [0, 1/2)^D (log p = D ln 2) 7; dequantisation puts
// pixel k's noise in its own bin [k/256, (k+1)/256).
func TestBitsPerDimArithmetic(t *testing.T) {
	for _, c := range []struct {
		logp float64
		d    int
		want float64
	}{{0, 784, 8}, {784 * math.Ln2, 784, 7}, {-3072 * math.Ln2, 3072, 9}} {
		if got := bitsPerDim(c.logp, c.d); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("log p %g over %d values: %g bits/dim, want %g", c.logp, c.d, got, c.want)
		}
	}
	for k := 0; k < 256; k++ {
		p := float32(k) / 255 // as the datasets hold pixel k
		lo, hi := dequantise(p, 0), dequantise(p, 0.999)
		if lo != float64(k)/256 || !(hi < float64(k+1)/256) || !(hi > lo) {
			t.Fatalf("pixel %d: [%g, %g], want [%g, %g)", k, lo, hi, float64(k)/256, float64(k+1)/256)
		}
	}
}

// runBeforeItsFirstSave is a run's folder as a run killed before its first
// save leaves it: its lock and training log, no checkpoint.
func runBeforeItsFirstSave(t *testing.T) string {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "lock"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "train.csv"), []byte("step,loss\n1,2\n"), 0o644)
	return dir
}

// onePNG is a new folder holding one 28×28 grey PNG.
func onePNG(t *testing.T) string {
	dir := t.TempDir()
	var b bytes.Buffer
	png.Encode(&b, image.NewGray(image.Rect(0, 0, 28, 28)))
	os.WriteFile(filepath.Join(dir, "s.png"), b.Bytes(), 0o644)
	return dir
}
