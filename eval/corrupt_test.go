package eval

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
)

var update = flag.Bool("update", false, "rewrite the corrupt inputs in testdata and the fuzz seed corpus")

// testdataClassifiers are the small corrupt classifier files in testdata:
// file name → contents.
func testdataClassifiers(tb testing.TB) map[string][]byte {
	seeds := classifierSeeds(tb)
	flipped := withSum(seeds["two-channels"])
	flipped[len(flipped)/3] ^= 0x10
	return map[string][]byte{
		"classifier-truncated.gob": withSum(seeds["two-channels"])[:20],
		"classifier-flipped.gob":   flipped,
		"classifier-channels.gob":  withSum(seeds["two-channels"]),
		"classifier-huge.gob":      withSum(seeds["huge"]),
		"classifier-negative.gob":  withSum(seeds["negative"]),
		"classifier-version.gob":   withSum(seeds["version-2"]),
		"classifier-other.gob":     withSum(seeds["not-classifier"]),
	}
}

// testdataPNGs are the corrupt sample PNGs in testdata.
func testdataPNGs(tb testing.TB) map[string][]byte {
	seeds := samplePNGSeeds(tb)
	return map[string][]byte{
		"png-truncated.png":   seeds["truncated"],
		"png-bomb.png":        seeds["bomb"],
		"png-bomb-pixels.png": seeds["bomb-pixels"],
		"png-garbage.png":     []byte("not a PNG at all\n"),
		"png-short-rows.png":  seeds["short-rows"],
	}
}

// TestUpdateTestdata rewrites testdata:
//
//	go test ./eval -run TestUpdateTestdata -args -update
func TestUpdateTestdata(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata")
	}
	write := func(dir string, files map[string][]byte, corpus bool) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			if corpus {
				b = []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b))
			}
			if len(b) > 20<<10 {
				t.Fatalf("%s/%s: %d bytes", dir, name, len(b))
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("testdata", testdataClassifiers(t), false)
	write("testdata", testdataPNGs(t), false)
	write(filepath.Join("testdata", "fuzz", "FuzzDecodeClassifier"), classifierSeeds(t), true)
	write(filepath.Join("testdata", "fuzz", "FuzzSamplePNG"), samplePNGSeeds(t), true)
}

func TestLoadClassifierCorrupt(t *testing.T) {
	dir := t.TempDir()
	valid := withSum(classifierBody(t, cacheVersion, zeroClassifier(1, 8, 8)))
	flipped := bytes.Clone(valid)
	flipped[len(flipped)/2] ^= 1
	nan := zeroClassifier(1, 8, 8)
	nan.Weights[3][7] = float32(math.NaN())
	inf := zeroClassifier(3, 8, 8)
	inf.Weights[10][0] = float32(math.Inf(-1))
	shape := zeroClassifier(1, 8, 8)
	shape.Shapes[8] = []int{128, 256}
	named := zeroClassifier(1, 8, 8)
	named.Names[0] = "x"
	short := zeroClassifier(1, 8, 8)
	short.Weights[11] = short.Weights[11][:9]
	acc := zeroClassifier(1, 8, 8)
	acc.Accuracy = math.NaN()
	generated := map[string][]byte{
		"valid-flipped.gob": flipped,
		"nan.gob":           withSum(classifierBody(t, cacheVersion, nan)),
		"inf.gob":           withSum(classifierBody(t, cacheVersion, inf)),
		"shape.gob":         withSum(classifierBody(t, cacheVersion, shape)),
		"named.gob":         withSum(classifierBody(t, cacheVersion, named)),
		"short.gob":         withSum(classifierBody(t, cacheVersion, short)),
		"accuracy.gob":      withSum(classifierBody(t, cacheVersion, acc)),
		"trailing.gob":      withSum(append(classifierBody(t, cacheVersion, zeroClassifier(1, 4, 4)), 0)),
		"empty.gob":         nil,
	}
	for name, b := range generated {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		path, want string
	}{
		{"testdata/classifier-truncated.gob", "truncated (20 bytes)"},
		{"testdata/classifier-flipped.gob", "checksum mismatch"},
		{"testdata/classifier-channels.gob", "2 channels"},
		{"testdata/classifier-huge.gob", "1099511627776×1099511627776 images"},
		{"testdata/classifier-negative.gob", "-8×8 images"},
		{"testdata/classifier-version.gob", "version 2, want 1"},
		{"testdata/classifier-other.gob", "gob: "},
		{filepath.Join(dir, "valid-flipped.gob"), "checksum mismatch"},
		{filepath.Join(dir, "nan.gob"), "tensor c2.b: value 7 is NaN"},
		{filepath.Join(dir, "inf.gob"), "tensor f2.w: value 0 is -Inf"},
		{filepath.Join(dir, "shape.gob"), "tensor f1.w has shape [128 256]"},
		{filepath.Join(dir, "named.gob"), `tensor 0 is "x"`},
		{filepath.Join(dir, "short.gob"), "tensor f2.b has 9 values, want 10"},
		{filepath.Join(dir, "accuracy.gob"), "accuracy NaN"},
		{filepath.Join(dir, "trailing.gob"), "1 bytes after the classifier"},
		{filepath.Join(dir, "empty.gob"), "truncated (0 bytes)"},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			c, err := LoadClassifier(tc.path)
			if err == nil {
				t.Fatalf("loaded %+v", c.Names)
			}
			if !errors.Is(err, ErrCache) || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q: want ErrCache, the path and %q", err, tc.want)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		p := filepath.Join(dir, "none.gob")
		if _, err := LoadClassifier(p); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), p) {
			t.Fatalf("error %v", err)
		}
	})
}

func TestDecodeClassifier(t *testing.T) {
	var b bytes.Buffer
	want := zeroClassifier(1, 8, 8)
	if err := want.Encode(&b); err != nil {
		t.Fatal(err)
	}
	valid := b.Bytes()
	for _, tc := range []struct {
		name string
		in   []byte
		want string // "" for success
	}{
		{"valid", valid, ""},
		{"last byte flipped", append(bytes.Clone(valid[:len(valid)-1]), valid[len(valid)-1]^0x80), "checksum mismatch"},
		{"truncated", valid[:len(valid)-1], "checksum mismatch"},
		{"short", valid[:sha256.Size-1], "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeClassifier(bytes.NewReader(tc.in))
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want == "":
				// Zero weights: every class gets 1/10.
				probs, feats, err := c.Predict(make([]float32, 2*64), 2)
				if err != nil {
					t.Fatal(err)
				}
				if len(probs) != 20 || len(feats) != 2*Features || math.Abs(probs[13]-0.1) > 1e-9 {
					t.Fatalf("%d probabilities (%v), %d features", len(probs), probs, len(feats))
				}
			case err == nil || !errors.Is(err, ErrCache) || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("read error", func(t *testing.T) {
		boom := errors.New("boom")
		if _, err := DecodeClassifier(iotest.ErrReader(boom)); !errors.Is(err, boom) || !errors.Is(err, ErrCache) {
			t.Fatalf("error %v", err)
		}
	})
}

// TestPredictChecks: a classifier built in code with a bad shape is refused
// with an error, not a panic in the graph.
func TestPredictChecks(t *testing.T) {
	short := zeroClassifier(1, 8, 8)
	short.Weights = short.Weights[:5]
	odd := zeroClassifier(1, 8, 8)
	odd.Height = 6
	for _, tc := range []struct {
		name string
		c    *Classifier
		want string
	}{
		{"empty", &Classifier{}, "0 channels"},
		{"short", short, "5 tensors"},
		{"odd side", odd, "6×8 images"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := tc.c.Predict(make([]float32, 64), 1); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestTrainClassifierShape(t *testing.T) {
	for _, tc := range []struct {
		name    string
		c, h, w int
		want    string
	}{
		{"odd", 1, 30, 30, "30×30 images"},
		{"channels", 2, 8, 8, "2 channels"},
		{"huge", 1, 1 << 20, 1 << 20, "images"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := &data.Dataset{N: 1, Channels: tc.c, Height: tc.h, Width: tc.w}
			if _, err := TrainClassifier("x", ds, ds, 1, 1, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestClassifierShapeMismatch: a cached classifier for other images, or
// another dataset's of the same shape (MNIST's in a Fashion-MNIST folder:
// it scored Fashion-MNIST samples), is refused, not used.
func TestClassifierShapeMismatch(t *testing.T) {
	dir := t.TempDir()
	clf := zeroClassifier(3, 32, 32)
	clf.Dataset = "cifar10"
	if err := clf.Save(filepath.Join(dir, "classifier-v1.gob")); err != nil {
		t.Fatal(err)
	}
	noTrain := func() (*data.Dataset, error) { return nil, errors.New("no training here") }
	_, err := classifier(Config{Dataset: "mnist", DataDir: dir}, mnistShape, noTrain)
	if !errors.Is(err, ErrCache) || !strings.Contains(err.Error(), "3×32×32") {
		t.Fatalf("error %v", err)
	}
	clf, err = classifier(Config{Dataset: "cifar10", DataDir: dir}, cifarShape, noTrain)
	if err != nil || clf.Channels != 3 {
		t.Fatalf("matching classifier: %v", err)
	}
	mnist := zeroClassifier(1, 28, 28)
	mnist.Dataset = "mnist"
	if err := mnist.Save(filepath.Join(dir, "classifier-v1.gob")); err != nil {
		t.Fatal(err)
	}
	_, err = classifier(Config{Dataset: "fashion", DataDir: dir}, mnistShape, noTrain)
	if !errors.Is(err, ErrCache) || !strings.Contains(err.Error(), "the mnist classifier, not fashion's") {
		t.Fatalf("MNIST's classifier for Fashion-MNIST: %v", err)
	}
}

func TestSamplePNGCorrupt(t *testing.T) {
	for _, tc := range []struct {
		file, want string
	}{
		{"png-truncated.png", "not enough pixel data"},
		{"png-bomb.png", "100000×100000 image refused"},
		{"png-bomb-pixels.png", "16384×16384 image refused"},
		{"png-garbage.png", "not a PNG file"},
		{"png-short-rows.png", "not enough pixel data"},
		{"none.png", "no such file"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p := filepath.Join("testdata", tc.file)
			for _, read := range []func() error{
				func() error { _, err := decodePNG(p); return err },
				func() error { _, _, err := loadSamples(Config{Samples: p}, mnistShape); return err },
			} {
				if err := read(); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want the path and %q", err, tc.want)
				}
			}
		})
	}
	t.Run("folder", func(t *testing.T) {
		dir := t.TempDir()
		seeds := samplePNGSeeds(t)
		for name, b := range map[string][]byte{"a.png": encodePNG(t, image.NewGray(image.Rect(0, 0, 28, 28))), "b.png": seeds["bomb"]} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := loadSamples(Config{Samples: dir}, mnistShape); err == nil || !strings.Contains(err.Error(), "b.png") || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("error %v", err)
		}
	})
}

// TestGridTilesEdges: grids of odd sizes and in every PNG colour type are
// cut or refused with an error naming the file, never a panic.
func TestGridTilesEdges(t *testing.T) {
	seeds := samplePNGSeeds(t)
	decode := func(name string) image.Image {
		img, err := decodeSamplePNG(bytes.NewReader(seeds[name]), name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return img
	}
	// A 2×2 grid whose last row holds a black sample, then a white one:
	// both count (the black one was dropped as the unused end).
	blackThenWhite := image.NewGray(image.Rect(0, 0, 62, 62))
	for y := 2 + 30; y < 2+30+28; y++ {
		for x := 2 + 30; x < 2+30+28; x++ {
			blackThenWhite.Pix[y*62+x] = 255
		}
	}
	// A picture whose size fits a grid but whose gaps are white (cmd/plot's
	// progress strip was cut across them and scored as 68 samples).
	whiteGaps := image.NewGray(image.Rect(0, 0, 62, 62))
	for i := range whiteGaps.Pix {
		whiteGaps.Pix[i] = 255
	}
	bad := &data.Dataset{Channels: 2, Height: 28, Width: 28}
	flat := &data.Dataset{Channels: 1, Height: 28, Width: 0}
	for _, tc := range []struct {
		name  string
		img   image.Image
		shape *data.Dataset
		n     int     // images, when it is a grid
		first float32 // the first value, when it is a grid
		want  string  // the error, when it is not
	}{
		{"mnist grid", decode("mnist-grid"), mnistShape, 4, 1.0 / 5, ""},
		{"cifar10 grid", decode("cifar10-grid"), cifarShape, 3, 1.0 / 4, ""},
		{"paletted", decode("paletted"), mnistShape, 4, 128.0 / 255, ""},
		{"gray16", decode("gray16"), mnistShape, 4, 128.0 / 255, ""},
		{"grey+alpha", decode("grey-alpha"), mnistShape, 4, 200.0 / 255, ""},
		{"grey as rgb", decode("grey-alpha"), &data.Dataset{Channels: 3, Height: 28, Width: 28}, 4, 200.0 / 255, ""},
		{"cifar10 grid as mnist", decode("cifar10-grid"), mnistShape, 0, 0, "not a grid"},
		{"not a multiple", decode("not-a-multiple"), mnistShape, 0, 0, "not a grid"},
		{"one pixel", decode("one-pixel"), mnistShape, 0, 0, "not a grid"},
		{"zero size", image.NewGray(image.Rect(0, 0, 0, 0)), mnistShape, 0, 0, "not a grid"},
		{"border only", image.NewGray(image.Rect(0, 0, 2, 2)), mnistShape, 0, 0, "not a grid"},
		{"offset blank", image.NewGray(image.Rect(5, 7, 5+62, 7+62)), mnistShape, 2, 0, ""}, // the blank last row is dropped
		{"black sample before the last", blackThenWhite, mnistShape, 4, 0, ""},
		{"one image", image.NewGray(image.Rect(0, 0, 28, 28)), mnistShape, 0, 0, "is one 28×28 image; -samples takes a grid of them"},
		{"one tile", image.NewGray(image.Rect(0, 0, 32, 32)), mnistShape, 0, 0, "holds 0 images"},
		{"two channels", decode("mnist-grid"), bad, 0, 0, "2-channel"},
		{"white gaps", whiteGaps, mnistShape, 0, 0, "is not a grid of cmd/sample's: its border at (0, 0) is not black"},
		{"zero width", decode("mnist-grid"), flat, 0, 0, "0×28 images"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, n, err := gridTiles(tc.img, "grid.png", tc.shape)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.n || len(out) != n*tc.shape.Dim() {
				t.Fatalf("%d images, %d values; want %d images", n, len(out), tc.n)
			}
			if d := out[0] - tc.first; d > 0.5/255 || d < -0.5/255 {
				t.Fatalf("first value %g, want %g", out[0], tc.first)
			}
		})
	}
}

// TestClassifierNotCachedGoesOn: a classifier that cannot be cached (here
// a folder of /proc, where nobody may create files) is used by this run,
// not thrown away after its training; the log says the next run trains
// again.
func TestClassifierNotCachedGoesOn(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux's /proc for a folder that takes no files")
	}
	var log strings.Builder
	tr := func() (*data.Dataset, error) { return quadrants(200, 1), nil }
	clf, err := classifier(Config{Dataset: "quadrants", DataDir: "/proc/self", Epochs: 1, Log: &log}, quadrants(100, 2), tr)
	if err != nil || clf == nil {
		t.Fatalf("%v", err)
	}
	if !strings.Contains(log.String(), "note: the classifier could not be cached") {
		t.Fatalf("log %q", log.String())
	}
}

// TestDamagedCheckpointSamples: -samples naming a damaged checkpoint file
// (a .ckpt that does not start as one) is told the checkpoint is damaged,
// not that it is not a PNG; before the data or a classifier is loaded.
func TestDamagedCheckpointSamples(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ckpt-00000001.ckpt")
	if err := os.WriteFile(p, []byte("not a checkpoint at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(Config{Dataset: "mnist", Samples: p, DataDir: t.TempDir()})
	if !errors.Is(err, checkpoint.ErrCorrupt) || !strings.Contains(err.Error(), p) {
		t.Fatalf("error %v, want the path and checkpoint.ErrCorrupt", err)
	}
}

// TestClassifierTrainedOnce: two evaluations at once on a data folder
// without a cached classifier train it once; the second waits for the
// first and reads its cache (each trained its own, for minutes).
func TestClassifierTrainedOnce(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // where the lock is
	dir := t.TempDir()
	var trained atomic.Int32
	tr := func() (*data.Dataset, error) {
		trained.Add(1)
		time.Sleep(300 * time.Millisecond) // the other comes while this one trains
		return quadrants(200, 1), nil
	}
	logs := make([]strings.Builder, 2)
	clfs := make([]*Classifier, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clfs[i], errs[i] = classifier(Config{Dataset: "quadrants", DataDir: dir, Epochs: 1, Log: &logs[i]}, quadrants(100, 2), tr)
		}()
	}
	wg.Wait()
	waited := 0
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("evaluation %d: %v", i, errs[i])
		}
		if strings.Contains(logs[i].String(), "is training a classifier for "+filepath.Join(dir, "classifier-v1.gob")+": waiting for it") {
			waited++
		}
	}
	if n := trained.Load(); n != 1 || waited != 1 || clfs[0].Accuracy != clfs[1].Accuracy {
		t.Fatalf("%d trainings, %d waited, accuracies %v and %v", n, waited, clfs[0].Accuracy, clfs[1].Accuracy)
	}
	if left, _ := os.ReadDir(os.TempDir()); len(left) != 0 {
		t.Fatalf("the temporary folder holds %d files, the lock's first (%s)", len(left), left[0].Name())
	}
}

// TestClassifierSavedBeforeTheLock: a classifier another process saved
// between this one's look at the cache and its lock is read, not trained
// again (the cache was looked at again only after a wait).
func TestClassifierSavedBeforeTheLock(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	dir := t.TempDir()
	theirs, err := TrainClassifier("quadrants", quadrants(200, 1), quadrants(100, 2), 1, 7, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	beforeClassifierLock = func() {
		if err := theirs.Save(filepath.Join(dir, "classifier-v1.gob")); err != nil {
			t.Fatal(err)
		}
	}
	defer func() { beforeClassifierLock = func() {} }()
	tr := func() (*data.Dataset, error) { t.Fatal("trained again"); return nil, nil }
	clf, err := classifier(Config{Dataset: "quadrants", DataDir: dir, Epochs: 1, Log: io.Discard}, quadrants(100, 2), tr)
	if err != nil || clf.Accuracy != theirs.Accuracy {
		t.Fatalf("%v, accuracy %v (theirs %v)", err, clf.Accuracy, theirs.Accuracy)
	}
}

// TestEvaluateMisuse: nil sets or classifier and too few samples are
// ErrConfig (they panicked, or said "moments of 0 values").
func TestEvaluateMisuse(t *testing.T) {
	test, train := quadrants(10, 1), quadrants(10, 2)
	clf := &Classifier{Channels: 1, Height: 8, Width: 8}
	for name, err := range map[string]error{
		"nil classifier": func() error { _, err := Evaluate(nil, make([]float32, 128), 2, test, train, 1); return err }(),
		"nil test set":   func() error { _, err := Evaluate(clf, make([]float32, 128), 2, nil, train, 1); return err }(),
		"no samples":     func() error { _, err := Evaluate(clf, nil, 0, test, train, 1); return err }(),
		"short samples":  func() error { _, err := Evaluate(clf, make([]float32, 64), 2, test, train, 1); return err }(),
		"folder, nil":    func() error { _, _, err := FolderStats(make([]float32, 128), 2, nil, 1); return err }(),
	} {
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
