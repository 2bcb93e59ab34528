package generate

import (
	"context"
	"errors"
	"image"
	_ "image/gif" // imageSize reads the film
	_ "image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/sde"
	"github.com/ncsn-go/ncsn/train"
)

// tinyClassifier trains a tiny 8×8 grey noise-conditional classifier of 3
// classes two steps on the named process, and returns its folder.
func tinyClassifier(t *testing.T, process, dataset string) string {
	t.Helper()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(3, 4))
	ds := &data.Dataset{Name: dataset, N: 16, Channels: 1, Height: 8, Width: 8, Images: make([]float32, 16*64), Labels: make([]uint8, 16)}
	for i := range ds.Images {
		ds.Images[i] = float32(r.Float64())
	}
	for i := range ds.Labels {
		ds.Labels[i] = uint8(i % 3)
	}
	cfg := train.Config{
		Dataset: dataset, Preset: "test",
		Model: model.Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4},
		Steps: 2, Batch: 4, LR: 1e-3, EMADecay: 0.9, SigmaMax: 1, SigmaMin: 0.05, Levels: 3, SaveEvery: 1,
		CkptDir: dir, Data: ds,
	}
	if err := cfg.UseSDE(process); err != nil {
		t.Fatal(err)
	}
	if err := cfg.UseClassifier(); err != nil {
		t.Fatal(err)
	}
	cfg.Model.Classes = 3
	if _, err := train.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Class-conditional sampling: N samples of each class asked for, in order,
// one grid row per class; the same seed gives the same bits; w = 0 is the
// unguided sampler exactly, w > 0 changes the samples.
func TestClassGuidance(t *testing.T) {
	for _, c := range []struct{ process, sampler string }{{"ncsn", "ald"}, {"vp", "pc"}, {"vp", "ode"}} {
		ck, _ := tinyRun(t, c.process)
		clf := tinyClassifier(t, c.process, "mnist")
		st := loadLatest(t, ck)
		base := onlyItsFlags(c.process, Config{N: 3, Seed: 2, StepsPerLevel: 2, Steps: 30, Denoise: true, Sampler: c.sampler, Classifier: clf})
		draw := func(class string, w float64) *Result {
			t.Helper()
			cfg := base
			cfg.Class, cfg.Guidance = class, w
			res, err := Draw(st, cfg)
			if err != nil {
				t.Fatalf("%s %s -class %s: %v", c.process, c.sampler, class, err)
			}
			return res
		}
		g := draw("0,2", 2)
		if !slices.Equal(g.Labels, []int{0, 0, 0, 2, 2, 2}) || g.Cols != 3 || len(g.Images) != 6*64 {
			t.Fatalf("%s: labels %v, %d columns, %d values", c.process, g.Labels, g.Cols, len(g.Images))
		}
		if again := draw("0,2", 2); !slices.Equal(again.Images, g.Images) {
			t.Fatalf("%s: the same seed drew other samples", c.process)
		}
		// The unguided run at the guided run's batch (c.N per class, so 3
		// here): the last bits may depend on the batch (OpenBLAS's Haswell
		// kernels, which it takes on AMD's Zen, round a product's row
		// otherwise when the product has another number of rows), and
		// w = 0 is to be exactly the unguided sampler.
		plain := base
		plain.N, plain.Batch = 6, base.N
		unguided, err := Draw(st, plain)
		if err != nil {
			t.Fatal(err)
		}
		if w0 := draw("0,2", 0); !slices.Equal(w0.Images, unguided.Images) {
			t.Fatalf("%s: w = 0 differs from the unguided sampler", c.process)
		}
		if slices.Equal(g.Images, unguided.Images) {
			t.Fatalf("%s: w = 2 left the samples unchanged", c.process)
		}
		if all := draw("all", 1); len(all.Labels) != 9 || all.Labels[8] != 2 {
			t.Fatalf("%s: -class all gave labels %v", c.process, all.Labels)
		}
	}
	// The grid: one row per class; and so the film's frames (they wrapped
	// the classes across a square grid).
	ck, _ := tinyRun(t, "ncsn")
	out := filepath.Join(t.TempDir(), "g.png")
	film := filepath.Join(t.TempDir(), "g.gif")
	if _, err := Run(Config{Ckpt: ck, Out: out, GIF: film, N: 2, StepsPerLevel: 1, Class: "0,1,2", Guidance: 1, Classifier: tinyClassifier(t, "ncsn", "mnist")}); err != nil {
		t.Fatal(err)
	}
	if w, h := imageSize(t, film); w != 2*10+2 || h != 3*10+2 { // a square grid of 6: 3 columns
		t.Fatalf("film %d×%d, want 2 columns and 3 rows of 8×8 tiles", w, h)
	}
	if w, h := imageSize(t, out); w != 2*10+2 || h != 3*10+2 {
		t.Fatalf("grid %d×%d, want 2 columns and 3 rows of 8×8 tiles", w, h)
	}
	// One class: a square grid (-class 7 -n 64 was a strip of 64).
	one := filepath.Join(t.TempDir(), "one.png")
	if _, err := Run(Config{Ckpt: ck, Out: one, N: 4, StepsPerLevel: 1, Class: "1", Guidance: 1, Classifier: tinyClassifier(t, "ncsn", "mnist")}); err != nil {
		t.Fatal(err)
	}
	if w, h := imageSize(t, one); w != 2*10+2 || h != 2*10+2 {
		t.Fatalf("one class of 4: %d×%d, want 2 columns and 2 rows", w, h)
	}
}

// imageSize is the width and height of the PNG or GIF at path.
func imageSize(t *testing.T, path string) (int, int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cfg.Width, cfg.Height
}

func TestClassGuidanceErrors(t *testing.T) {
	ck, _ := tinyRun(t, "ncsn")
	st := loadLatest(t, ck)
	clf := tinyClassifier(t, "ncsn", "mnist")
	vpClf := tinyClassifier(t, "vp", "mnist")
	fashion := tinyClassifier(t, "ncsn", "fashion")
	inPath := filepath.Join(t.TempDir(), "none.png")
	cut := filepath.Join(t.TempDir(), "cut.ckpt") // a classifier's checkpoint cut short
	if p, err := checkpoint.Resolve(clf); err != nil {
		t.Fatal(err)
	} else if b, err := os.ReadFile(p); err != nil {
		t.Fatal(err)
	} else {
		os.WriteFile(cut, b[:len(b)/2], 0o644)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Class: "1", Classifier: cut}, "generate: -classifier: " + cut}, // the flag was not named
		{Config{Class: "3", Classifier: clf}, "out of range"},
		{Config{Class: "-1", Classifier: clf}, "classes are numbered from 0"},
		{Config{Class: "seven", Classifier: clf}, "not a class number"},
		{Config{Class: "seven", Classifier: filepath.Join(t.TempDir(), "missing")}, "not a class number"}, // its form before the classifier
		{Config{Class: "1", Classifier: fashion}, "trained on fashion"},
		{Config{Class: "1", Classifier: vpClf}, "does not fit the model's noise"},
		{Config{Class: "1", Classifier: ck}, "score model, not a classifier"},
		{Config{Class: "1", Classifier: filepath.Join(t.TempDir(), "missing")}, "cmd/train -dataset mnist -classifier"},
		{Config{Class: "1", Classifier: clf, Guidance: -1}, "-guidance"},
		{Config{Class: "1", Classifier: clf, Inpaint: inPath, Mask: "top"}, "one at a time"},
		{Config{Guidance: 3}, "-guidance goes with -class"},
	} {
		c.cfg.N, c.cfg.StepsPerLevel = 2, 1
		_, err := Draw(st, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v, want a one-line error with %q", c.cfg, err, c.want)
		}
	}
	// A film a GIF cannot hold (a row of 6554 8×8 samples of a class: 65542
	// pixels wide; MNIST's 2185) is refused before the drawing, which it
	// failed after, losing the grid too; one sample fewer fits.
	wide := Config{Class: "0,1", Classifier: clf, N: 6554, StepsPerLevel: 1, GIF: filepath.Join(t.TempDir(), "film.gif")}
	for name, check := range map[string]func(Config) error{
		"Check": func(c Config) error { return Check(st, c) },
		"Draw":  func(c Config) error { _, err := Draw(st, c); return err },
	} {
		if err := check(wide); err == nil || !strings.Contains(err.Error(), "would be 65542×22 pixels; a GIF is at most 65535 on a side") {
			t.Errorf("%s: a film too wide for a GIF: %v", name, err)
		}
	}
	if err := filmFits(Config{GIF: "f.gif", filmCols: filmColumns(6553, 13106, true)}, st, 13106); err != nil {
		t.Errorf("a film 65532 pixels wide: %v", err)
	}
	// A classifier's checkpoint is not a score model.
	_, err := Draw(loadLatest(t, clf), Config{N: 2, StepsPerLevel: 1})
	if err == nil || !strings.Contains(err.Error(), "noise-conditional classifier, not a score model") {
		t.Errorf("sampling from a classifier: %v", err)
	}
}

// TestClassifierCommand: the hint names a classifier that fits the model:
// its process and, for σ processes, a σ_max that covers the model's exactly
// (a VP model's hint trained one on the default VE process, which -class
// then refused).
func TestClassifierCommand(t *testing.T) {
	for _, c := range []struct {
		spec sde.Spec
		want string
	}{
		{sde.Spec{Name: "vp", BetaMin: 0.1, BetaMax: 20}, "go run ./cmd/train -dataset mnist -classifier -sde vp"},
		{sde.Spec{Name: "subvp", BetaMin: 0.1, BetaMax: 20}, "go run ./cmd/train -dataset mnist -classifier -sde subvp"},
		{sde.Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 13.756341}, "go run ./cmd/train -dataset mnist -classifier -sde ve -sigma-max 13.756341"},
		{sde.Spec{Name: "ncsn", Sigmas: []float64{5, 1, 0.01}}, "go run ./cmd/train -dataset mnist -classifier -sde ncsn -sigma-max 5"},
	} {
		if got := classifierCommand(&checkpoint.State{Dataset: "mnist", Process: c.spec}, DefaultClassifier); got != c.want {
			t.Errorf("%s: %q, want %q", c.spec.Name, got, c.want)
		}
	}
	// Where the default folder holds another classifier, the command trains
	// into a folder of its own and says to give it (it resumed the unfit
	// one, and cmd/train refused).
	vp := &checkpoint.State{Dataset: "mnist", Process: sde.Spec{Name: "vp", BetaMin: 0.1, BetaMax: 20}}
	if got, want := classifierCommand(vp, otherClassifierDir(vp)), "go run ./cmd/train -dataset mnist -classifier -sde vp -ckpt-dir checkpoints/classifier-vp, then -classifier checkpoints/classifier-vp"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// A folder model has no labels: -class is refused at once.
	if _, _, _, err := classifierFor(&checkpoint.State{Dataset: data.FolderPrefix + "/x"}, Config{Class: "3"}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "folder dataset has no labels") {
		t.Errorf("-class on a folder model: %v", err)
	}
}
