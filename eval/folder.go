package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/generate"
	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/model"
)

// FolderResult is what cmd/eval prints for a model of a folder of images,
// which has no labels and so no classifier: how far each sample is from its
// nearest training image (the memorisation check), and a Fréchet distance
// in a feature space that needs no training.
type FolderResult struct {
	N       int    `json:"n"`
	Dataset string `json:"dataset"`
	Source  string `json:"source"`
	Images  int    `json:"training_images"`
	// Root-mean-square pixel distance (values in [0, 1]) from each sample to
	// its nearest training image: mean, median and smallest; and the same
	// for TrainPairs training images (max(n, 256), or all) to their
	// nearest other training image, the yardstick: samples much nearer
	// their neighbours than training images are to each other are copies.
	NNMean     float64 `json:"nn_rms_mean"`
	NNMedian   float64 `json:"nn_rms_median"`
	NNMin      float64 `json:"nn_rms_min"`
	TrainNN    float64 `json:"train_nn_rms_median"`
	CloseFrac  float64 `json:"frac_closer_than_train_min"` // samples nearer their neighbour than any of the TrainPairs training images is to its own
	TrainPairs int     `json:"train_nn_images"`
	TrainMin   float64 `json:"train_nn_rms_min"`
	// Fréchet distance between 8×8 thumbnails (area averages, per channel)
	// of the samples and of the training set, and its floor: n training
	// images against the whole set.
	ThumbDim int     `json:"thumb_dim"` // values per thumbnail: 64 grey, 192 colour
	FD       float64 `json:"fd_thumb8"`
	FDFloor  float64 `json:"fd_thumb8_floor"`
	NNImage  string  `json:"nn_image,omitempty"`
	// How the samples were drawn, when from a checkpoint.
	Sampler       string   `json:"sampler,omitempty"`
	Evals         int      `json:"evals,omitempty"`
	SampleSeconds *float64 `json:"sample_seconds,omitempty"` // nil where not drawn here (0 is kept)
}

// JSON is the result on one line.
func (r *FolderResult) JSON() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// WriteTable writes the result for people.
func (r *FolderResult) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "samples                       %d (%s)\n", r.N, r.Source)
	fmt.Fprintf(w, "training images               %d (%s)\n", r.Images, r.Dataset)
	fmt.Fprintf(w, "nearest training image, RMS   mean %.4f, median %.4f, min %.4f\n", r.NNMean, r.NNMedian, r.NNMin)
	fmt.Fprintf(w, "training images to each other median %.4f over %d of them (samples nearer a training image than the closest training pair: %.1f%%)\n", r.TrainNN, r.TrainPairs, 100*r.CloseFrac)
	if r.TrainMin == 0 {
		fmt.Fprintln(w, "                              (the training set holds identical images: no sample can be nearer than that pair)")
	}
	fmt.Fprintf(w, "Fréchet distance, 8×8 thumbs  %.3f (floor at this n: %.3f)\n", r.FD, r.FDFloor)
	if r.N <= r.ThumbDim {
		fmt.Fprintf(w, "                              n = %d is not above the thumbnails' %d values: the distance is mostly small-sample bias\n", r.N, r.ThumbDim)
	}
	if r.NNImage != "" {
		fmt.Fprintf(w, "samples beside their nearest  %s\n", r.NNImage)
	}
}

// Folder evaluates samples of a model of a folder of images (c.Dataset
// "folder:PATH"); the samples are drawn from a checkpoint or read from PNGs
// as Run does. The image size and colour come from the checkpoint, else
// from c.Size and c.Grey.
func Folder(c Config) (*FolderResult, error) {
	if c.Log == nil {
		c.Log = io.Discard
	}
	path, ok := data.IsFolder(c.Dataset)
	if !ok || path == "" {
		return nil, fmt.Errorf("%w: -dataset %q is not folder:PATH", ErrConfig, c.Dataset)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%w: -dataset: %v", ErrConfig, err)
	}
	c.Dataset = data.FolderPrefix + abs
	if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: the image folder %s is not there (moved? give -dataset folder:PATH where the images are now)", ErrConfig, abs)
	}
	if c.DataDir == "" {
		c.DataDir = data.DefaultCacheDir
	}
	if c.Samples == "" {
		return nil, fmt.Errorf("%w: no -samples given", ErrConfig)
	}
	if _, err := os.Stat(c.Samples); err != nil {
		return nil, fmt.Errorf("eval: -samples: %w", err)
	}
	if err := c.onlyDrawing("", isCheckpoint(c.Samples)); err != nil {
		return nil, err
	}
	if err := fsutil.CheckOutFile("-nn-out", c.NNOut, ".png", fsutil.PNGMagic); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if c.NNOut != "" && data.Within(abs, c.NNOut) {
		return nil, fmt.Errorf("%w: -nn-out %s is inside the image folder %s, where nothing is written (it would join the images, or replace one); give one outside it, or -nn-out \"\" for none", ErrConfig, c.NNOut, abs)
	}
	if c.NNOut != "" && !isCheckpoint(c.Samples) && data.Within(c.Samples, c.NNOut) {
		// The samples scored are PNGs there (or that grid): the picture
		// replaced one of them, or joined them.
		return nil, fmt.Errorf("%w: -nn-out %s is among the -samples %s being scored (it would replace one, or join them); give one outside them, or -nn-out \"\" for none", ErrConfig, c.NNOut, c.Samples)
	}
	return folderEval(c, abs)
}

// contradicting names -size and -grey where they contradict the images of
// the network m (-grey=false too, where it was given).
func (c Config) contradicting(m model.Config) []string {
	var given []string
	if c.Size != 0 && c.Size != m.Height {
		given = append(given, fmt.Sprintf("-size %d", c.Size))
	}
	if (c.Grey || c.GreySet) && c.Grey != (m.Channels == 1) {
		given = append(given, fmt.Sprintf("-grey=%v", c.Grey))
	}
	return given
}

// folderEval scores samples of a model of a folder dataset.
func folderEval(c Config, path string) (*FolderResult, error) {
	size, grey := c.Size, c.Grey
	if isCheckpoint(c.Samples) { // read once: drawOrRead takes it from c
		var err error
		if c.loaded, c.loadedPath, err = checkpoint.LoadFrom(c.Samples); err != nil {
			return nil, err
		}
		pngNote(c)
		st := c.loaded
		if given := c.contradicting(st.Model); len(given) > 0 {
			// They were passed over for the checkpoint's.
			return nil, fmt.Errorf("%w: %s: %s draws %d×%d images in %d channel(s); drop %s (a checkpoint's samples take its own)", ErrConfig, strings.Join(given, ", "), c.Samples, st.Model.Height, st.Model.Width, st.Model.Channels, map[bool]string{true: "the flags", false: "the flag"}[len(given) > 1])
		}
		size, grey = st.Model.Height, st.Model.Channels == 1
		if _, folder := data.IsFolder(st.Dataset); !folder {
			return nil, fmt.Errorf("%w: %s was trained on %s, not %s", ErrConfig, c.Samples, st.Dataset, c.Dataset)
		}
		if st.Dataset != c.Dataset {
			// Another folder, given by -dataset (the images moved, or
			// another set to compare with): it was refused, and a moved
			// folder left the model unscorable.
			fmt.Fprintf(c.Log, "note: %s was trained on %s; its samples are scored against %s, as -dataset says\n", c.Samples, st.Dataset, c.Dataset)
		}
		if err := c.checkDraw(); err != nil { // before the folder is read
			return nil, err
		}
	}
	var pngs *pngSamples // decoded before the folder is read, too
	if !isCheckpoint(c.Samples) {
		var err error
		if pngs, err = readPNGs(c); err != nil {
			return nil, err
		}
		if !grey && pngs.grey() {
			// A grey model's samples scored against colour thumbnails: a
			// Fréchet distance of 74 where -grey gave 24.
			return nil, fmt.Errorf("%w: the samples -samples %s holds are grey, and the folder is read in colour: give -grey (and -size) as the model was trained", ErrConfig, c.Samples)
		}
	}
	if size == 0 {
		size = 32
	}
	train, info, err := data.LoadFolder(data.FolderOptions{Path: path, Size: size, Grey: grey, CacheDir: c.DataDir, Log: c.Log})
	if err != nil {
		return nil, err
	}
	var imgs []float32
	var n int
	var drawn *generate.Result
	if pngs != nil {
		imgs, n, err = pngs.pixels(train)
	} else {
		imgs, n, drawn, err = drawOrRead(c, train)
	}
	if err != nil {
		return nil, err
	}
	res, nn, err := FolderStats(imgs, n, train, c.Seed)
	if err != nil {
		return nil, err
	}
	res.Dataset, res.Source, res.Images = c.Dataset, c.Samples, info.Images
	if drawn != nil {
		secs := math.Round(drawn.Seconds*10) / 10
		res.Sampler, res.Evals, res.SampleSeconds = drawn.Sampler, drawn.Evals, &secs
	}
	if c.NNOut != "" {
		if err := writeNearest(c.NNOut, imgs, nn, min(n, 32), train); err != nil {
			return nil, err
		}
		res.NNImage = c.NNOut
	}
	return res, nil
}

// FolderStats computes the nearest-neighbour and thumbnail statistics of n
// samples (N,C,H,W) against a training set; it also returns each sample's
// nearest training image.
func FolderStats(imgs []float32, n int, train *data.Dataset, seed uint64) (*FolderResult, []int, error) {
	if train == nil {
		return nil, nil, fmt.Errorf("%w: no training images", ErrConfig)
	}
	d := train.Dim()
	if len(imgs) != n*d || n < 2 {
		return nil, nil, fmt.Errorf("%w: %d values for %d samples of %d", ErrConfig, len(imgs), n, d)
	}
	if train.N < 2 {
		return nil, nil, fmt.Errorf("%w: %d training images; need at least 2", ErrConfig, train.N)
	}
	res := &FolderResult{N: n}
	nn := make([]int, n)
	dist := make([]float64, n)
	for i := 0; i < n; i++ {
		nn[i], dist[i] = nearest(imgs[i*d:(i+1)*d], train, -1)
	}
	// The yardstick: training images to their nearest other one — at
	// least 256 of them (all, in a smaller set), whatever n: taken over n
	// alone, 4 samples' yardstick came from 4 training images, and half of
	// the samples of a model that copied nothing were "nearer than the
	// closest pair".
	r := rand.New(rand.NewPCG(seed, 0x6e6e))
	m := min(max(n, yardstickImages), train.N)
	own := make([]float64, m)
	for k, j := range r.Perm(train.N)[:m] {
		_, own[k] = nearest(train.Image(j), train, j)
	}
	res.TrainPairs = m
	trainMin := slices.Min(own)
	close := 0
	for _, v := range dist {
		res.NNMean += v / float64(n)
		if v < trainMin {
			close++
		}
	}
	res.NNMedian, res.NNMin = median(dist), slices.Min(dist)
	res.TrainNN, res.TrainMin, res.CloseFrac = median(own), trainMin, float64(close)/float64(n)
	// Thumbnails: the set's moments against the samples' and against n
	// random training images'.
	all := thumbs(train.Images, train.N, train)
	fd := len(all) / train.N
	res.ThumbDim = fd
	muT, covT, err := Moments(all, fd)
	if err != nil {
		return nil, nil, err
	}
	muS, covS, err := Moments(thumbs(imgs, n, train), fd)
	if err != nil {
		return nil, nil, err
	}
	if res.FD, err = Frechet(muS, covS, muT, covT); err != nil {
		return nil, nil, err
	}
	m = min(n, train.N) // the floor: as many training images as samples
	sub := make([]float64, 0, m*fd)
	for _, j := range r.Perm(train.N)[:m] {
		sub = append(sub, all[j*fd:(j+1)*fd]...)
	}
	muF, covF, err := Moments(sub, fd)
	if err != nil {
		return nil, nil, err
	}
	if res.FDFloor, err = Frechet(muF, covF, muT, covT); err != nil {
		return nil, nil, err
	}
	return res, nn, nil
}

// yardstickImages is the least number of training images whose distances
// to their nearest other one make the yardstick.
const yardstickImages = 256

// nearest is the training image nearest x (skipping index skip) and the RMS
// distance to it.
func nearest(x []float32, train *data.Dataset, skip int) (int, float64) {
	best, bi := math.Inf(1), -1
	for j := 0; j < train.N; j++ {
		if j == skip {
			continue
		}
		y := train.Image(j)
		var s float64
		for k, v := range x {
			e := float64(v - y[k])
			s += e * e
			if s >= best {
				break
			}
		}
		if s < best {
			best, bi = s, j
		}
	}
	return bi, math.Sqrt(best / float64(len(x)))
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// thumbs averages each image's channels over an 8×8 grid of cells.
func thumbs(imgs []float32, n int, shape *data.Dataset) []float64 {
	c, h, w := shape.Channels, shape.Height, shape.Width
	out := make([]float64, 0, n*c*64)
	for i := 0; i < n; i++ {
		img := imgs[i*c*h*w:]
		for ch := 0; ch < c; ch++ {
			for gy := 0; gy < 8; gy++ {
				for gx := 0; gx < 8; gx++ {
					var s float64
					var k int
					for y := gy * h / 8; y < (gy+1)*h/8; y++ {
						for x := gx * w / 8; x < (gx+1)*w/8; x++ {
							s += float64(img[(ch*h+y)*w+x])
							k++
						}
					}
					out = append(out, s/float64(k))
				}
			}
		}
	}
	return out
}

// writeNearest writes k rows of [sample | its nearest training image].
func writeNearest(path string, imgs []float32, nn []int, k int, train *data.Dataset) error {
	c, h, w := train.Channels, train.Height, train.Width
	d := c * h * w
	pad := 2
	cols := 4 // pairs per row
	rows := (k + cols - 1) / cols
	W := cols*(2*w+3*pad) + pad
	H := rows*(h+pad) + pad
	out := image.NewRGBA(image.Rect(0, 0, W, H))
	for i := range out.Pix {
		out.Pix[i] = 255
	}
	put := func(px []float32, x0, y0 int) {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				var rgb [3]uint8
				for ch := 0; ch < 3; ch++ {
					v := px[(min(ch, c-1)*h+y)*w+x]
					rgb[ch] = uint8(math.Round(float64(min(1, max(0, v))) * 255))
				}
				out.Set(x0+x, y0+y, color.RGBA{rgb[0], rgb[1], rgb[2], 255})
			}
		}
	}
	for i := 0; i < k; i++ {
		x0 := pad + (i%cols)*(2*w+3*pad)
		y0 := pad + (i/cols)*(h+pad)
		put(imgs[i*d:(i+1)*d], x0, y0)
		put(train.Image(nn[i]), x0+w+pad/2, y0)
	}
	return fsutil.WriteAtomic(path, func(wr io.Writer) error { return png.Encode(wr, out) })
}
