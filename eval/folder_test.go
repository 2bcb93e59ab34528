package eval

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/generate"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/train"
)

// writePictures writes n PNGs of coloured squares on grey at odd sizes,
// plus a text file and a corrupt PNG.
func writePictures(t *testing.T, dir string, n, from int) {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	for i := from; i < from+n; i++ {
		img := image.NewRGBA(image.Rect(0, 0, 36+i%7, 30+i%5))
		c := color.RGBA{uint8(60 * (i % 4)), uint8(200 - 50*(i%3)), uint8(40 * (i % 6)), 255}
		for y := 0; y < img.Bounds().Dy(); y++ {
			for x := 0; x < img.Bounds().Dx(); x++ {
				if x > 8+i%5 && x < 24 && y > 6 && y < 20+i%4 {
					img.Set(x, y, c)
				} else {
					img.Set(x, y, color.RGBA{90, 90, 90, 255})
				}
			}
		}
		var buf bytes.Buffer
		png.Encode(&buf, img)
		if err := os.WriteFile(filepath.Join(dir, "p"+string(rune('a'+i/10))+string(rune('0'+i%10))+".png"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "readme.txt"), []byte("hi"), 0o644)
	os.WriteFile(filepath.Join(dir, "broken.png"), []byte("\x89PNG\r\n\x1a\nbroken"), 0o644)
}

// A folder of pictures trains a few steps at 32 (flips on), resumes, says
// when the folder changed, refuses another size on resume, samples, and is
// evaluated by nearest neighbours; at 64 it trains with a fourth level.
func TestFolderEndToEnd(t *testing.T) {
	dir := t.TempDir()
	pics := filepath.Join(dir, "pics")
	writePictures(t, pics, 20, 0)
	var log bytes.Buffer
	cfg := func(size int, steps int, set ...string) train.Config {
		c, err := train.Preset("smoke", data.FolderPrefix+pics)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.UseImages(size, false, true); err != nil {
			t.Fatal(err)
		}
		c.Steps, c.Batch, c.SaveEvery = steps, 8, 2
		c.DataDir, c.CkptDir = filepath.Join(dir, "cache"), filepath.Join(dir, "run"+string(rune('0'+size/32)))
		c.Log = &log
		c.Set = map[string]bool{}
		for _, s := range set {
			c.Set[s] = true
		}
		return c
	}
	if _, err := train.Run(context.Background(), cfg(32, 4)); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for _, w := range []string{"20 images decoded, 1 file skipped", "skipping " + filepath.Join(pics, "broken.png"), "σ from the data"} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("training log lacks %q:\n%s", w, log.String())
		}
	}
	writePictures(t, pics, 3, 20) // the folder grows
	log.Reset()
	if _, err := train.Run(context.Background(), cfg(32, 6, "steps")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "has changed since the checkpoint resumed from was saved (20 images then, 23 now)") {
		t.Errorf("resume on a changed folder did not say so:\n%s", log.String())
	}
	other := cfg(64, 8, "size")
	other.CkptDir = filepath.Join(dir, "run1")
	if _, err := train.Run(context.Background(), other); !errors.Is(err, train.ErrMismatch) || !strings.Contains(err.Error(), "-size") {
		t.Errorf("resuming at another size: %v", err)
	}
	path, _ := checkpoint.Latest(filepath.Join(dir, "run1"))
	st, err := checkpoint.Load(path)
	if err != nil || st.Step != 6 || st.Dataset != data.FolderPrefix+pics || st.Model.Height != 32 || st.Model.Channels != 3 {
		t.Fatalf("checkpoint: %v, %+v", err, st)
	}
	res, err := generate.Draw(st, generate.Config{N: 4, Seed: 1, StepsPerLevel: 1, Denoise: true})
	if err != nil || len(res.Images) != 4*3*32*32 {
		t.Fatalf("sampling: %v", err)
	}
	nnPath := filepath.Join(dir, "nearest.png")
	fr, err := Folder(Config{Dataset: data.FolderPrefix + pics, DataDir: filepath.Join(dir, "cache"), Samples: filepath.Join(dir, "run1"),
		N: 4, StepsPerLevel: 1, NNOut: nnPath})
	if err != nil {
		t.Fatal(err)
	}
	if fr.N != 4 || fr.Images != 23 || !(fr.NNMean > 0) || !(fr.TrainNN > 0) || !(fr.FD >= 0) || !(fr.FDFloor >= 0) {
		t.Fatalf("result %+v", fr)
	}
	if fi, err := os.Stat(nnPath); err != nil || fi.Size() == 0 {
		t.Fatalf("nearest-neighbour picture: %v", err)
	}
	// -size or -grey that contradict the checkpoint's images are refused
	// (they were passed over).
	for _, tc := range []struct {
		bad  Config
		want string
	}{
		{Config{Size: 64}, "-size 64: "},
		{Config{Grey: true}, "-grey=true: "},
		{Config{Size: 64, Grey: true, GreySet: true}, "-size 64, -grey=true: "},
	} {
		bad := tc.bad
		bad.Dataset, bad.DataDir, bad.Samples, bad.N, bad.StepsPerLevel = data.FolderPrefix+pics, filepath.Join(dir, "cache"), filepath.Join(dir, "run1"), 4, 1
		if _, err := Folder(bad); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "drop the flag") {
			t.Errorf("-size %d -grey %v on a 32×32 colour checkpoint: %v", bad.Size, bad.Grey, err)
		}
	}
	// Nothing is written into the image folder: a picture or samples there
	// would join the training images (cmd/eval's default -nn-out, run from
	// inside it, did).
	inside := filepath.Join(pics, "nearest.png")
	if _, err := Folder(Config{Dataset: data.FolderPrefix + pics, DataDir: filepath.Join(dir, "cache"), Samples: filepath.Join(dir, "run1"),
		N: 4, StepsPerLevel: 1, NNOut: inside}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "-nn-out "+inside+" is inside the image folder") {
		t.Errorf("-nn-out in the image folder: %v", err)
	}
	// Nor among the PNG samples scored (a sample was replaced by the
	// picture, and the folder then no longer scored).
	samples := filepath.Join(dir, "samples")
	os.Mkdir(samples, 0o755)
	some, _ := filepath.Glob(filepath.Join(pics, "*.png"))
	for i, p := range some[:2] {
		b, _ := os.ReadFile(p)
		os.WriteFile(filepath.Join(samples, fmt.Sprintf("s%d.png", i)), b, 0o644)
	}
	s0, _ := os.ReadFile(filepath.Join(samples, "s0.png"))
	for _, c := range []struct{ samples, out string }{
		{samples, filepath.Join(samples, "s0.png")}, {samples, filepath.Join(samples, "new.png")},
		{filepath.Join(samples, "s1.png"), filepath.Join(samples, "s1.png")},
	} {
		if _, err := Folder(Config{Dataset: data.FolderPrefix + pics, DataDir: filepath.Join(dir, "cache"), Samples: c.samples, NNOut: c.out}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "is among the -samples") {
			t.Errorf("-samples %s, -nn-out %s: %v", c.samples, c.out, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(samples, "s0.png")); !bytes.Equal(b, s0) {
		t.Error("a sample was replaced")
	}
	// Grey samples against the folder read in colour: refused, naming -grey
	// (they were scored against colour thumbnails).
	greys := filepath.Join(dir, "greys")
	os.Mkdir(greys, 0o755)
	for i := range 2 {
		g := image.NewGray(image.Rect(0, 0, 32, 32))
		for j := range g.Pix {
			g.Pix[j] = uint8(40*i + j%200)
		}
		var b bytes.Buffer
		png.Encode(&b, g)
		os.WriteFile(filepath.Join(greys, fmt.Sprintf("g%d.png", i)), b.Bytes(), 0o644)
	}
	if _, err := Folder(Config{Dataset: data.FolderPrefix + pics, DataDir: filepath.Join(dir, "cache"), Samples: greys, NNOut: ""}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "are grey, and the folder is read in colour: give -grey") {
		t.Errorf("grey samples, colour folder: %v", err)
	}
	if _, err := Folder(Config{Dataset: data.FolderPrefix + pics, DataDir: filepath.Join(dir, "cache"), Samples: greys, NNOut: "", Grey: true}); err != nil {
		t.Errorf("grey samples, -grey: %v", err)
	}
	for _, g := range []generate.Config{
		{Out: filepath.Join(pics, "grid.png")}, {OutDir: filepath.Join(pics, "samples")}, {GIF: filepath.Join(pics, "sub", "a.gif")},
	} {
		g.Ckpt, g.N, g.StepsPerLevel = filepath.Join(dir, "run1"), 1, 1
		if _, err := generate.Run(g); !errors.Is(err, generate.ErrConfig) || !strings.Contains(err.Error(), "is inside the image folder "+pics+", which this model was trained on") {
			t.Errorf("%+v: %v", g, err)
		}
	}
	if n, _ := filepath.Glob(filepath.Join(pics, "*")); len(n) != 25 { // 23 pictures, broken.png and readme.txt
		t.Errorf("the image folder holds %d files after the refused writes: %v", len(n), n)
	}
	// The image folder moved: its old path says how to go on, and the new
	// one given by -dataset scores the model (it was refused as "trained on
	// folder:OLD, not folder:NEW": no way to score it).
	moved := pics + "-moved"
	if err := os.Rename(pics, moved); err != nil {
		t.Fatal(err)
	}
	mc := Config{Dataset: data.FolderPrefix + pics, DataDir: filepath.Join(dir, "cache"), Samples: filepath.Join(dir, "run1"), N: 4, StepsPerLevel: 1}
	if _, err := Folder(mc); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "is not there (moved? give -dataset folder:PATH") {
		t.Errorf("the checkpoint's folder moved away: %v", err)
	}
	var note strings.Builder
	mc.Dataset, mc.Log = data.FolderPrefix+moved, &note
	if _, err := Folder(mc); err != nil || !strings.Contains(note.String(), "was trained on "+data.FolderPrefix+pics+"; its samples are scored against "+data.FolderPrefix+moved) {
		t.Errorf("the folder where it is now: %v\n%s", err, note.String())
	}
	if err := os.Rename(moved, pics); err != nil {
		t.Fatal(err)
	}
	// 64×64: four levels.
	c64 := cfg(64, 2)
	c64.CkptDir = filepath.Join(dir, "run64")
	if _, err := train.Run(context.Background(), c64); err != nil {
		t.Fatal(err)
	}
	p64, _ := checkpoint.Latest(c64.CkptDir)
	st64, _ := checkpoint.Load(p64)
	if st64.Model.Height != 64 || len(st64.Model.Mult) != 4 {
		t.Fatalf("64: %+v", st64.Model)
	}
	// Fewer images than the batch: a clear error.
	small := filepath.Join(dir, "small")
	writePictures(t, small, 3, 0)
	cs, _ := train.Preset("smoke", data.FolderPrefix+small)
	cs.UseImages(32, true, false)
	cs.DataDir, cs.CkptDir, cs.Log = filepath.Join(dir, "cache"), filepath.Join(dir, "runs"), &log
	if _, err := train.Run(context.Background(), cs); err == nil || !strings.Contains(err.Error(), "has 3 images, fewer than the batch of 16 (give a smaller -batch, or more images)") {
		t.Fatalf("3 images, batch 16: %v", err)
	}
}

// FolderStats sees copies: samples that are training images have distance
// 0 to their neighbour; noise is far from every image.
func TestFolderStats(t *testing.T) {
	dir := t.TempDir()
	writePictures(t, dir, 12, 0)
	ds, _, err := data.LoadFolder(data.FolderOptions{Path: dir, Size: 32, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	copies := append([]float32(nil), ds.Images[:4*ds.Dim()]...)
	r, nn, err := FolderStats(copies, 4, ds, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.NNMean != 0 || nn[2] != 2 || r.CloseFrac != 1 {
		t.Fatalf("copies: %+v, nearest %v", r, nn)
	}
	noise := make([]float32, 4*ds.Dim())
	for i := range noise {
		noise[i] = float32((i*7919)%101) / 100
	}
	rn, _, err := FolderStats(noise, 4, ds, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !(rn.NNMin > 3*r.TrainNN) || rn.CloseFrac != 0 || !(rn.FD > 10*rn.FDFloor) {
		t.Fatalf("noise: %+v (copies %+v)", rn, r)
	}
	// The yardstick is every training image here (12, fewer than 256),
	// whatever n (it was n of them: 4), and a set with two identical images
	// says so.
	if r.TrainPairs != 12 || rn.TrainPairs != 12 {
		t.Fatalf("yardstick over %d and %d training images, want all 12", r.TrainPairs, rn.TrainPairs)
	}
	dup := *ds
	dup.Images = append([]float32(nil), ds.Images...)
	copy(dup.Image(1), ds.Image(0))
	rd, _, err := FolderStats(noise, 4, &dup, 0)
	var tb strings.Builder
	if err == nil {
		rd.WriteTable(&tb)
	}
	if err != nil || rd.TrainMin != 0 || !strings.Contains(tb.String(), "the training set holds identical images") {
		t.Fatalf("a training set with two identical images: %v\n%s", err, tb.String())
	}
}

// TestContradicting: -size and -grey are compared with a folder model's
// images, -grey=false too where it was given (it was passed over for a grey
// model).
func TestContradicting(t *testing.T) {
	grey := model.Config{Channels: 1, Height: 32, Width: 32}
	colour := model.Config{Channels: 3, Height: 32, Width: 32}
	for _, tc := range []struct {
		c    Config
		m    model.Config
		want string
	}{
		{Config{}, grey, ""},
		{Config{Grey: false, GreySet: true}, grey, "-grey=false"},
		{Config{Grey: false, GreySet: true}, colour, ""},
		{Config{Grey: true}, colour, "-grey=true"},
		{Config{Grey: true, GreySet: true}, grey, ""},
		{Config{Size: 64}, grey, "-size 64"},
		{Config{Size: 32, Grey: true}, colour, "-grey=true"},
	} {
		if got := strings.Join(tc.c.contradicting(tc.m), ", "); got != tc.want {
			t.Errorf("%+v against %d channels: %q, want %q", tc.c, tc.m.Channels, got, tc.want)
		}
	}
}
