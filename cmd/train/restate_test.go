package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/train"
)

// TestRestatedFlagsOnResume: a resume that gives a flag of its own run is
// checked against the checkpoint, not against the combinations of the
// preset the command line defaults to: a ladder run resumed with its own
// -levels was refused as "-sde ve is continuous in time". Another value is
// still refused, as contradicting the checkpoint.
func TestRestatedFlagsOnResume(t *testing.T) {
	pics := greyPictures(t, 4)
	// An EDM run resumed with its own -sigma-data, without -precond edm
	// (the smoke preset's is ncsnv2).
	edm := filepath.Join(t.TempDir(), "edm")
	smoke := []string{"-dataset", "folder:" + pics, "-grey", "-preset", "smoke", "-batch", "4", "-ckpt-dir", edm, "-data-dir", t.TempDir()}
	var eout bytes.Buffer
	if code := run(append(smoke, "-precond", "edm", "-sigma-data", "0.5", "-steps", "2"), &eout); code != 0 {
		t.Fatalf("the EDM run: exit %d:\n%s", code, eout.String())
	}
	eout.Reset()
	if code := run(append(smoke, "-sigma-data", "0.5", "-steps", "3"), &eout); code != 0 || !strings.Contains(eout.String(), "resuming from") {
		t.Errorf("the EDM run resumed with its own -sigma-data: exit %d:\n%s", code, eout.String())
	}

	// A VP run cannot be EDM's: -sigma-data on its resume is refused as it
	// was, naming -precond edm (not as a bad config of a -precond edm that
	// was never given).
	vp := filepath.Join(t.TempDir(), "vp")
	vpArgs := []string{"-dataset", "folder:" + pics, "-grey", "-preset", "smoke", "-batch", "4", "-sde", "vp", "-ckpt-dir", vp, "-data-dir", t.TempDir()}
	eout.Reset()
	if code := run(append(vpArgs, "-steps", "2"), &eout); code != 0 {
		t.Fatalf("the VP run: exit %d:\n%s", code, eout.String())
	}
	eout.Reset()
	if code := run(append(vpArgs, "-sigma-data", "0.5", "-steps", "3"), &eout); code != 2 || !strings.Contains(eout.String(), "-sigma-data goes with -precond edm") {
		t.Errorf("a VP run resumed with -sigma-data: exit %d:\n%s", code, eout.String())
	}

	dir := filepath.Join(t.TempDir(), "run")
	base := []string{"-dataset", "folder:" + pics, "-grey", "-base", "4", "-mult", "1,2", "-batch", "4", "-ckpt-dir", dir, "-data-dir", t.TempDir()}
	var out bytes.Buffer
	if code := run(append(base, "-sigmas-from-data=false", "-sde", "ncsn", "-levels", "12", "-steps", "2"), &out); code != 0 {
		t.Fatalf("the ladder run: exit %d:\n%s", code, out.String())
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-levels", "12", "-steps", "3"}, 0, "resuming from"},
		{[]string{"-levels", "10", "-steps", "4"}, 1, "was trained with -levels 12; -levels 10 contradicts it"},
		{[]string{"-sigma-dist", "lognormal", "-steps", "4"}, 1, "-sigma-dist lognormal"},
	} {
		out.Reset()
		if code := run(append(append([]string{}, base...), c.args...), &out); code != c.code || !strings.Contains(out.String(), c.want) {
			t.Errorf("%v: exit %d, want %d and %q:\n%s", c.args, code, c.code, c.want, out.String())
		}
	}
	// Without -dataset (the run's own is taken), its folder flags are
	// compared too: they were refused as "for folder datasets" by the
	// default dataset's preset.
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-grey", "-steps", "5"}, 0, "resuming from"},
		{[]string{"-size", "32", "-steps", "6"}, 0, "resuming from"},
		{[]string{"-flip", "-steps", "7"}, 1, "was trained with -flip=false; -flip=true contradicts it"},
	} {
		out.Reset()
		args := append([]string{"-ckpt-dir", dir, "-data-dir", t.TempDir()}, c.args...)
		if code := run(args, &out); code != c.code || !strings.Contains(out.String(), c.want) {
			t.Errorf("%v: exit %d, want %d and %q:\n%s", args, code, c.code, c.want, out.String())
		}
	}
	// A run of a built-in dataset given -grey is refused as before: the
	// flag is for folder datasets (not "was trained with -grey=false",
	// whose -fresh would not help).
	mnist := filepath.Join(t.TempDir(), "mnist")
	c := train.Config{Dataset: "mnist", Preset: "test",
		Model: model.Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4},
		Steps: 1, Batch: 2, LR: 1e-3, EMADecay: 0.9, SigmaMax: 1, SigmaMin: 0.05, Levels: 3, SaveEvery: 1, CkptDir: mnist,
		Data: &data.Dataset{Name: "mnist", N: 4, Channels: 1, Height: 8, Width: 8, Images: make([]float32, 4*64)}}
	if _, err := train.Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"-ckpt-dir", mnist, "-grey", "-steps", "2"}, &out); code != 2 || !strings.Contains(out.String(), "-size and -grey are for folder datasets") {
		t.Errorf("an MNIST run resumed with -grey: exit %d:\n%s", code, out.String())
	}
	// A CIFAR-10 run resumed without -dataset, restating -flip: compared
	// with the checkpoint, not refused as MNIST's flag.
	cifar := filepath.Join(t.TempDir(), "cifar")
	c.Dataset, c.CkptDir, c.Model.Channels = "cifar10", cifar, 3
	c.Data = &data.Dataset{Name: "cifar10", N: 4, Channels: 3, Height: 8, Width: 8, Images: make([]float32, 4*3*64)}
	if _, err := train.Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"-ckpt-dir", cifar, "-flip", "-steps", "2"}, &out); code == 0 || strings.Contains(out.String(), "-flip is for") || !strings.Contains(out.String(), "flip") {
		t.Errorf("a CIFAR-10 run without flips resumed with -flip: exit %d:\n%s", code, out.String())
	}
}

// greyPictures writes n different 32×32 grey PNGs into a new folder (a
// folder dataset) and returns its path.
func greyPictures(t *testing.T, n int) string {
	t.Helper()
	pics := filepath.Join(t.TempDir(), "pics")
	if err := os.MkdirAll(pics, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		im := image.NewGray(image.Rect(0, 0, 32, 32))
		for p := range im.Pix {
			im.Pix[p] = uint8(p*7 + i*31)
		}
		im.Set(i, i, color.Gray{255})
		var b bytes.Buffer
		png.Encode(&b, im)
		if err := os.WriteFile(filepath.Join(pics, fmt.Sprintf("%d.png", i)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return pics
}
