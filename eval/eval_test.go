package eval

import (
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/sample"
)

// TestGridRoundTrip: a grid written by sample.Grid is cut back into the
// same images (to 8-bit precision), without the blank tiles of its last row.
func TestGridRoundTrip(t *testing.T) {
	shape := &data.Dataset{Channels: 1, Height: 4, Width: 3}
	n := 5 // a 3×2 grid with one blank tile
	vals := make([]float64, n*12)
	for i := range vals {
		vals[i] = float64((i*37)%255+1) / 255
	}
	img, err := sample.Grid(vals, n, 1, 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "grid.png")
	f, _ := os.Create(p)
	png.Encode(f, img)
	f.Close()
	got, m, err := loadSamples(Config{Samples: p}, shape)
	if err != nil {
		t.Fatal(err)
	}
	if m != n {
		t.Fatalf("%d images, want %d", m, n)
	}
	for i := range vals {
		if d := float64(got[i]) - vals[i]; d > 1.0/255 || d < -1.0/255 {
			t.Fatalf("value %d: %g, want %g", i, got[i], vals[i])
		}
	}
	// A PNG that is no grid of this shape.
	odd := filepath.Join(dir, "odd.png")
	f, _ = os.Create(odd)
	png.Encode(f, image.NewGray(image.Rect(0, 0, 7, 7)))
	f.Close()
	if _, _, err := loadSamples(Config{Samples: odd}, shape); err == nil || !strings.Contains(err.Error(), "not a grid") {
		t.Fatalf("odd PNG: %v", err)
	}
}

func TestPNGFolder(t *testing.T) {
	shape := &data.Dataset{Channels: 3, Height: 2, Width: 2}
	dir := t.TempDir()
	for k := 0; k < 3; k++ {
		img := image.NewRGBA(image.Rect(0, 0, 2, 2))
		img.Set(1, 0, color.RGBA{uint8(10 * k), 100, 200, 255})
		f, _ := os.Create(filepath.Join(dir, "s"+string(rune('a'+k))+".png"))
		png.Encode(f, img)
		f.Close()
	}
	got, n, err := loadSamples(Config{Samples: dir}, shape)
	if err != nil || n != 3 {
		t.Fatalf("%d images: %v", n, err)
	}
	// Image 2, pixel (1,0): R plane index 1, G plane 4+1, B plane 8+1.
	if got[2*12+1] != 20.0/255 || got[2*12+5] != 100.0/255 || got[2*12+9] != 200.0/255 {
		t.Fatalf("pixels %v", got[24:36])
	}
	big := filepath.Join(dir, "big.png")
	f, _ := os.Create(big)
	png.Encode(f, image.NewRGBA(image.Rect(0, 0, 3, 3)))
	f.Close()
	if _, _, err := loadSamples(Config{Samples: dir}, shape); err == nil || !strings.Contains(err.Error(), "big.png") {
		t.Fatalf("wrong-size PNG: %v", err)
	}
	if _, _, err := loadSamples(Config{Samples: filepath.Join(dir, "none")}, shape); err == nil {
		t.Fatal("missing path accepted")
	}
	os.Remove(big)
	// An upper-case extension is a PNG too (S0.PNG was passed over).
	os.Rename(filepath.Join(dir, "sa.png"), filepath.Join(dir, "SA.PNG"))
	if _, n, err := loadSamples(Config{Samples: dir}, shape); err != nil || n != 3 {
		t.Fatalf("with SA.PNG: %d images, %v", n, err)
	}
	// Colour samples against grey images are refused (they were read by
	// their red channel alone).
	grey := &data.Dataset{Name: "mnist", Channels: 1, Height: 2, Width: 2}
	if _, _, err := loadSamples(Config{Samples: dir}, grey); err == nil || !strings.Contains(err.Error(), "is in colour") {
		t.Fatalf("colour samples for grey images: %v", err)
	}
	// Grey samples against colour images likewise (CIFAR-10 scored a grey
	// folder model's samples without a word); black and white alone is
	// not grey (a colour model's collapsed samples).
	greys := t.TempDir()
	for k, v := range []uint8{0, 128} {
		img := image.NewRGBA(image.Rect(0, 0, 2, 2))
		img.Set(1, 0, color.RGBA{v, v, v, 255})
		f, _ := os.Create(filepath.Join(greys, "g"+string(rune('a'+k))+".png"))
		png.Encode(f, img)
		f.Close()
	}
	cifar := &data.Dataset{Name: "cifar10", Channels: 3, Height: 2, Width: 2}
	if _, _, err := loadSamples(Config{Samples: greys}, cifar); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "the samples in "+greys+" are grey (R = G = B at every pixel), and the cifar10 images are in colour") {
		t.Fatalf("grey samples for colour images: %v", err)
	}
	f, _ = os.Create(filepath.Join(greys, "gb.png"))
	png.Encode(f, image.NewRGBA(image.Rect(0, 0, 2, 2)))
	f.Close()
	if _, n, err := loadSamples(Config{Samples: greys}, cifar); err != nil || n != 2 {
		t.Fatalf("black samples for colour images: %d, %v", n, err)
	}
}

// TestSampleSecondsKept: samples drawn in under 0.05 s still report
// sample_seconds (0), which the table scripts read; it was dropped as an
// empty value. Samples not drawn here have none.
func TestSampleSecondsKept(t *testing.T) {
	zero := 0.0
	for _, c := range []struct {
		json string
		want bool
	}{
		{(&Result{Sampler: "ald", SampleSeconds: &zero}).JSON(), true},
		{(&FolderResult{Sampler: "ald", SampleSeconds: &zero}).JSON(), true},
		{(&Result{}).JSON(), false},
	} {
		if got := strings.Contains(c.json, `"sample_seconds":0`); got != c.want {
			t.Errorf("%s: sample_seconds there %v, want %v", c.json, got, c.want)
		}
	}
	var b strings.Builder
	(&Result{Sampler: "ald", Evals: 3}).WriteTable(&b) // decoded from a file that lacks it
	if !strings.Contains(b.String(), "ald, 3 network evaluations, 0.0 s") {
		t.Errorf("printed %q", b.String())
	}
}

// TestSafetensorsAsSamples: cmd/export's safetensors file given as
// -samples says how to import it (it was read as a PNG: "png: invalid
// format", or with -n "is not one").
func TestSafetensorsAsSamples(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.safetensors")
	hdr := `{"__metadata__":{}}`
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	os.WriteFile(p, append(b, hdr...), 0o644)
	for _, c := range []Config{{Dataset: "mnist", Samples: p}, {Dataset: "mnist", Samples: p, N: 2, NSet: true}} {
		_, err := Run(c)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "is a safetensors file (cmd/export's): import it into a checkpoint folder first") {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

// TestStaleLatestIsACheckpointFolder: a checkpoint folder whose `latest`
// names a file that is gone is still a checkpoint folder, and loading it
// says what is wrong with `latest`; eval once took it for a folder of PNGs
// and said it held none. A folder of PNGs, or an empty one, is not.
func TestStaleLatestIsACheckpointFolder(t *testing.T) {
	stale, pngs, empty := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(stale, "latest"), []byte("ckpt-00000400.ckpt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pngs, "a.png"), []byte("\x89PNG"), 0o644); err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]bool{stale: true, pngs: false, empty: false} {
		if got := isCheckpoint(dir); got != want {
			t.Errorf("isCheckpoint(%s) = %v, want %v", dir, got, want)
		}
	}
	_, _, err := checkpoint.LoadFrom(stale)
	if !errors.Is(err, checkpoint.ErrCorrupt) || !strings.Contains(err.Error(), "ckpt-00000400.ckpt, which is not there") {
		t.Fatalf("loading the stale folder: %v", err)
	}
}

// TestSampleSizeBeforeData: samples of another size than the dataset's are
// refused before its test set is fetched (cmd/eval -dataset cifar10 with
// MNIST's samples fetched CIFAR-10's 163 MB first); the data folder stays
// empty.
func TestSampleSizeBeforeData(t *testing.T) {
	dir := t.TempDir()
	vals := make([]float64, 4*28*28)
	for i := range vals {
		vals[i] = 0.5
	}
	img, err := sample.Grid(vals, 4, 1, 28, 28)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "mnist-grid.png")
	f, _ := os.Create(p)
	png.Encode(f, img)
	f.Close()
	empty := filepath.Join(dir, "cifar10")
	_, err = Run(Config{Dataset: "cifar10", Samples: p, DataDir: empty})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "not a grid of 32×32 tiles") {
		t.Fatalf("MNIST's grid as CIFAR-10's samples: %v", err)
	}
	if _, err := os.Stat(empty); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the data folder was made: %v", err)
	}
	for _, name := range data.Names {
		if s := data.ShapeOf(name); s == nil || s.Channels*s.Height*s.Width == 0 {
			t.Errorf("%s: no shape", name)
		}
	}
}

// TestSmallNSaysSo: a Fréchet distance from no more samples than features
// says it is mostly small-sample bias (16 noise samples scored below their
// own floor without a word); at 256 it says nothing.
func TestSmallNSaysSo(t *testing.T) {
	for _, n := range []int{16, 256} {
		var b strings.Builder
		(&Result{N: n}).WriteTable(&b)
		var f strings.Builder
		(&FolderResult{N: n, ThumbDim: 192}).WriteTable(&f)
		said := strings.Contains(b.String(), "is not above the 128 features") && strings.Contains(f.String(), "is not above the thumbnails' 192 values")
		if said != (n == 16) {
			t.Errorf("n = %d: said %v:\n%s%s", n, said, b.String(), f.String())
		}
	}
}

// TestPNGNote: a run's folder given to -samples that holds PNGs too says
// they are not scored (new samples were drawn with no word of them).
func TestPNGNote(t *testing.T) {
	dir := t.TempDir()
	var log strings.Builder
	pngNote(Config{Samples: dir, Log: &log})
	if log.Len() != 0 {
		t.Fatalf("no PNGs: %q", log.String())
	}
	os.WriteFile(filepath.Join(dir, "grid.PNG"), []byte("x"), 0o644)
	pngNote(Config{Samples: dir, Log: &log})
	if !strings.Contains(log.String(), "the PNGs there (1) are not scored") {
		t.Fatalf("log %q", log.String())
	}
}

// TestDrawConfigPassesRawAndDenoise: -raw and -denoise=false reach the
// sampler (cmd/eval had neither, so its scores of README's -raw and
// no-denoise figures could not be made); the zero Config denoises.
func TestDrawConfigPassesRawAndDenoise(t *testing.T) {
	if g := (Config{}).drawConfig(); !g.Denoise || g.Raw || g.DenoiseSet {
		t.Errorf("the zero Config draws with %+v", g)
	}
	if g := (Config{Raw: true, NoDenoise: true, DenoiseSet: true}).drawConfig(); g.Denoise || !g.Raw || !g.DenoiseSet {
		t.Errorf("-raw -denoise=false draws with %+v", g)
	}
}

// TestClassStats: shares of the samples are at most 1 and exact where
// counted (9 confident samples gave conf_ge_0_9 1.0000000000000002, 300
// gave 0.7033333333333325 for 211/300).
func TestClassStats(t *testing.T) {
	for _, tc := range []struct{ n, sure int }{{9, 9}, {300, 211}, {10, 10}} {
		probs := make([]float64, 10*tc.n)
		for i := range tc.n {
			top := 1.0
			if i >= tc.sure {
				top = 0.5
			}
			probs[i*10+i%10] = top
			probs[i*10+(i+1)%10] = 1 - top
		}
		hist, mean, share, entropy := classStats(probs, tc.n)
		if share != float64(tc.sure)/float64(tc.n) || mean > 1 {
			t.Errorf("%d of %d: conf ≥ 0.9 share %v, mean %v", tc.sure, tc.n, share, mean)
		}
		if tc.n == 10 && (entropy != math.Log2(10) || hist[3] != 1 || mean != 1) {
			t.Errorf("one of each class: entropy %v, histogram %v, mean %v", entropy, hist, mean)
		}
	}
}
